"""Lineage frames of a whole evolution run: chains root first with the operator of every step, and drop counts."""

from __future__ import annotations

import polars as pl

from tests.generate.test_evolve import SEEDS, _scripted
from workbench.engine import FakeBackend
from workbench.generate import drop_reasons, lineage, lineage_frame
from workbench.generate.evolve import EvolveConfig, run_evolution
from workbench.runs import RunStore


def test_every_evolution_row_has_its_chain_and_operators(tmp_path):
    store = RunStore.create(tmp_path, "lin")
    store.append([{"id": "x1", "stage": "instruction", "status": "kept", "text": "Unrelated.", "round": 1}])
    cfg = EvolveConfig(operators=("add_constraints", "deepen", "breadth"), strategy="all", generations=2)
    evo = run_evolution(FakeBackend(responder=_scripted), store, SEEDS, cfg)
    frame = lineage_frame(store.rows())
    assert frame.height == evo.height == 2 * 3 + 4 * 3  # breadth's empty outputs are not evolved further
    assert frame["generation"].to_list() == sorted(frame["generation"].to_list())
    assert "x1" not in frame["id"].to_list()  # other stages are not lineage rows
    for r in frame.iter_rows(named=True):
        chain = lineage(store.rows(), r["id"])  # the one-row reader agrees with the whole-run frame
        assert r["chain_texts"] == chain["text"].to_list()[:-1]
        assert r["chain_operators"] == chain["operator"].drop_nulls().to_list()
        assert len(r["chain_texts"]) == r["generation"] and r["chain_operators"][-1] == r["operator"]
        assert r["chain_texts"][0] in SEEDS["instruction"].to_list()
    second = frame.filter(pl.col("generation") == 2).row(0, named=True)
    parent = frame.filter(pl.col("id") == second["parent_id"]).row(0, named=True)
    assert second["chain_texts"] == [*parent["chain_texts"], parent["text"]]
    assert lineage_frame(store.rows(), status="dropped")["reason"].to_list() == ["empty"] * 6
    assert drop_reasons(store.rows()).to_dicts() == [{"status": "dropped", "reason": "empty", "count": 6}]


def test_a_run_without_evolutions_gives_empty_frames(tmp_path):
    store = RunStore.create(tmp_path, "none")
    assert lineage_frame(store.rows()).height == 0 and drop_reasons(store.rows()).height == 0
    assert lineage_frame(store.rows()).columns[:3] == ["id", "root_id", "parent_id"]
