"""Judging conversations: conversation rows as rows the absolute/pairwise judges take, and rubrics that say
which part of the conversation is graded.

Two targets:
- "last_turn": instruction = the conversation before the last assistant reply (as a "User: / Assistant:"
  transcript, system message included), response = that last reply. Grades one reply in context; rows
  sharing a `context_id` are then alternative replies, the DPO candidates.
- "whole": instruction = the user's first message, response = the full transcript. Grades the assistant's
  side of the whole conversation.

The judged rows keep the conversation row's `id`, so judgments point back at it (`parent_id`).

```python
from workbench.judge import conversation_rubric, judgeable_conversations, run_absolute_judge
rows = judgeable_conversations(store.rows(), target="last_turn")
run_absolute_judge(judge, store, rows, conversation_rubric(rubric, "last_turn"))
```
"""

from __future__ import annotations

from typing import Any, Literal

import polars as pl

from ..generate.conversation import transcript
from .rubric import Rubric

__all__ = ["TARGET_NOTES", "ConversationTarget", "conversation_rubric", "judgeable_conversations"]

ConversationTarget = Literal["last_turn", "whole"]

TARGET_NOTES: dict[str, str] = {
    "last_turn": "This is a multi-turn conversation: the instruction is the conversation so far and the "
    "response is the assistant's last reply. Grade only that last reply, in the context of the conversation.",
    "whole": "This is a whole multi-turn conversation: the instruction is the user's first message and the "
    "response is the full transcript. Grade the assistant's side of the whole conversation: every reply, and "
    "how well each follows up on the user.",
}
"""What a wrapped rubric's task text says first, per target."""


def _check_target(target: str) -> None:
    if target not in TARGET_NOTES:
        raise ValueError(f"target must be one of {sorted(TARGET_NOTES)}, got {target!r}")


def _split(messages: list[dict[str, Any]], target: str, rid: str) -> tuple[str, str]:
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise ValueError(f"conversation {rid} has no assistant reply to judge")
    if target == "last_turn":
        return transcript(messages[:last]), messages[last]["content"]
    first = next((m["content"] for m in messages if m["role"] == "user"), "")
    return first, transcript(messages)


def judgeable_conversations(rows: pl.DataFrame, *, target: ConversationTarget = "last_turn") -> pl.DataFrame:
    """The kept conversation rows of `rows`, with `instruction` and `text` set to what the judge grades
    for `target` (`input` emptied; `judge_target` says which). Every other column, `id` first, stays."""
    _check_target(target)
    if rows.height == 0 or "messages" not in rows.columns:
        raise ValueError(
            "no conversation rows to judge: these rows have no 'messages' column (make conversations with "
            "extend_conversations or Magpie n_turns > 1)"
        )
    convs = rows.filter(pl.col("messages").is_not_null())
    if "stage" in convs.columns:
        convs = convs.filter(pl.col("stage") == "conversation")
    if "status" in convs.columns:
        convs = convs.filter(pl.col("status").is_null() | (pl.col("status") == "kept"))
    pieces = [_split(m, target, i) for i, m in zip(convs["id"], convs["messages"].to_list(), strict=True)]
    return convs.with_columns(
        pl.Series("instruction", [p[0] for p in pieces], dtype=pl.Utf8),
        pl.Series("text", [p[1] for p in pieces], dtype=pl.Utf8),
        pl.lit("", dtype=pl.Utf8).alias("input"),
        pl.lit(target, dtype=pl.Utf8).alias("judge_target"),
    )


def conversation_rubric(rubric: Rubric, target: ConversationTarget = "last_turn") -> Rubric:
    """A new version of `rubric` whose task text first says which part of a conversation is graded, named
    '<name>/<target>' so its scores are never mixed with the single-turn rubric's."""
    _check_target(target)
    note = TARGET_NOTES[target]
    if rubric.task_description.startswith(note):  # already wrapped: wrapping twice changes nothing
        return rubric
    task = f"{note} {rubric.task_description}".strip()
    return rubric.edit(name=f"{rubric.name}/{target}", task_description=task)
