"""The judge report: agreement with CIs beside baselines on the same rows, position and length
statistics, costs, chart, comparisons (scripted judges on the shipped hh-rlhf pairs; no model)."""

from __future__ import annotations

import polars as pl
import pytest

from tests.judge.judge_fakes import length_judge
from tests.judge.report_fakes import VerdictFake
from workbench.engine import FakeBackend
from workbench.judge import (
    JudgeConfig,
    Rubric,
    compare_configs,
    human_preferences,
    judge_report,
    load_preference_pairs,
    run_absolute_judge,
    run_pairwise_judge,
)
from workbench.runs import RunStore

CFG = JudgeConfig(max_tokens=32, max_reasoning_chars=40)


@pytest.fixture(scope="module")
def pairs() -> pl.DataFrame:
    return load_preference_pairs("hh-rlhf", limit=60, seed=3)


@pytest.fixture
def pair_rubric(rubric: Rubric) -> Rubric:
    return rubric.edit(allow_ties=False)


def oracle(pairs: pl.DataFrame, p: float = 0.8):
    """Knows which reply people chose: says so with probability p, whatever the order."""
    chosen = set()
    for rec in pairs.iter_rows(named=True):
        chosen.add(rec["a_text"] if rec["human_pref"] == "A" else rec["b_text"])
    return lambda a, b: p if a.strip() in {c.strip() for c in chosen} else 1 - p


def _run(backend, store, pairs, rubric) -> pl.DataFrame:
    return run_pairwise_judge(backend, store, pairs, rubric, CFG)


def test_oracle_beats_every_baseline_and_length_judge_does_not(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "r")
    good = _run(VerdictFake(oracle(pairs), name="oracle"), store, pairs, pair_rubric)
    longer = _run(
        VerdictFake(lambda a, b: 0.9 if len(a) > len(b) else 0.1, name="longer"), store, pairs, pair_rubric
    )
    report = judge_report(pl.concat([good, longer]), pairs=pairs, n_boot=300)
    t = report.table
    assert t.height == 4  # 2 models x (consistent, probability)
    ora = t.filter(pl.col("model") == "oracle", pl.col("method") == "consistent").row(0, named=True)
    assert ora["agreement"] == 1.0 and ora["n"] == 60 and ora["beats_length"]
    assert ora["ci_low"] <= 1.0 <= ora["ci_high"] + 1e-9
    assert ora["position_consistency"] == 1.0 and ora["kappa"] == pytest.approx(1.0)
    human = pairs["human_pref"]
    # Baselines on the same rows: always-first is the share of pairs whose first reply people chose.
    assert ora["always_first"] == pytest.approx((human == "A").mean())
    assert ora["random"] == pytest.approx(0.5)
    la, lb = pairs["a_text"].str.len_chars(), pairs["b_text"].str.len_chars()
    longest = (((la > lb) & (human == "A")) | ((lb > la) & (human == "B"))).mean()
    assert ora["longest"] == pytest.approx(longest)
    assert ora["longest"] + ora["shortest"] <= 1.0 + 1e-9
    lng = t.filter(pl.col("model") == "longer", pl.col("method") == "probability").row(0, named=True)
    assert lng["agreement"] == pytest.approx(longest)  # a length judge is exactly the length baseline
    assert not lng["beats_length"] and lng["p_prefer_longer"] == 1.0
    assert lng["tokens_per_1k"] > 0 and lng["judgments"] == 120
    assert report.baselines["baseline"].to_list() == ["random", "always_first", "longest", "shortest"]
    md = report.markdown()
    assert "| config |" in md and "oracle" in md and md.count("\n") == 1 + t.height


def test_first_position_judge_is_inconsistent_and_the_probability_method_cancels_it(
    pairs, pair_rubric, tmp_path
):
    store = RunStore.create(tmp_path, "r")
    first = _run(VerdictFake(lambda a, b: 0.9, name="first"), store, pairs, pair_rubric)
    t = judge_report(first, pairs=pairs, n_boot=200).table
    cons = t.filter(pl.col("method") == "consistent").row(0, named=True)
    assert cons["agreement"] == 0.0 and cons["decided"] == 0.0  # every pair flips: no decision
    assert cons["position_consistency"] == 0.0 and cons["first_position_rate"] == 1.0
    prob = t.filter(pl.col("method") == "probability").row(0, named=True)
    assert prob["decided"] == 0.0  # P(a wins) averages to exactly 0.5 over the two orders
    assert prob["first_position_rate"] == pytest.approx(0.9)


