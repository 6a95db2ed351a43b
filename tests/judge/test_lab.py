"""Judge the judge: several configurations on one labelled set, judgments shared, reported beside the
baselines; the run's own labels as the labelled set (scripted judges, no model)."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from tests.judge.lab_fakes import LabFake, texts_of
from workbench.judge import (
    JudgeConfig,
    LabConfig,
    Rubric,
    judge_the_judge,
    labelled_pairs,
    load_preference_pairs,
)
from workbench.runs import RunStore

CFG = JudgeConfig(max_tokens=32, max_reasoning_chars=40)


@pytest.fixture(scope="module")
def pairs() -> pl.DataFrame:
    return load_preference_pairs("hh-rlhf", limit=24, seed=5)


@pytest.fixture
def pair_rubric(rubric: Rubric) -> Rubric:
    return rubric.edit(allow_ties=False)


def oracle(pairs: pl.DataFrame, p: float = 0.8):
    chosen = {
        (r["a_text"] if r["human_pref"] == "A" else r["b_text"]).strip() for r in pairs.iter_rows(named=True)
    }
    return lambda a, b: p if a.strip() in chosen else 1 - p


def test_every_method_is_reported_beside_the_baselines_and_runs_are_shared(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "lab")
    backend = LabFake(texts_of(pairs), oracle(pairs), name="oracle")
    configs = [
        LabConfig(method=m) for m in ("consistent", "probability", "pointwise", "few-shot", "calibrated")
    ]
    seen = []
    result = judge_the_judge(
        backend, store, pairs, configs, pair_rubric, CFG, n_boot=200, on_progress=seen.append
    )
    t = result.report.table
    assert t["method"].to_list() == [
        "consistent",
        "probability",
        "pointwise",
        "consistent",
        "calibrated",
        "calibrated",
    ]
    cons = t.row(0, named=True)
    assert cons["agreement"] == 1.0 and cons["n"] == 24 and cons["ci_low"] <= 1.0 <= cons["ci_high"] + 1e-9
    human = pairs["human_pref"]
    assert cons["always_first"] == pytest.approx((human == "A").mean())
    assert set(BASELINE := ("random", "always_first", "longest", "shortest")) <= set(t.columns)
    assert result.report.baselines["baseline"].to_list() == list(BASELINE)
    # consistent and probability read one pairwise run (2 orders x 24), pointwise one absolute run of
    # the 48 answers, few-shot its own pairwise run: 48 + 48 + 48 judgments, each stored once.
    assert result.judgments.height == 144 and store.rows().filter(pl.col("stage") == "judgment").height == 144
    assert set(result.wall_seconds) == {
        f"{k} · auto · {pair_rubric.version[:6]}" for k in ("pairwise", "absolute", "few-shot")
    }
    assert seen[-1].rows_done == seen[-1].rows_total == 144
    assert t.filter(pl.col("method") == "pointwise")["score_length_corr"][0] > 0.5
    assert {c.method for c in result.configs.values()} == {
        "consistent",
        "probability",
        "pointwise",
        "few-shot",
        "calibrated",
    }
    # A rerun resumes: nothing new is judged.
    again = judge_the_judge(backend, store, pairs, configs[:2], pair_rubric, CFG, n_boot=50)
    assert store.rows().filter(pl.col("stage") == "judgment").height == 144
    assert again.report.table.height == 2


def test_two_rubric_versions_and_a_length_judge(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "lab")
    other = pair_rubric.edit(criteria=("Is more helpful",))
    backend = LabFake(texts_of(pairs), lambda a, b: 0.9 if len(a) > len(b) else 0.1, name="longer")
    configs = [
        LabConfig(method="probability", rubric_version=v) for v in (pair_rubric.version, other.version)
    ]
    result = judge_the_judge(
        backend, store, pairs, configs, [pair_rubric, other], CFG, n_boot=100, add_jury=True
    )
    t = result.report.table
    assert t.height == 4 and t["rubric_version"].to_list()[:2] == [pair_rubric.version, other.version]
    for r in t.head(2).iter_rows(named=True):
        assert r["agreement"] == pytest.approx(r["longest"]) and r["p_prefer_longer"] == 1.0
    assert t["method"].to_list()[2:] == ["jury-majority", "jury-mean"]


def test_bad_inputs_say_what_to_fix(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "lab")
    backend = LabFake(texts_of(pairs), lambda a, b: 0.5)
    with pytest.raises(ValueError, match="at least one judge configuration"):
        judge_the_judge(backend, store, pairs, [], pair_rubric)
    with pytest.raises(ValueError, match="lack columns"):
        judge_the_judge(backend, store, pairs.drop("human_pref"), [LabConfig()], pair_rubric)
    with pytest.raises(ValueError, match="no rubric version 'nope'"):
        judge_the_judge(backend, store, pairs, [LabConfig(rubric_version="nope")], pair_rubric)
    with pytest.raises(ValueError, match="at least 4 labelled pairs"):
        judge_the_judge(backend, store, pairs.head(3), [LabConfig(method="calibrated")], pair_rubric)
    with pytest.raises(ValueError):
        LabConfig(method="majority")  # type: ignore[arg-type]


def test_stopping_returns_no_report_and_keeps_what_was_judged(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "lab")
    cancel = threading.Event()
    cancel.set()
    result = judge_the_judge(
        LabFake(texts_of(pairs), lambda a, b: 0.7),
        store,
        pairs,
        [LabConfig()],
        pair_rubric,
        CFG,
        cancel=cancel,
    )
    assert result.cancelled and result.report is None


def _run_with_answers(tmp_path) -> RunStore:
    store = RunStore.create(tmp_path, "own")
    rows = []
    for p in range(4):
        for j, text in enumerate(("Short.", "A much longer and more careful answer.", "Mid answer.")):
            rows.append({"id": f"c{p}{j}", "stage": "completion", "parent_id": f"p{p}", "instruction": f"Task {p}",
                         "input": "", "text": text, "status": "kept"})  # fmt: skip
    store.append(rows)
    return store


def test_labelled_pairs_from_pair_labels_and_answer_scores(tmp_path):
    from workbench.judge import pair_id

    store = _run_with_answers(tmp_path)
    assert labelled_pairs(store).height == 0
    store.set_label(pair_id("c00", "c01"), "human_pref", "B")
    store.set_label(pair_id("c10", "c12"), "human_pref", "A")  # not the first two answers: still found
    store.set_label("c20", "human_score", 2)
    store.set_label("c21", "human_score", 4)
    got = labelled_pairs(store).sort("a_id")
    assert got.select("a_id", "b_id", "human_pref").rows() == [("c00", "c01", "B"), ("c10", "c12", "A"),
                                                               ("c20", "c21", "B")]  # fmt: skip
    assert got["instruction"].to_list() == ["Task 0", "Task 1", "Task 2"]
