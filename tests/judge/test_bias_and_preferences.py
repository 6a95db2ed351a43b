import polars as pl
import pytest
from judge_fakes import first_position_judge, length_judge, longer_pair_judge

from workbench.engine import FakeBackend
from workbench.judge import (
    aggregate_aspects,
    best_of_n,
    bias_report,
    build_dpo_pairs,
    make_pairs,
    run_absolute_judge,
    run_pairwise_judge,
)


def _metrics(report: pl.DataFrame) -> dict[str, float]:
    return dict(zip(report["metric"], report["value"], strict=True))


def test_length_bias_of_a_length_judge(store, rubric):
    texts = ["ok", "w" * 20, "w" * 35, "w" * 50]  # length_judge scores 1, 2, 3, 4
    rows = pl.DataFrame({"id": [f"c{i}" for i in range(4)], "instruction": ["q"] * 4, "text": texts})
    out = run_absolute_judge(FakeBackend(responder=length_judge), store, rows, rubric)
    report = bias_report(out, n_boot=100)
    assert _metrics(report)["length_spearman"] == pytest.approx(1.0)
    assert "self_score_gap" not in _metrics(report)  # no answer came from the judge model


def test_self_preference_when_judge_and_generator_are_the_same_file(store, rubric):
    # FakeBackend's model_id is "fake:0": rows written by it are "own" answers.
    rows = pl.DataFrame(
        {
            "id": ["c1", "c2", "c3", "c4"],
            "instruction": ["q"] * 4,
            "text": ["o" * 30, "o" * 31, "other", "other2"],  # scores 3, 3, 1, 1
            "model_id": ["fake:0", "fake:0", "other.gguf", "other.gguf"],
        }
    )
    out = run_absolute_judge(FakeBackend(responder=length_judge), store, rows, rubric)
    assert out["judged_model_id"].to_list() == rows["model_id"].to_list()
    gap = report_value(bias_report(out, n_boot=100), "self_score_gap")
    assert gap == pytest.approx(2.0)  # own answers score 3, others 1


def report_value(report, metric):
    return _metrics(report)[metric]


def test_pairwise_bias_metrics(store, rubric):
    left = pl.DataFrame(
        {
            "id": ["a1", "a2"],
            "instruction": ["q1", "q2"],
            "text": ["a long answer", "x"],
            "model_id": ["fake:0"] * 2,
        }
    )
    right = pl.DataFrame(
        {
            "id": ["b1", "b2"],
            "instruction": ["q1", "q2"],
            "text": ["y", "a longer one"],
            "model_id": ["m"] * 2,
        }
    )
    pairs = make_pairs(left, right)
    fair = run_pairwise_judge(FakeBackend(responder=longer_pair_judge), store, pairs, rubric)
    m = _metrics(bias_report(fair, n_boot=50))
    assert m["longer_preferred_rate"] == 1.0 and m["flip_rate"] == 0.0 and m["self_win_rate"] == 0.5
    biased = run_pairwise_judge(
        FakeBackend(responder=first_position_judge), store, pairs, rubric.edit(name="b")
    )
    mb = _metrics(bias_report(biased, n_boot=50).filter(pl.col("rubric") == "b"))
    assert mb["flip_rate"] == 1.0 and mb["first_position_rate"] == 1.0


@pytest.fixture
def completions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "parent_id": ["p1", "p1", "p1", "p2", "p2", "p3"],
            "instruction": ["Q1", "Q1", "Q1", "Q2", "Q2", "Q3"],
            "input": ["", "", "", "in", "in", ""],
            # length_judge scores 1 + len // 15
            "text": ["x" * 5, "x" * 35, "x" * 20, "y" * 10, "y" * 14, "z" * 70],
        }
    )


def test_dpo_pairs_respect_the_minimum_margin(store, rubric, completions):
    judgments = run_absolute_judge(FakeBackend(responder=length_judge), store, completions, rubric)
    assert judgments["score"].to_list() == [1, 3, 2, 1, 1, 5]
    pairs = build_dpo_pairs(judgments, completions, min_margin=1.0)
    assert pairs.columns[:6] == [
        "prompt_id",
        "prompt",
        "chosen",
        "rejected",
        "chosen_score",
        "rejected_score",
    ]
    # p1: 3 vs 1 (margin 2) kept; p2: 1 vs 1 dropped; p3 has one completion only.
    assert pairs.height == 1
    row = pairs.to_dicts()[0]
    assert (row["prompt"], row["chosen_id"], row["rejected_id"], row["margin"]) == ("Q1", "c2", "c1", 2.0)
    assert row["chosen"] == "x" * 35 and row["n_candidates"] == 3 and row["source"] == "absolute"
    assert build_dpo_pairs(judgments, completions, min_margin=3.0).height == 0
    assert build_dpo_pairs(judgments, completions, min_margin=0.0)["prompt"].to_list() == ["Q1", "Q2\n\nin"]


