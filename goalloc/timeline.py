"""Timeline: what a replay sampled, as NumPy arrays."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from . import fragmentation
from .trace import COUNTER_FIELDS

PathLike = Union[str, "os.PathLike[str]"]

TIMELINE_SCHEMA = "goalloc.timeline/1"


@dataclass
class Timeline:
    """Heap counters and fragmentation metrics sampled during a replay.

    Each array has one entry per sample; ``op`` is the index of the last
    op applied before the sample (-1 for the initial sample, taken before
    any op).  ``addresses[id]`` is the address the latest allocation of id
    got, and ``live[id]`` whether id was still allocated at the end.
    """

    op: np.ndarray
    heap_alloc: np.ndarray
    heap_inuse: np.ndarray
    heap_idle: np.ndarray
    heap_released: np.ndarray
    heap_sys: np.ndarray
    live_objects: np.ndarray
    requested_live: np.ndarray
    largest_free: np.ndarray
    addresses: np.ndarray
    live: np.ndarray
    nops: int
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_samples(cls, ops: np.ndarray, samples: np.ndarray,
                     initial: np.ndarray, addresses: np.ndarray,
                     live: np.ndarray, nops: int) -> Timeline:
        ops = np.concatenate([[-1], ops.astype(np.int64)])
        rows = np.vstack([initial[None, :], samples]).astype(np.int64)
        cols = {name: rows[:, i] for i, name in enumerate(COUNTER_FIELDS)}
        t = cls(ops, cols["heap_alloc"], cols["heap_inuse"],
                cols["heap_idle"], cols["heap_released"], cols["heap_sys"],
                cols["live_objects"], cols["requested_live"],
                cols["largest_free"], addresses, live, nops)
        t.metrics = fragmentation.compute(
            t.heap_alloc, t.heap_inuse, t.heap_idle, t.heap_released,
            t.heap_sys, t.requested_live, t.largest_free)
        return t

    def __len__(self) -> int:
        return len(self.op)

    @property
    def internal_waste(self) -> np.ndarray:
        """heap_alloc - requested_live: bytes lost to rounding, per sample."""
        waste: np.ndarray = self.heap_alloc - self.requested_live
        return waste

    def columns(self) -> dict[str, np.ndarray]:
        """Every per-sample column, counters first, then the metrics."""
        out = {"op": self.op}
        for name in COUNTER_FIELDS:
            out[name] = getattr(self, name)
        out.update(self.metrics)
        return out

    def to_csv(self, path: PathLike) -> None:
        cols = self.columns()
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for row in zip(*(c.tolist() for c in cols.values()), strict=True):
                w.writerow(row)

    def to_json(self, path: PathLike) -> None:
        doc = {
            "schema": TIMELINE_SCHEMA,
            "nops": self.nops,
            "columns": {k: [None if isinstance(x, float) and x != x else x
                            for x in v.tolist()]
                        for k, v in self.columns().items()},
        }
        with open(path, "w") as f:
            json.dump(doc, f)

    def save(self, path: PathLike) -> None:
        """CSV for ``.csv``, JSON otherwise."""
        if os.fspath(path).endswith(".csv"):
            self.to_csv(path)
        else:
            self.to_json(path)

    def __repr__(self) -> str:
        return (f"<goalloc.Timeline {len(self)} samples over {self.nops} ops, "
                f"final heap_alloc={int(self.heap_alloc[-1])}>")
