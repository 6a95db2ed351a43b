"""What the Judge tab judges: the run's answers, or its conversations (the last reply in context, or the whole
conversation), and the record of a Run that Save recipe turns into a judge step.

Pure functions over the run's rows, so the panel stays a thin view: `judge_pool` gives the rows a Run can
sample (the same rows, split the same way, as a recipe's judge step reads), `pick_sample` the sample the
knobs pick, and `judged_rubric` the rubric a conversation judge uses (wrapped with what it grades).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from workbench.filters.apply import with_filter_drops
from workbench.judge import (
    JudgeConfig,
    Rubric,
    conversation_rubric,
    judgeable_conversations,
    judgeable_rows,
    pairs_within_groups,
    sample_rows,
)

__all__ = ["JUDGE_ROWS", "JudgedRun", "judge_pairs", "judge_pool", "judged_rubric", "pick_sample"]

JudgeWhat = Literal["completions", "last_turn", "whole"]
JUDGE_ROWS: tuple[tuple[str, JudgeWhat], ...] = (
    ("answers", "completions"),
    ("conversations: last reply", "last_turn"),
    ("conversations: whole", "whole"),
)
"""The Judge tab's `judge` choices (label, value)."""


@dataclass(frozen=True)
class JudgedRun:
    """One Judge Run as it ran (what Save recipe records): the rows it judged, out of how many, how."""

    ids: list[str]
    pool: int
    config: JudgeConfig
    mode: Literal["absolute", "pairwise"]
    rubric: Rubric
    """The rubric the judgments carry (for conversations, wrapped with what is graded)."""
    what: JudgeWhat = "completions"


def judge_pool(rows: pl.DataFrame, what: JudgeWhat) -> pl.DataFrame:
    """The rows a Run can judge: kept answers with text, or kept conversations split for `what`
    (`judgeable_conversations`), after any Filters Apply, each id once, in run order."""
    if what == "completions":
        return judgeable_rows(rows)
    if rows.height == 0 or "stage" not in rows.columns or "messages" not in rows.columns:
        return pl.DataFrame(schema={"id": pl.Utf8, "instruction": pl.Utf8, "text": pl.Utf8})
    view = with_filter_drops(rows)
    convs = view.filter((pl.col("stage") == "conversation") & (pl.col("status") == "kept"))
    convs = convs.unique("id", keep="first", maintain_order=True)
    if convs.height == 0:
        return pl.DataFrame(schema={"id": pl.Utf8, "instruction": pl.Utf8, "text": pl.Utf8})
    return judgeable_conversations(convs, target=what)


def pick_sample(pool: pl.DataFrame, n: int, seed: int, *, pairwise: bool) -> pl.DataFrame:
    """A reproducible sample of `n` rows; pairwise: `n` prompts with at least two answers, all their answers."""
    if pool.height == 0:
        return pool
    if pairwise and "parent_id" in pool.columns:
        groups = pool.group_by("parent_id", maintain_order=True).len().filter(pl.col("len") >= 2)
        picked = sample_rows(groups, n, seed=seed)["parent_id"].to_list() if groups.height else []
        return pool.filter(pl.col("parent_id").is_in(picked))
    return sample_rows(pool, n, seed=seed)


def judged_rubric(rubric: Rubric, what: JudgeWhat) -> Rubric:
    """The rubric a Run judges with: as edited for answers; for conversations, wrapped so its task says
    which part of the conversation is graded (a version of its own)."""
    return rubric if what == "completions" else conversation_rubric(rubric, what)


def judge_pairs(sample: pl.DataFrame, what: JudgeWhat, pairwise: bool) -> pl.DataFrame | None:
    """What a Run (or its Preview) judges the sample as: None for absolute, the pairs for pairwise. Raises
    ValueError, in words, when there is nothing it can judge."""
    if what != "completions" and pairwise:
        raise ValueError("pairwise compares two answers to one prompt: judge conversations in absolute mode")
    if sample.height == 0:
        raise ValueError(f"there are no {'completions' if what == 'completions' else 'conversations'} to judge "
                         "in this run: generate some, or call set_rows()")  # fmt: skip
    if not pairwise:
        return None
    pairs = pairs_within_groups(sample)
    if pairs.height == 0:
        raise ValueError("pairwise needs two answers to the same prompt (rows sharing a parent_id)")
    return pairs
