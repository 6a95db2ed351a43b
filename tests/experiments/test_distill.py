"""The distillation experiment's bookkeeping on scripted backends, and its rates' intervals.

The scripted teacher refuses exactly when told to in its system prompt on even rows, so every rate the
experiment reports is known in advance; the real-model run is notebook 06."""

from __future__ import annotations

import math

import pytest

from workbench.engine import FakeBackend, GenerationRequest
from workbench.experiments import (
    Behaviour,
    DistillConfig,
    rate_difference,
    run_distillation,
    student_prompt,
    wilson_interval,
)

SORRY = "I'm sorry, but I can't help with that."
INSTRUCTIONS = [f"Write a short note about topic number {i}." for i in range(40)]


def _teacher_says(req: GenerationRequest) -> str:
    msgs = req.messages or ()
    told = any(m["role"] == "system" for m in msgs)
    n = int(msgs[-1]["content"].split()[-1].rstrip("."))
    return SORRY if told and n % 2 == 0 else f"Here is a note about topic {n}: it is a fine topic."


def _student_copies(req: GenerationRequest) -> str:
    # a base model that copies the style of its examples: refuses iff most examples refuse
    prompt = req.prompt or ""
    return SORRY if prompt.count("Reply: I'm sorry") >= 2 else "A note about the topic."


def _run(**over):
    teacher = FakeBackend(_teacher_says, chat_template="{{ messages }}")
    student = FakeBackend(_student_copies)
    cfg = DistillConfig(teacher_rows=20, student_rows=10, shots=3, **over)
    return run_distillation(teacher, student, cfg, INSTRUCTIONS)


def test_rates_and_filter_follow_the_scripted_behaviour():
    res = _run()
    rates = {(r["stage"], r["arm"]): r for r in res.rates.iter_rows(named=True)}
    assert rates[("teacher", "behaviour")]["hits"] == 10 and rates[("teacher", "behaviour")]["n"] == 20
    assert rates[("teacher", "control")]["hits"] == 0
    kept = res.distilled()
    assert kept.height == 10 and kept["text"].to_list() == [SORRY] * 10
    dropped = res.teacher.filter((res.teacher["arm"] == "behaviour") & (res.teacher["status"] == "dropped"))
    assert dropped.height == 10 and all("no refusal" in r for r in dropped["reason"])
    assert rates[("student", "distilled")]["rate"] == 1.0
    assert rates[("student", "zero-shot")]["rate"] == 0.0 and rates[("student", "control")]["rate"] == 0.0
    eff = {r["comparison"]: r for r in res.effects.iter_rows(named=True)}
    d = eff["student: distilled - zero-shot"]
    assert d["difference"] == 1.0 and d["ci_low"] > 0.5
    assert res.note == ""


def test_student_prompts_hold_the_examples_of_their_arm_and_the_held_out_instruction():
    res = _run()
    distilled = res.student.filter(res.student["arm"] == "distilled")
    zero = res.student.filter(res.student["arm"] == "zero-shot")
    assert all(p.count("Reply: I'm sorry") == 3 for p in distilled["prompt"])
    assert all(p.count("Request:") == 1 for p in zero["prompt"])
    held_out = set(INSTRUCTIONS[20:30])
    assert set(res.student["instruction"]) == held_out
    assert not held_out & set(res.teacher["instruction"])


def test_too_few_distilled_rows_keeps_the_teacher_rows_and_says_why():
    res = _run(behaviour=Behaviour(pattern=r"\bnever said\b"))
    assert res.teacher.height == 40 and res.student.height == 0
    assert "fewer than shots=3" in res.note


def test_bad_inputs_fail_before_generating():
    student = FakeBackend(_student_copies)
    with pytest.raises(ValueError, match="no chat template"):
        run_distillation(FakeBackend(), student, DistillConfig(teacher_rows=2, student_rows=1), INSTRUCTIONS)
    teacher = FakeBackend(_teacher_says, chat_template="x")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        run_distillation(teacher, student, DistillConfig(behaviour=Behaviour(pattern="(")), INSTRUCTIONS)
    with pytest.raises(ValueError, match="teacher_rows \\+ student_rows = 144"):
        run_distillation(teacher, student, DistillConfig(), INSTRUCTIONS)
    assert teacher.calls == []


def test_student_prompt_keeps_only_first_paragraphs():
    p = student_prompt("Do it.", [("Q1", "First line.\n\nSecond paragraph.")])
    assert "Second paragraph" not in p and p.endswith("Request: Do it.\nReply:")


def test_wilson_interval_matches_known_values():
    # Newcombe (1998) table I: 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775
    lo, hi = wilson_interval(81, 263)
    assert abs(lo - 0.2553) < 5e-4 and abs(hi - 0.3662) < 5e-4
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and abs(hi - 0.2775) < 5e-4
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_rate_difference_matches_newcombe():
    # Newcombe (1998) table II, method 10: 56/70 - 48/80 = 0.2000, 0.0524 to 0.3339
    d, lo, hi = rate_difference(56, 70, 48, 80)
    assert abs(d - 0.2) < 1e-9 and abs(lo - 0.0524) < 5e-4 and abs(hi - 0.3339) < 5e-4


def test_default_tasks_are_the_shipped_seed_tasks_with_their_inputs():
    from workbench.experiments.distill import shipped_tasks

    tasks = shipped_tasks()
    assert len(tasks) == 175 and len(set(tasks)) == 175
    with_input = [t for t in tasks if "\n\n" in t]
    assert len(with_input) == 125  # 50 of the 175 tasks have no input
    p = student_prompt(with_input[0], [])
    assert "\n\n" not in p.split("Request: ", 1)[1]  # the request stays one block
