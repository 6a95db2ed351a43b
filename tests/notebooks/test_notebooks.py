"""Every notebook in notebooks/ runs top to bottom on the default model, as a learner would run it.

Executed with nbclient in the notebooks/ folder (the notebooks' own working directory) on the `python3`
kernel of this interpreter; any cell error fails the test. New notebooks are picked up by the glob.
Each notebook has its own time budget, so the whole set stays well inside CI's 90 minutes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
BUDGET_S = int(os.environ.get("WORKBENCH_NOTEBOOK_BUDGET_S", "600"))  # per notebook, all cells together


def _kernel_python() -> str:
    """The interpreter the `python3` kernel spec starts (must be this venv's, not another install's)."""
    from jupyter_client.kernelspec import KernelSpecManager

    argv = KernelSpecManager().get_kernel_spec("python3").argv
    # jupyter_client runs a spec whose argv[0] is plain "python" with the launching interpreter.
    return sys.executable if argv[0] in ("python", "python3") else argv[0]


def test_notebooks_are_found_and_committed_without_outputs():
    assert any(p.name == "00_quickstart.ipynb" for p in PATHS), f"no quickstart in {NOTEBOOKS}"
    for path in PATHS:
        nb = nbformat.read(path, as_version=4)
        with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("outputs")]
        assert not with_outputs, f"{path.name}: clear the outputs of cells {with_outputs} before committing"


def test_kernel_is_this_venv():
    assert Path(_kernel_python()).resolve().parent == Path(sys.executable).resolve().parent


@pytest.mark.notebook
@pytest.mark.model
@pytest.mark.timeout(BUDGET_S + 120)
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    # Notebooks that honour it write their runs to a temp folder; others write under notebooks/runs/.
    monkeypatch.setenv("WORKBENCH_RUNS_ROOT", str(tmp_path / "runs"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=BUDGET_S,  # per cell; the pytest timeout above bounds the whole notebook
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        allow_errors=False,
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell failed:\n{err}")
    elapsed = time.perf_counter() - t0
    print(f"{path.name}: {elapsed:.0f}s")
    assert elapsed < BUDGET_S, f"{path.name} took {elapsed:.0f}s, over its {BUDGET_S}s budget"
