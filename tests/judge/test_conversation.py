"""Judging conversations: the last reply in context, or the whole transcript, under a rubric that says which."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.engine import FakeBackend, GenerationRequest
from workbench.generate import ConversationConfig, extend_conversations
from workbench.judge import (
    JudgeConfig,
    Rubric,
    build_dpo_pairs,
    conversation_rubric,
    judgeable_conversations,
    run_absolute_judge,
)
from workbench.runs import RunStore

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
RUBRIC = Rubric(name="helpful", task_description="Is the reply helpful?",
                levels={1: "bad", 2: "weak", 3: "ok", 4: "good", 5: "great"})  # fmt: skip


def conversations(store: RunStore | None = None) -> pl.DataFrame:
    parents = pl.DataFrame(
        {"id": ["c0"], "stage": ["completion"], "status": ["kept"], "instruction": ["Name a fruit."],
         "input": [""], "text": ["An apple."]}
    )  # fmt: skip

    def chat(req: GenerationRequest) -> str:
        msgs = req.messages or ()
        if msgs and msgs[0]["content"].startswith("You are playing"):
            return "Why an apple?"
        return f"Because it is sweet (seed {req.params.seed % 100})."

    cfg = ConversationConfig(turns=1, final_samples=2, seed=4)
    return extend_conversations(FakeBackend(responder=chat, chat_template=CHATML), parents, cfg, store=store)


def test_last_turn_puts_the_context_in_the_instruction_and_the_reply_in_text():
    convs = conversations()
    rows = judgeable_conversations(convs, target="last_turn")
    assert rows["id"].to_list() == convs["id"].to_list()
    first = rows.row(0, named=True)
    assert first["instruction"] == "User: Name a fruit.\n\nAssistant: An apple.\n\nUser: Why an apple?"
    assert first["text"] == convs["messages"].to_list()[0][-1]["content"] and first["input"] == ""
    assert first["judge_target"] == "last_turn"


def test_whole_grades_the_full_transcript():
    convs = conversations()
    first = judgeable_conversations(convs, target="whole").row(0, named=True)
    assert first["instruction"] == "Name a fruit."
    assert first["text"].startswith("User: Name a fruit.\n\nAssistant: An apple.\n\nUser: Why an apple?")
    assert first["text"].count("Assistant:") == 2


def test_the_wrapped_rubric_says_what_is_graded_and_is_a_new_version():
    last = conversation_rubric(RUBRIC, "last_turn")
    whole = conversation_rubric(RUBRIC, "whole")
    assert last.name == "helpful/last_turn" and whole.name == "helpful/whole"
    assert last.task_description.startswith("This is a multi-turn conversation") and "last reply" in last.task_description
    assert "whole conversation" in whole.task_description and whole.task_description.endswith("Is the reply helpful?")
    assert len({RUBRIC.version, last.version, whole.version}) == 3 and last.parent_version == RUBRIC.version
    assert conversation_rubric(last, "last_turn") == last  # wrapping twice changes nothing
    assert "last reply" in last.render("ctx", "reply")


def test_a_judge_run_on_conversations_points_back_at_them_and_makes_dpo_pairs(tmp_path):
    store = RunStore.create(tmp_path, "r")
    convs = conversations(store)
    seen: list[str] = []

    def judge(req: GenerationRequest) -> str:
        text = req.prompt if req.prompt is not None else (req.messages or ())[-1]["content"]
        seen.append(text)
        return " Fine.\nScore: " + ("5" if "seed" in text and convs["text"][0] in text else "2")

    rubric = conversation_rubric(RUBRIC, "last_turn")
    rows = judgeable_conversations(convs, target="last_turn")
    judgments = run_absolute_judge(FakeBackend(responder=judge), store, rows, rubric, JudgeConfig(constrained=False))
    assert judgments["parent_id"].to_list() == convs["id"].to_list()
    assert all("the response is the assistant's last reply" in t for t in seen)
    assert all("User: Why an apple?" in t for t in seen)
    pairs = build_dpo_pairs(judgments, convs, min_margin=1, group_column="context_id")
    assert pairs.height == 1 and pairs["chosen_id"][0] == convs["id"][0]


def test_rows_without_conversations_are_refused():
    with pytest.raises(ValueError, match="no 'messages' column"):
        judgeable_conversations(pl.DataFrame({"id": ["a"], "text": ["x"]}))
    with pytest.raises(ValueError, match="target must be one of"):
        judgeable_conversations(conversations(), target="first")  # type: ignore[arg-type]
    no_reply = pl.DataFrame({"id": ["a"], "messages": [[{"role": "user", "content": "Hi"}]]})
    with pytest.raises(ValueError, match="no assistant reply"):
        judgeable_conversations(no_reply)