def test_probability_threshold_decides_weak_signal(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "r")
    # Position-biased (0.3 towards A) but also content-aware by 0.1: only the average reveals it.
    truth = oracle(pairs, p=1.0)
    weak = _run(VerdictFake(lambda a, b: 0.6 + (0.1 if truth(a, b) > 0.5 else -0.1) + 0.2, name="weak"),
                store, pairs, pair_rubric)  # fmt: skip
    t = judge_report(weak, pairs=pairs, n_boot=200).table
    prob = t.filter(pl.col("method") == "probability").row(0, named=True)
    cons = t.filter(pl.col("method") == "consistent").row(0, named=True)
    assert prob["agreement"] == 1.0 and cons["agreement"] == 0.0


def test_pointwise_expected_score_difference_and_score_length_correlation(pairs, rubric, tmp_path):
    store = RunStore.create(tmp_path, "r")
    answers = pl.concat([
        pairs.select(pl.col("a_id").alias("id"), "instruction", pl.col("a_text").alias("text")),
        pairs.select(pl.col("b_id").alias("id"), "instruction", pl.col("b_text").alias("text")),
    ])  # fmt: skip
    judged = run_absolute_judge(FakeBackend(length_judge), store, answers, rubric, CFG)
    t = judge_report(judged, pairs=pairs, n_boot=200).table
    row = t.row(0, named=True)
    assert row["method"] == "pointwise" and row["n"] == 60
    assert row["score_length_corr"] > 0.5  # the length judge's scores follow length (capped at 5)
    assert row["p_prefer_longer"] > 0.9
    assert row["position_consistency"] is None  # not a pairwise judge


def test_labels_from_run_prefs_and_scores(pairs, tmp_path):
    store = RunStore.create(tmp_path, "r")
    p0, p1 = pairs.row(0, named=True), pairs.row(1, named=True)
    store.set_label(p0["pair_id"], "human_pref", "B")
    store.set_label(p1["a_id"], "human_score", 2)
    store.set_label(p1["b_id"], "human_score", 5)
    human = human_preferences(store, pairs)
    assert human == {p0["pair_id"]: "B", p1["pair_id"]: "B"}
    with pytest.raises(ValueError, match="'A', 'B' or 'tie'"):
        human_preferences({"x": "left"})
    with pytest.raises(ValueError, match="no human labels"):
        human_preferences(None, pairs.drop("human_pref"))


def test_chart_has_points_with_ci_and_one_rule_per_baseline(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "r")
    report = judge_report(
        _run(VerdictFake(oracle(pairs)), store, pairs, pair_rubric), pairs=pairs, n_boot=100
    )
    spec = report.chart().to_dict()
    rules, bars, points = spec["layer"]
    assert [r["baseline"] for r in rules["data"]["values"]] == [
        "random",
        "always_first",
        "longest",
        "shortest",
    ]
    assert len(points["data"]["values"]) == report.table.height  # aggregated: one row per configuration
    assert bars["encoding"]["x2"]["field"] == "ci_high"


def test_compare_configs_counts_changed_rows_with_a_paired_ci(pairs, pair_rubric, tmp_path):
    store = RunStore.create(tmp_path, "r")
    good = _run(VerdictFake(oracle(pairs), name="oracle"), store, pairs, pair_rubric)
    longer = _run(
        VerdictFake(lambda a, b: 0.9 if len(a) > len(b) else 0.1, name="longer"), store, pairs, pair_rubric
    )
    report = judge_report(pl.concat([good, longer]), pairs=pairs, methods=("consistent",), n_boot=300)
    old, new = report.table.sort("model", descending=True)["config"].to_list()  # oracle, longer
    cmp = compare_configs(report, new, old)
    assert cmp.n == 60 and cmp.changed == int((cmp.rows["old"] != cmp.rows["new"]).sum()) > 0
    assert cmp.difference == pytest.approx(1.0 - cmp.old_agreement)
    assert cmp.ci_low <= cmp.difference <= cmp.ci_high and cmp.ci_low > 0
    with pytest.raises(ValueError, match="no configuration"):
        compare_configs(report, "nope", old)


def test_report_without_judgments_is_a_clear_error(pairs):
    with pytest.raises(ValueError, match="nothing to report"):
        judge_report(pl.DataFrame({"id": []}), pairs=pairs)
