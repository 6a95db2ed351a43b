"""The methods beyond a single verdict: few-shot prompts (d), juries (e), calibrated judges (f)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tests.judge.report_fakes import VerdictFake
from tests.judge.test_report import CFG, oracle
from workbench.judge import (
    calibrated_judge,
    compare_configs,
    decisions_from_judgments,
    fewshot_rubric,
    fit_logistic,
    judge_report,
    jury,
    load_answer_pairs,
    load_preference_pairs,
    run_pairwise_judge,
    split_pairs,
    with_examples,
)
from workbench.runs import RunStore


@pytest.fixture(scope="module")
def all_pairs() -> pl.DataFrame:
    return load_preference_pairs("hh-rlhf", seed=1)


def test_shipped_sets_and_a_held_out_split(all_pairs):
    assert all_pairs.height == 500 and set(all_pairs["human_pref"]) == {"A", "B"}
    share_a = (all_pairs["human_pref"] == "A").mean()
    assert 0.4 < share_a < 0.6  # chosen is shown first only about half the time
    tune, held = split_pairs(all_pairs, tune=30, held_out=100, seed=13, max_chars=1500)
    assert tune.height == 30 and held.height == 100
    assert not set(tune["pair_id"]) & set(held["pair_id"])
    answers, pairs = load_answer_pairs()
    assert answers.height == 76 and pairs.height == 38
    strong = pairs.select(pl.when(pl.col("human_pref") == "A").then("a_id").otherwise("b_id"))
    assert all(s.startswith("text-davinci-003/") for s in strong.to_series())
    assert set(pairs["a_id"]) | set(pairs["b_id"]) == set(answers["id"])


def test_fewshot_examples_never_include_the_judged_pair_and_reach_the_prompt(all_pairs, rubric, tmp_path):
    tune, held = split_pairs(all_pairs, tune=12, held_out=6, seed=5, max_chars=1200)
    # Labelled pool includes the judged pairs themselves: they must still never be their own example.
    pool = pl.concat([tune, held])
    shots = with_examples(held, pool, k=2, seed=0)
    for rec in shots.iter_rows(named=True):
        ex = json.loads(rec["fewshot_examples"])
        assert len(ex) == 2 and [e["winner"] for e in ex] == ["A", "B"]  # balanced slots
        texts = {e["response_a"] for e in ex} | {e["response_b"] for e in ex}
        assert rec["a_text"][:50] not in {t[:50] for t in texts}
    fs = fewshot_rubric(rubric.edit(allow_ties=False))
    backend = VerdictFake(oracle(pool))
    judged = run_pairwise_judge(backend, RunStore.create(tmp_path, "r"), shots, fs, CFG)
    assert judged.height == 12 and judged["parse_ok"].all()
    prompt = backend.calls[0].prompt or ""
    assert "Example 1." in prompt and "Example 2." in prompt and "Now the pair to judge." in prompt
    assert prompt.index("Example 2.") < prompt.rindex("Response A:")
    with pytest.raises(ValueError, match="at least 3 labelled"):
        with_examples(held, pool.head(2), k=2)


def _three_judges(pairs, rubric, tmp_path):
    store = RunStore.create(tmp_path, "r")
    r = rubric.edit(allow_ties=False)
    truth = oracle(pairs, p=1.0)
    rng = np.random.default_rng(0)
    noise = {}

    def noisy(seed: int, acc: float):
        def p(a, b):  # right with probability acc per pair, fixed per (judge, pair)
            key = (seed, min(a, b))
            if key not in noise:
                noise[key] = rng.random() < acc
            right = truth(a, b) > 0.5
            return 0.8 if right == noise[key] else 0.2

        return p

    rows = [
        run_pairwise_judge(VerdictFake(noisy(i, 0.7), name=f"j{i}"), store, pairs, r, CFG) for i in range(3)
    ]
    return pl.concat(rows)


def test_jury_majority_and_mean_and_gain_over_best_member(all_pairs, rubric, tmp_path):
    pairs = all_pairs.head(120)
    judged = _three_judges(pairs, rubric, tmp_path)
    dec = decisions_from_judgments(judged, methods=("probability",))
    members = dec.configs["config"].to_list()
    j = jury(dec, members)
    assert set(j.configs["config"]) == {"jury of 3 (majority)", "jury of 3 (mean p)"}
    assert j.configs["judgments"][0] == 3 * 240  # the members' cost together
    report = judge_report(dec, pairs=pairs, extra=[j], n_boot=300)
    t = report.table
    best = t.filter(pl.col("config").is_in(members)).sort("agreement")[-1, "config"]
    maj = t.filter(pl.col("config") == "jury of 3 (majority)").row(0, named=True)
    # Three independent 70% judges: majority is right ~78% of the time, above each member.
    assert maj["agreement"] > t.filter(pl.col("config") == best)["agreement"][0]
    gain = compare_configs(report, best, "jury of 3 (majority)")
    assert gain.difference > 0 and gain.ci_low <= gain.difference <= gain.ci_high
    with pytest.raises(ValueError, match="at least two"):
        jury(dec, members[:1])


def test_calibrated_judge_separates_what_the_judge_adds_beyond_length(all_pairs, rubric, tmp_path):
    pairs = all_pairs.head(120)
    judged = _three_judges(pairs, rubric, tmp_path)
    dec = decisions_from_judgments(judged, methods=("probability",))
    human = dict(pairs.select("pair_id", "human_pref").iter_rows())
    cal = calibrated_judge(dec, pairs, human, folds=5)
    report = judge_report(dec, pairs=pairs, extra=[cal], n_boot=300)
    t = report.table
    length_only = t.filter(pl.col("config") == "calibrated: length only").row(0, named=True)
    both = t.filter(pl.col("config") == "calibrated: length + judges").row(0, named=True)
    assert both["agreement"] > length_only["agreement"] + 0.1
    # Length alone, fitted, is about as good as the better length heuristic (it can learn its sign).
    assert abs(length_only["agreement"] - max(length_only["longest"], length_only["shortest"])) < 0.1
    cmp = compare_configs(report, "calibrated: length only", "calibrated: length + judges")
    assert cmp.ci_low > 0


def test_fit_logistic_recovers_a_known_slope():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 1))
    y = (rng.random(2000) < 1 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0])))).astype(float)
    w = fit_logistic(x, y, l2=0.0)
    assert w[0] == pytest.approx(0.5, abs=0.2) and w[1] == pytest.approx(2.0, abs=0.3)
