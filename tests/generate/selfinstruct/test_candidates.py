"""The shared candidate loop: one loop for self-instruct and Magpie, and no import circle in the package."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench.generate.selfinstruct as si
from workbench.engine import FakeBackend, GenerationRequest
from workbench.generate.selfinstruct.candidates import CandidateLoop, ProgressTracker
from workbench.generate.selfinstruct.decide import PoolFilter
from workbench.runs import RowWriter, RunStore

PACKAGE = Path(si.__file__).parent


def _local_imports(path: Path) -> set[str]:
    """Modules of this package a module imports (from .x import ..., at any depth inside functions too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_no_module_of_the_package_imports_itself_back():
    graph = {p.stem: _local_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    # Magpie sits beside the package (workbench/generate/magpie.py) and imports its modules as .selfinstruct.X
    magpie = ast.parse((PACKAGE.parent / "magpie.py").read_text())
    graph["magpie"] = {
        n.module.split(".")[1]
        for n in ast.walk(magpie)
        if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module and n.module.startswith("selfinstruct.")
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = [m for m in graph if reaches(m, m, {m})]
    assert not cycles, f"import circle through {cycles}: {graph}"
    assert "pipeline" not in graph["instances"] and "pipeline" not in graph["magpie"]
    for user in ("pipeline", "magpie"):
        assert "candidates" in graph[user]  # both decide candidates with the one loop


def test_the_loop_records_decisions_in_order_and_replays_stored_ones(tmp_path):
    store = RunStore.create(tmp_path, "r")
    texts = {"a": "Name three rivers in Europe and their lengths.", "b": "Hi", "c": "Name three rivers in Europe and their length."}
    backend = FakeBackend(responder=lambda req: texts[req.key])
    metas = [{"id": k, "prompt": f"p{k}", "seed": i} for i, k in enumerate(texts)]
    request = lambda m: GenerationRequest(prompt=m["prompt"], key=m["id"])  # noqa: E731
    parse = lambda gen: (gen.text, None)  # noqa: E731
    kept: list[str] = []
    with RowWriter(store) as writer:
        loop = CandidateLoop(backend, writer, PoolFilter([], []), ProgressTracker(3, None), None, first_order=7,
                             on_kept=lambda r: kept.append(r["id"]))  # fmt: skip
        loop.run(metas, {}, request, parse, {"stage": "instruction"})
    rows = {r["id"]: r for r in store.rows().to_dicts()}
    assert [rows[k]["decision_order"] for k in "abc"] == [7, 8, 9]
    assert rows["b"]["reason"] == "too_short" and rows["c"]["reason"] == "near_duplicate" and kept == ["a"]
    # A second loop over the same candidates replays them: the pool gets the kept one back, nothing is generated.
    again = FakeBackend(responder=lambda req: texts[req.key])
    pool = PoolFilter([], [])
    with RowWriter(store) as writer:
        loop = CandidateLoop(again, writer, pool, ProgressTracker(3, None), None, first_order=10)
        loop.run(metas, rows, request, parse, {"stage": "instruction"})
    assert again.calls == [] and pool.accepted == 1 and store.rows().height == 3
