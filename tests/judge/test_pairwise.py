import json

import polars as pl
import pytest
from judge_fakes import first_position_judge, longer_pair_judge

from workbench.engine import FakeBackend
from workbench.judge import (
    JudgeConfig,
    flip_rates,
    make_pairs,
    pair_id,
    pair_outcomes,
    parse_counts,
    run_pairwise_judge,
)


@pytest.fixture
def pairs() -> pl.DataFrame:
    left = pl.DataFrame(
        {
            "id": ["a1", "a2", "a3"],
            "instruction": ["Q1", "Q2", "Q3"],
            "text": ["short", "a much longer answer", "same"],
            "model_id": ["m1"] * 3,
        }
    )
    right = pl.DataFrame(
        {
            "id": ["b1", "b2", "b3"],
            "instruction": ["Q1", "Q2", "Q3"],
            "text": ["a longer answer", "tiny", "same"],
            "model_id": ["m2"] * 3,
        }
    )
    return make_pairs(left, right)


def test_make_pairs_joins_on_the_instruction(pairs):
    assert pairs.columns[:6] == ["pair_id", "instruction", "a_id", "a_text", "b_id", "b_text"]
    assert pairs["pair_id"].to_list() == [pair_id("a1", "b1"), pair_id("a2", "b2"), pair_id("a3", "b3")]
    assert pairs["a_model_id"].to_list() == ["m1"] * 3 and pairs["b_model_id"].to_list() == ["m2"] * 3
    with pytest.raises(ValueError, match="lacks columns"):
        make_pairs(pairs, pairs)


def test_both_orders_run_and_a_position_biased_judge_flips_every_time(store, rubric, pairs):
    backend = FakeBackend(responder=first_position_judge)
    out = run_pairwise_judge(backend, store, pairs, rubric)
    assert out.height == 6 and out["pair_order"].to_list() == ["AB", "BA"] * 3
    first = out.filter(pl.col("pair_order") == "AB")["parent_id"].to_list()
    assert first == ["a1", "a2", "a3"]
    assert out.filter(pl.col("pair_order") == "BA")["parent_id"].to_list() == ["b1", "b2", "b3"]
    assert out["preferred_id"].to_list() == out["parent_id"].to_list()
    req = backend.calls[1]
    assert req.prompt is not None and req.prompt.index("Response A:\na longer answer") < req.prompt.index("Response B:\nshort")
    assert req.params.grammar is not None and '"tie"' in req.params.grammar
    rates = flip_rates(out).to_dicts()[0]
    assert rates["pairs"] == 3 and rates["both_parsed"] == 3 and rates["flips"] == 3
    assert rates["flip_rate"] == 1.0 and rates["first_position_rate"] == 1.0
    assert pair_outcomes(out)["winner"].to_list() == [None, None, None]


def test_an_order_independent_judge_never_flips_and_ties_are_allowed(store, rubric, pairs):
    out = run_pairwise_judge(FakeBackend(responder=longer_pair_judge), store, pairs, rubric)
    outcomes = pair_outcomes(out)
    assert outcomes["consistent"].to_list() == [True, True, True]
    assert outcomes["winner"].to_list() == ["b1", "a2", "tie"]
    rates = flip_rates(out).to_dicts()[0]
    assert (
        rates["flip_rate"] == 0.0
        and rates["ties"] == 2
        and rates["first_position_rate"] == pytest.approx(2 / 6)
    )


def test_ties_are_parse_failures_when_the_rubric_forbids_them(store, rubric, pairs):
    strict = rubric.edit(allow_ties=False)
    backend = FakeBackend(responder=longer_pair_judge)
    out = run_pairwise_judge(backend, store, pairs, strict, JudgeConfig(constrained=False))
    tied = out.filter(pl.col("parent_id").is_in(["a3", "b3"]))
    assert tied["parse_ok"].to_list() == [False, False]
    assert all("does not allow ties" in r for r in tied["reason"])
    assert tied["text"].to_list() == [" Longer wins.\nWinner: tie"] * 2  # raw output kept
    counts = parse_counts(out).to_dicts()[0]
    assert counts["failed"] == 2 and counts["judge_kind"] == "pairwise"
    rates = flip_rates(out).to_dicts()[0]
    assert rates["both_parsed"] == 2 and rates["parse_failures"] == 2


def test_pairwise_resume_and_single_order(store, rubric, pairs):
    backend = FakeBackend(responder=first_position_judge)
    run_pairwise_judge(backend, store, pairs, rubric)
    run_pairwise_judge(backend, store, pairs, rubric)
    assert len(backend.calls) == 6
    one = run_pairwise_judge(
        FakeBackend(responder=first_position_judge),
        store,
        pairs,
        rubric.edit(name="x"),
        JudgeConfig(both_orders=False),
    )
    assert one.height == 3 and set(one["pair_order"]) == {"AB"}
    assert pair_outcomes(one)["winner"].to_list() == ["a1", "a2", "a3"]
    assert json.loads(one["params"][0])["grammar"] is not None


def test_pairs_within_groups_pairs_two_answers_per_prompt():
    from workbench.judge import pairs_within_groups

    rows = pl.DataFrame(
        {
            "id": ["c1", "c2", "c3", "c4", "c5"],
            "parent_id": ["p1", "p1", "p1", "p2", "p3"],
            "instruction": ["Q1", "Q1", "Q1", "Q2", "Q3"],
            "text": ["a", "b", "c", "d", "e"],
        }
    )
    pairs = pairs_within_groups(rows)
    assert pairs.select("a_id", "b_id", "instruction").rows() == [("c1", "c2", "Q1")]
    with pytest.raises(ValueError, match="parent_id"):
        pairs_within_groups(rows.drop("parent_id"))
