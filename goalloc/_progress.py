"""Progress bars for replays, drawn by tqdm (extra: goalloc[progress]).

``ReplayProgress`` is a ``progress(done, total)`` callback for
Heap.replay that draws a tqdm bar: in a terminal a text bar that fits
the terminal's width and follows a resize; in a notebook (``auto=True``,
tqdm.auto) a widget.  tqdm is imported when a bar is made, never by
``import goalloc``.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, TextIO


def _tqdm_class(auto: bool, what: str) -> Any:
    try:
        module = importlib.import_module("tqdm.auto" if auto else "tqdm")
    except ImportError as e:
        raise ImportError(
            f"{what} needs tqdm, which is not installed: pip install "
            f"'goalloc[progress]' (or pip install tqdm)",
            name="tqdm") from e
    return module.tqdm


class ReplayProgress:
    """A ``progress(done, total)`` callback that draws a tqdm bar.

    desc: the bar's label.  enabled: True draws, False does not, None
    draws when the stream is a terminal.  stream: where a text bar goes
    (default sys.stderr).  auto: tqdm.auto's bar (a widget in a Jupyter
    notebook, text elsewhere) instead of the text bar.  ImportError
    naming the extra when tqdm is not installed.  close() ends the bar
    (its line, in a terminal); the bar is made at the first call, when
    the total is known.  unit: what is counted ("ops"; a sweep counts
    "runs").
    """

    def __init__(self, desc: str = "replay", enabled: bool | None = None,
                 stream: TextIO | None = None, auto: bool = False,
                 what: str = "a progress bar", unit: str = "ops") -> None:
        self._tqdm = _tqdm_class(auto, what)
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.stream = stream
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = self._tqdm(
                total=total, desc=self.desc, unit=self.unit,
                unit_scale=self.unit == "ops",
                dynamic_ncols=True,
                file=sys.stderr if self.stream is None else self.stream,
                disable=None if self.enabled is None else not self.enabled)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def replay_callback(progress: Any) -> tuple[
        Callable[[int, int], None] | None, ReplayProgress | None]:
    """Heap.replay's progress argument as a callback: True makes a
    tqdm.auto bar (returned second, for the caller to close), False is
    None; anything else is returned as it is."""
    if progress is True:
        bar = ReplayProgress("replay", enabled=True, auto=True,
                             what="Heap.replay(progress=True)")
        return bar, bar
    if progress is False:
        return None, None
    callback: Callable[[int, int], None] | None = progress
    return callback, None
