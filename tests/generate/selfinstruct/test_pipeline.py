"""The bootstrap loop with a scripted fake model: persistence, drop reasons, resume, the threshold replay."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from workbench.engine import FakeBackend, GenerationRequest
from workbench.filters import rouge_l_nearest
from workbench.generate.seeds import default_seeds
from workbench.generate.selfinstruct import (
    NEAR_DUPLICATE,
    SelfInstructConfig,
    apply_similarity_threshold,
    run_self_instruct,
)
from workbench.runs import RunStore

SEEDS = default_seeds()
FRESH = [
    "Name three birds that cannot fly and say where they live.",
    "Describe how a bicycle gear system works for a beginner.",
    "Suggest a weekly routine for learning to play the guitar.",
    "Explain why bread goes stale faster in the fridge.",
    "Write a limerick about a cat who loves cold soup.",
    "Compare renting and buying a home in three sentences.",
    "List four questions to ask before adopting a dog.",
    "Turn the recipe steps below into a numbered checklist.",
]


def scripted(req: GenerationRequest) -> str:
    """Instruction prompts get a mix of fresh tasks, near-copies of a seed, and filter bait."""
    if req.prompt is not None and req.prompt.rstrip().endswith(("Input:", "Class label:")):
        if req.prompt.rstrip().endswith("Class label:"):
            return " positive\nInput: What a lovely day at the beach."
        return " <none>\nOutput: Here is an answer.\n\nTask: next"
    k = req.params.seed % 11
    if k < len(FRESH):
        return " " + FRESH[k] + "\nTask 10: more"
    if k == 8:  # a near-duplicate of a seed task in the pool
        return " Write a haiku about the first snow of the winter.\nTask 10:"
    if k == 9:
        return " Draw a picture of a house.\n"
    return " Hi\n"


def _config(**kw) -> SelfInstructConfig:
    base = dict(num_instructions=6, rounds=3, prompts_per_round=6, seed=3)
    base.update(kw)
    return SelfInstructConfig(**base)


def test_every_candidate_is_stored_with_provenance(tmp_path):
    store = RunStore.create(tmp_path, "run")
    backend = FakeBackend(responder=scripted)
    rows = run_self_instruct(backend, store, _config(), seeds=SEEDS)
    stored = store.rows()
    assert set(stored["id"]) == set(rows["id"]) and stored.height == rows.height
    inst = stored.filter(pl.col("stage") == "instruction").sort("decision_order")
    assert inst.height >= 6
    # Provenance columns on every row.
    for col in ("round", "prompt", "example_ids", "model", "model_sha", "params", "seed", "nearest_score"):
        assert inst[col].null_count() == 0, col
    assert (inst["model_sha"] == "fake:0").all()
    assert all(len(x) == 8 for x in inst["example_ids"].to_list())
    assert inst["prompt"][0].endswith("Task 9:")
    # Every drop says why; kept rows never exceed the threshold.
    dropped = inst.filter(pl.col("status") == "dropped")
    assert dropped["reason"].null_count() == 0
    kept = inst.filter(pl.col("status") == "kept")
    assert (kept["nearest_score"] <= 0.7).all()
    # The near-duplicate decision agrees with an independent ROUGE-L computation against seeds + earlier kept.
    pool = SEEDS["instruction"].to_list()
    for r in inst.filter(pl.col("filter_reason").is_null()).iter_rows(named=True):
        score, _ = rouge_l_nearest([r["text"]], pool)
        assert score[0] == pytest.approx(r["nearest_score"], abs=0)
        assert (r["status"] == "dropped") == (score[0] > 0.7)
        if r["status"] == "kept":
            pool.append(r["text"])
    reasons = set(inst["reason"].drop_nulls())
    assert {"too_short", "blacklist:picture"} <= reasons or {"too_short", "blacklist:draw"} <= reasons
    # Instances: one per kept instruction, linked by parent id.
    instances = stored.filter(pl.col("stage") == "instance")
    assert set(instances["parent_id"]) == set(kept["id"])


def test_classification_variant_marks_rows(tmp_path):
    store = RunStore.create(tmp_path, "run")
    rows = run_self_instruct(
        FakeBackend(responder=scripted),
        store,
        _config(classification_fraction=0.5, generate_instances=False),
        seeds=SEEDS,
    )
    inst = rows.filter(pl.col("stage") == "instruction")
    assert inst["is_classification"].sum() > 0
    cls_prompts = inst.filter(pl.col("is_classification"))["prompt"]
    assert all(p.startswith("Come up with a series of classification tasks") for p in cls_prompts)


def test_resume_after_cancel_has_no_duplicates_and_matches_uninterrupted_run(tmp_path):
    cfg = _config()
    full = run_self_instruct(
        FakeBackend(responder=scripted), RunStore.create(tmp_path, "full"), cfg, seeds=SEEDS
    )

    cancel = threading.Event()
    calls = {"n": 0}

    def cancelling(req):
        calls["n"] += 1
        if calls["n"] == 5:
            cancel.set()  # the kernel "dies" mid-round: later rows never arrive
        return scripted(req)

    store = RunStore.create(tmp_path, "partial")
    run_self_instruct(FakeBackend(responder=cancelling), store, cfg, seeds=SEEDS, cancel=cancel)
    partial_ids = store.ids()
    assert 0 < len(partial_ids) < full.height
    backend = FakeBackend(responder=scripted)
    resumed = run_self_instruct(backend, RunStore.open(store.path), cfg, seeds=SEEDS)
    stored = store.rows()
    assert stored["id"].n_unique() == stored.height  # nothing written twice
    assert set(stored["id"]) == set(full["id"])
    assert len(backend.calls) == full.height - len(partial_ids)  # only the missing rows were generated
    merged = resumed.join(full.select("id", "status"), on="id", suffix="_full")
    assert (merged["status"] == merged["status_full"]).all()


def test_apply_similarity_threshold_replays_decisions(tmp_path):
    store = RunStore.create(tmp_path, "run")
    run_self_instruct(FakeBackend(responder=scripted), store, _config(generate_instances=False), seeds=SEEDS)
    rows = store.rows()
    same = apply_similarity_threshold(rows, 0.7)
    assert same["id"].to_list() == rows["id"].to_list()
    assert same["status"].to_list() == rows["status"].to_list()
    strict = apply_similarity_threshold(rows, 0.1)
    loose = apply_similarity_threshold(rows, 1.0)
    n_kept = [int((f["status"] == "kept").sum()) for f in (strict, same, loose)]
    assert n_kept[0] < n_kept[1] <= n_kept[2]
    assert (
        strict.filter(pl.col("status") == "dropped")["reason"].is_in([NEAR_DUPLICATE])
        | strict.filter(pl.col("status") == "dropped")["filter_reason"].is_not_null()
    ).all()
    # Text-filtered rows stay dropped at any threshold.
    text_dropped = rows.filter(pl.col("filter_reason").is_not_null())["id"]
    assert (loose.filter(pl.col("id").is_in(text_dropped.implode()))["status"] == "dropped").all()
    with pytest.raises(ValueError, match="run_self_instruct"):
        apply_similarity_threshold(pl.DataFrame({"id": ["a"]}), 0.5)


def test_reproducible_prompts_and_ids(tmp_path):
    a = run_self_instruct(
        FakeBackend(), RunStore.create(tmp_path, "a"), _config(generate_instances=False), seeds=SEEDS
    )
    b = run_self_instruct(
        FakeBackend(), RunStore.create(tmp_path, "b"), _config(generate_instances=False), seeds=SEEDS
    )
    assert a["id"].to_list() == b["id"].to_list() and a["prompt"].to_list() == b["prompt"].to_list()


def test_backend_errors_become_error_rows(tmp_path):
    def boom(req):
        raise AssertionError("not reached")

    class Failing(FakeBackend):
        def generate(self, requests, **kw):
            from workbench.engine import Generation

            out = [Generation(r.key, "", "error", error="prompt too long") for r in requests]
            for i, g in enumerate(out):
                if kw.get("on_result"):
                    kw["on_result"](i, g)
            return out

    store = RunStore.create(tmp_path, "run")
    rows = run_self_instruct(Failing(responder=boom), store, _config(rounds=1), seeds=SEEDS)
    assert (rows["status"] == "error").all() and (rows["reason"] == "prompt too long").all()