def test_multi_aspect_aggregate_and_best_of_n(store, rubric, completions):
    helpful = run_absolute_judge(FakeBackend(responder=length_judge), store, completions, rubric)
    brevity = rubric.edit(name="brief")
    inverse = FakeBackend(
        responder=lambda req: (
            length_judge(req)
            .replace("Score: 1", "Score: X")
            .replace("Score: 3", "Score: 1")
            .replace("Score: X", "Score: 3")
        )
    )
    brief = run_absolute_judge(inverse, store, completions, brevity)
    both = pl.concat([helpful, brief])
    agg = aggregate_aspects(both, weights={"helpful": 3.0, "brief": 1.0})
    c1 = agg.filter(pl.col("id") == "c1").to_dicts()[0]
    assert (c1["helpful"], c1["brief"], c1["n_aspects"]) == (1.0, 3.0, 2)
    assert c1["overall"] == pytest.approx((3 * 1 + 1 * 3) / 4)
    pairs = build_dpo_pairs(both, completions, min_margin=0.5, weights={"helpful": 3.0, "brief": 1.0})
    assert set(pairs["source"]) == {"multi-aspect"}
    top = best_of_n(helpful, completions, n=2)
    assert top.filter(pl.col("prompt_id") == "p1")["id"].to_list() == ["c2", "c3"]
    assert top.filter(pl.col("prompt_id") == "p1")["rank"].to_list() == [1, 2]
    assert best_of_n(helpful, completions, n=1, min_score=3)["id"].to_list() == ["c2", "c6"]
    with pytest.raises(ValueError, match="several versions"):
        aggregate_aspects(
            pl.concat(
                [
                    helpful,
                    run_absolute_judge(
                        FakeBackend(responder=length_judge),
                        store,
                        completions,
                        rubric.edit(task_description="v2"),
                    ),
                ]
            )
        )


def test_parse_failures_never_become_preferences(store, rubric, completions):
    outputs = iter(
        ["x\nScore: 5", "no score here", "x\nScore: 1", "x\nScore: 2", "x\nScore: 4", "x\nScore: 3"]
    )
    judgments = run_absolute_judge(FakeBackend(responder=lambda r: next(outputs)), store, completions, rubric)
    pairs = build_dpo_pairs(judgments, completions, min_margin=1.0)
    assert "c2" not in pairs["chosen_id"].to_list() + pairs["rejected_id"].to_list()
    assert pairs.filter(pl.col("prompt_id") == "p1")["chosen_id"].to_list() == ["c1"]


def test_dpo_pairs_from_pairwise_use_only_consistent_winners(store, rubric):
    comps = pl.DataFrame(
        {
            "id": ["a1", "b1", "a2", "b2"],
            "parent_id": ["p1", "p1", "p2", "p2"],
            "instruction": ["q1", "q1", "q2", "q2"],
            "text": ["long answer", "s", "same", "same"],
        }
    )
    pairs = make_pairs(
        comps.filter(pl.col("id").str.starts_with("a")), comps.filter(pl.col("id").str.starts_with("b"))
    )
    out = run_pairwise_judge(FakeBackend(responder=longer_pair_judge), store, pairs, rubric)
    dpo = build_dpo_pairs(out, comps)
    assert dpo["chosen_id"].to_list() == ["a1"] and dpo["rejected_id"].to_list() == ["b1"]  # q2 is a tie
    assert set(dpo["source"]) == {"pairwise"}
    flipped = run_pairwise_judge(
        FakeBackend(responder=first_position_judge), store, pairs, rubric.edit(name="f")
    )
    assert build_dpo_pairs(flipped, comps).height == 0


def test_ties_break_on_expected_score_and_margins_can_use_it():
    from workbench.judge import with_judgment_schema

    judgments = with_judgment_schema(
        pl.DataFrame(
            {
                "id": ["j1", "j2"],
                "stage": ["judgment"] * 2,
                "parent_id": ["c1", "c2"],
                "judge_kind": ["absolute"] * 2,
                "rubric": ["r"] * 2,
                "rubric_version": ["v"] * 2,
                "parse_ok": [True, True],
                "score": [3, 3],
                "expected_score": [2.8, 3.4],
            }
        )
    )
    comps = pl.DataFrame(
        {"id": ["c1", "c2"], "parent_id": ["p", "p"], "instruction": ["Q", "Q"], "text": ["one", "two"]}
    )
    assert best_of_n(judgments, comps, n=1)["id"].to_list() == ["c2"]
    assert build_dpo_pairs(judgments, comps, min_margin=1.0).height == 0  # equal verdicts: no pair
    by_expected = build_dpo_pairs(judgments, comps, min_margin=0.5, score="expected_score")
    assert by_expected["chosen_id"].to_list() == ["c2"] and by_expected["margin"][0] == pytest.approx(0.6)


def test_judgments_read_straight_from_the_run_work_without_logprob_columns(store, rubric, completions):
    """A backend without logprobs writes no distribution columns; frames read from the run still work."""
    run_absolute_judge(FakeBackend(responder=length_judge), store, completions, rubric)
    raw = store.rows().filter(pl.col("stage") == "judgment")
    assert "expected_score" not in raw.columns
    assert build_dpo_pairs(raw, completions, min_margin=1.0)["chosen_id"].to_list() == ["c2"]
    assert best_of_n(raw, completions, n=1).height == 3
    assert bias_report(raw, n_boot=20).height >= 1
