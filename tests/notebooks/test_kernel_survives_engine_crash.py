"""A notebook's kernel survives a native crash of the engine (a real SIGSEGV in the engine process)."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

CELLS = [
    "from workbench.engine import load_backend, EngineCrashed, GenerationRequest, SamplingParams\n"
    "backend = load_backend('default', n_parallel=2, n_ctx_per_seq=256)\n"
    "reqs = [GenerationRequest(prompt=f'Fact {i}:', params=SamplingParams(max_tokens=6, seed=i)) for i in range(4)]\n"
    "kept_before = 41",
    "finished = []\n"
    "backend._inject_crash(after_rows=2, kind='segv')\n"
    "try:\n"
    "    backend.generate(reqs, on_result=lambda i, g: finished.append(i))\n"
    "    crash = None\n"
    "except EngineCrashed as err:\n"
    "    crash = err",
    "again = backend.generate(reqs)\n"
    "print('SURVIVED', kept_before + 1, crash.signal_name, len(finished), all(g.ok for g in again), backend.restarts)",
]


@pytest.mark.notebook
@pytest.mark.model
@pytest.mark.timeout(300)
def test_kernel_lives_through_an_engine_segfault(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=240, allow_errors=False,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    assert "SURVIVED 42 SIGSEGV 2 True 1" in out, out
