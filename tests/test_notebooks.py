"""The notebooks: committed without outputs, and every one runs top to
bottom without an error in a fresh Python kernel.

The kernel is ipykernel's own spec written to a temporary directory, so
the notebooks run with this interpreter (the one that has goalloc)
whatever kernelspecs the machine has installed, and nothing is installed
into the user's Jupyter directories.
"""
from __future__ import annotations

import glob
import os
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from ipykernel.kernelspec import write_kernel_spec  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

import goalloc  # noqa: E402
from helpers import ASAN  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
CELL_TIMEOUT = 120  # seconds per cell
KERNEL = "python3"


def _ids(path: str) -> str:
    return os.path.basename(path)


def test_the_notebooks_are_there():
    names = {os.path.basename(p) for p in NOTEBOOKS}
    assert {"01-mallocinit-and-hints.ipynb",
            "02-size-classes-spans-caches.ipynb",
            "03-fragmentation-workloads.ipynb",
            "04-sweeping-gogc.ipynb", "05-real-program.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == KERNEL
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for i, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {i} has outputs"
        assert cell.execution_count is None, f"code cell {i} has a count"
    assert nb.cells[0].cell_type == "markdown"


@pytest.fixture(scope="session")
def kernel_specs(tmp_path_factory):
    """A KernelSpecManager that knows one kernel, "python3": ipykernel's
    spec for this interpreter (sys.executable -m ipykernel_launcher)."""
    d = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(path=str(d / KERNEL))
    return KernelSpecManager(kernel_dirs=[str(d)])


# Notebooks that start programs on goalloc's malloc replacement (`goalloc
# run`): the sanitizer run's processes have ASan preloaded, which the plain
# library cannot load beside (as tests/test_preload.py skips there); the
# plain pytest run has run them.
RUNS_PRELOAD = {"05-real-program.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs(path, kernel_specs, tmp_path):
    if ASAN and os.path.basename(path) in RUNS_PRELOAD:
        pytest.skip("runs the plain malloc replacement; the plain pytest "
                    "run has run it")
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    # goalloc importable from the kernel even without an installed copy
    # (a checkout on PYTHONPATH): the kernel runs in tmp_path.
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(
        goalloc.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    km = AsyncKernelManager(kernel_name=KERNEL,
                            kernel_spec_manager=kernel_specs)
    client = nbclient.NotebookClient(
        nb, km=km, kernel_name=KERNEL, timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    client.execute(cleanup_kc=True, env=env)  # the kernel is shut down after
    elapsed = time.monotonic() - start
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert all(c.execution_count for c in code), "a cell did not run"
    print(f"{os.path.basename(path)}: {elapsed:.1f} s")
