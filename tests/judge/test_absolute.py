import json
import threading

import polars as pl
import pytest
from judge_fakes import LogprobFake, length_judge

from workbench.engine import FakeBackend
from workbench.judge import (
    JudgeConfig,
    Rubric,
    parse_counts,
    parse_failures,
    run_absolute_judge,
    score_distributions,
)


def test_judgments_are_written_with_rubric_version_and_parent(store, rows, rubric):
    backend = FakeBackend(responder=length_judge)
    out = run_absolute_judge(backend, store, rows, rubric, JudgeConfig(max_tokens=32, max_reasoning_chars=60))
    assert out["parent_id"].to_list() == rows["id"].to_list()
    assert set(out["stage"]) == {"judgment"}
    assert set(out["rubric_version"]) == {rubric.version} and set(out["rubric"]) == {"helpful"}
    assert out["score"].to_list() == [1, 4, 1, 1]
    assert out["parse_ok"].all()
    assert out["answer_chars"].to_list() == [len(t) for t in rows["text"]]
    assert store.ids("judgment") == set(out["id"])
    # The base-model prompt ends with the feedback cue and carries the grammar.
    req = backend.calls[0]
    assert req.prompt is not None and req.prompt.endswith("\nFeedback:")
    assert req.params.grammar is not None and 'score ::= "1" | "2" | "3" | "4" | "5"' in req.params.grammar
    assert req.params.logprobs == 20 and req.params.temperature == 0.0
    assert json.loads(out["params"][0])["grammar"] == req.params.grammar


def test_resume_skips_done_rows_and_new_versions_judge_again(store, rows, rubric):
    backend = FakeBackend(responder=length_judge)
    cfg = JudgeConfig(max_tokens=32, max_reasoning_chars=60)
    first = run_absolute_judge(backend, store, rows.head(2), rubric, cfg)
    assert len(backend.calls) == 2
    again = run_absolute_judge(backend, store, rows, rubric, cfg)
    assert len(backend.calls) == 4  # only the two new rows ran
    assert again.head(2)["id"].to_list() == first["id"].to_list()
    assert store.rows().filter(pl.col("stage") == "judgment").height == 4
    v2 = rubric.edit(criteria=("Is concise",))
    out2 = run_absolute_judge(backend, store, rows, v2, cfg)
    assert len(backend.calls) == 8
    assert set(out2["rubric_version"]) == {v2.version}
    assert store.rows().filter(pl.col("stage") == "judgment").height == 8


def test_parse_failures_are_kept_counted_and_never_scored(store, rows, rubric):
    outputs = iter(["Great.\nScore: 5", "I refuse to grade.", "Hmm.\nScore: 9", ""])
    backend = FakeBackend(responder=lambda req: next(outputs))
    out = run_absolute_judge(backend, store, rows, rubric, JudgeConfig(constrained=False, max_tokens=32))
    assert backend.calls[0].params.grammar is None
    assert out.height == 4  # nothing dropped
    assert out["parse_ok"].to_list() == [True, False, False, False]
    assert out["score"].to_list() == [5, None, None, None]
    assert out["text"].to_list()[1] == "I refuse to grade."
    assert "outside the scale" in out["reason"][2]
    assert out["status"].to_list() == ["kept", "error", "error", "error"]
    counts = parse_counts(out).to_dicts()[0]
    assert (counts["n"], counts["parsed"], counts["failed"]) == (4, 1, 3)
    assert counts["failure_rate"] == pytest.approx(0.75)
    assert parse_failures(out).height == 3


def test_cancel_writes_nothing_and_a_rerun_finishes(store, rows, rubric):
    cancel = threading.Event()
    cancel.set()
    backend = FakeBackend(responder=length_judge)
    out = run_absolute_judge(backend, store, rows, rubric, cancel=cancel)
    assert out.height == 0 and store.ids("judgment") == set()
    assert run_absolute_judge(backend, store, rows, rubric).height == 4


def test_chat_models_get_messages_and_base_models_refuse_chat(store, rows, rubric):
    chat = FakeBackend(responder=length_judge, chat_template="{{ messages }}")
    out = run_absolute_judge(chat, store, rows.head(1), rubric)
    req = chat.calls[0]
    assert req.messages is not None and req.messages[0]["role"] == "user"
    assert "Response to grade:\nBlue." in req.messages[0]["content"]
    assert req.params.grammar is not None
    assert out["judge_style"].to_list() == ["chat"]
    with pytest.raises(ValueError, match="no chat template"):
        run_absolute_judge(FakeBackend(), store, rows, rubric, JudgeConfig(prompt_style="chat"))


def test_bad_inputs_say_what_to_fix(store, rows, rubric):
    with pytest.raises(ValueError, match="answer_column"):
        run_absolute_judge(FakeBackend(), store, rows.drop("text"), rubric)
    with pytest.raises(ValueError, match="instruction_column"):
        run_absolute_judge(FakeBackend(), store, rows.drop("instruction"), rubric)
    with pytest.raises(ValueError, match="cannot fit"):
        JudgeConfig(max_tokens=16, max_reasoning_chars=500)
    with pytest.raises(ValueError, match="extra"):
        JudgeConfig(max_tokenz=3)


def test_distribution_columns_from_logprobs(store, rows, rubric):
    backend = LogprobFake(responder=lambda req: " Ok.\nScore: 3")
    out = run_absolute_judge(backend, store, rows.head(2), rubric)
    dist = json.loads(out["score_distribution"][0])
    assert dist == pytest.approx({"1": 0.0, "2": 0.2, "3": 0.6, "4": 0.2, "5": 0.0})
    assert out["expected_score"][0] == pytest.approx(3.0)
    assert out["score_std"][0] == pytest.approx(0.4**0.5)
    assert out["score_coverage"][0] == pytest.approx(1.0)
    long = score_distributions(out)
    assert long.height == 10 and long.group_by("id").agg(pl.col("probability").sum())[
        "probability"
    ].to_list() == pytest.approx([1, 1])


def test_ten_point_scale_resolves_the_one_prefix_after_generation(store, rows):
    ten = Rubric(name="ten", levels={i: f"level {i}" for i in range(1, 11)})
    backend = LogprobFake(responder=lambda req: " Ok.\nScore: 2")
    out = run_absolute_judge(backend, store, rows.head(1), ten)
    dist = json.loads(out["score_distribution"][0])
    # "1" (a neighbour of the chosen "2") is off the judge's path: it is split between 1 and 10 with
    # backend.score, so the distribution is not marked approximate and sums to one.
    assert out["distribution_approx"][0] is False
    assert sum(dist.values()) == pytest.approx(1.0)
    assert dist["2"] == pytest.approx(0.6) and dist["3"] == pytest.approx(0.2)
    assert dist["1"] + dist["10"] == pytest.approx(0.2) and dist["10"] > 0
    assert out["score"][0] == 2
