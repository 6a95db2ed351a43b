"""Run rows → the dataset formats TRL trainers expect, as polars frames with provenance columns.

- SFT, conversational: `messages` = [{role: user, content: instruction}, {role: assistant, content: answer}]
  (a `system` message first when given). TRL's SFTTrainer applies the tokenizer's chat template.
- Prompt-completion: `prompt` and `completion` strings (or, conversational, one-message lists).
- DPO (preference): `prompt`, `chosen`, `rejected` strings (or conversational lists), pairs of answers to the
  same prompt whose judge scores differ by at least a margin.

Every format keeps provenance: the row ids, model hash, sampling parameters (JSON), seed, and, where a
judge scored the rows, the rubric name, rubric version hash and scores.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["dpo_frame", "judged_completions", "preference_pairs", "prompt_completion_frame", "sft_frame", "user_text"]

MESSAGE = pl.Struct({"role": pl.Utf8, "content": pl.Utf8})
_PROVENANCE = ("id", "parent_id", "model", "model_sha", "params", "seed")
_SCORES = ("rubric", "rubric_version", "score", "expected_score")


def user_text(rows: pl.DataFrame) -> pl.Expr:
    """The user's turn of a completion row: `instruction` plus its `input` when non-empty, else `prompt`."""
    if "instruction" not in rows.columns:
        return pl.col("prompt")
    inp = pl.col("input") if "input" in rows.columns else pl.lit(None, dtype=pl.Utf8)
    joined = pl.when(inp.is_not_null() & (inp.str.strip_chars() != "")).then(
        pl.col("instruction") + pl.lit("\n\n") + inp
    ).otherwise(pl.col("instruction"))
    return pl.coalesce(joined, pl.col("prompt"))


def judged_completions(
    rows: pl.DataFrame, *, stage: str = "completion", rubric: str | None = None
) -> pl.DataFrame:
    """Kept rows of `stage`, each with its latest judge score (columns rubric, rubric_version, score,
    expected_score; null when unjudged). With several rubrics, pass `rubric` to pick one."""
    answers = rows.filter((pl.col("stage") == stage) & (pl.col("status") == "kept"))
    answers = answers.unique("id", keep="first", maintain_order=True)
    has_judgments = "score" in rows.columns and rows.filter(pl.col("stage") == "judgment").height > 0
    if not has_judgments:
        return answers.with_columns(
            pl.lit(None, dtype=pl.Utf8).alias("rubric"),
            pl.lit(None, dtype=pl.Utf8).alias("rubric_version"),
            pl.lit(None, dtype=pl.Float64).alias("score"),
            pl.lit(None, dtype=pl.Float64).alias("expected_score"),
        )
    judgments = rows.filter((pl.col("stage") == "judgment") & (pl.col("status") == "kept"))
    if "judge_kind" in judgments.columns:
        judgments = judgments.filter(pl.col("judge_kind") == "absolute")
    if rubric is not None:
        judgments = judgments.filter(pl.col("rubric") == rubric)
    elif judgments["rubric"].n_unique() > 1:
        names = sorted(judgments["rubric"].unique().drop_nulls().to_list())
        raise ValueError(f"the run has judgments from several rubrics {names}: choose one with rubric=...")
    expected = pl.col("expected_score") if "expected_score" in judgments.columns else pl.lit(None)
    scores = judgments.select(
        pl.col("parent_id").alias("id"),
        pl.col("rubric").cast(pl.Utf8),
        pl.col("rubric_version").cast(pl.Utf8),
        pl.col("score").cast(pl.Float64),
        expected.cast(pl.Float64).alias("expected_score"),
    ).unique("id", keep="last", maintain_order=True)
    drop = [c for c in _SCORES if c in answers.columns]
    return answers.drop(drop).join(scores, on="id", how="left")


def _provenance(rows: pl.DataFrame) -> list[pl.Expr]:
    exprs = []
    for col in (*_PROVENANCE, *_SCORES):
        if col in rows.columns:
            dtype = pl.Int64 if col == "seed" else pl.Float64 if col in ("score", "expected_score") else pl.Utf8
            exprs.append(pl.col(col).cast(dtype))
    return exprs


def _message(role: str, content: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(role).alias("role"), content.alias("content"))


def sft_frame(rows: pl.DataFrame, *, system_prompt: str | None = None) -> pl.DataFrame:
    """SFT, conversational: one `messages` list per completion row, provenance columns kept."""
    turns = [_message("user", user_text(rows)), _message("assistant", pl.col("text"))]
    if system_prompt:
        turns.insert(0, _message("system", pl.lit(system_prompt)))
    return rows.select(pl.concat_list(turns).cast(pl.List(MESSAGE)).alias("messages"), *_provenance(rows))


def prompt_completion_frame(rows: pl.DataFrame, *, conversational: bool = False) -> pl.DataFrame:
    """Prompt-completion: `prompt` and `completion` (strings, or one-message lists when conversational)."""
    if conversational:
        prompt = pl.concat_list([_message("user", user_text(rows))]).cast(pl.List(MESSAGE))
        completion = pl.concat_list([_message("assistant", pl.col("text"))]).cast(pl.List(MESSAGE))
    else:
        prompt, completion = user_text(rows), pl.col("text")
    return rows.select(prompt.alias("prompt"), completion.alias("completion"), *_provenance(rows))


def preference_pairs(scored: pl.DataFrame, *, min_margin: float = 1.0) -> pl.DataFrame:
    """For each prompt (parent_id), its best- and worst-scored answers when they differ by ≥ `min_margin`.

    Ties on score are broken by row id, so the same run always gives the same pairs. Returns one row per
    pair: prompt text, chosen/rejected text, ids, scores, margin, and provenance.
    """
    if min_margin <= 0:
        raise ValueError(f"min_margin must be > 0 (got {min_margin}): a pair needs a preferred answer")
    base = scored.filter(pl.col("score").is_not_null()).with_columns(user_text(scored).alias("_user"))
    keep = ["id", "parent_id", "_user", "text", "score", "rubric", "rubric_version", "model_sha", "params", "seed"]
    base = base.select([c for c in keep if c in base.columns])
    best = base.sort(["score", "id"], descending=[True, False]).group_by("parent_id", maintain_order=True).first()
    worst = base.sort(["score", "id"]).group_by("parent_id", maintain_order=True).first()
    pairs = best.join(worst, on="parent_id", suffix="_rejected").filter(
        (pl.col("score") - pl.col("score_rejected")) >= min_margin
    )
    return pairs.select(
        pl.col("_user").alias("prompt_text"),
        pl.col("text").alias("chosen_text"),
        pl.col("text_rejected").alias("rejected_text"),
        pl.col("parent_id").alias("prompt_id"),
        pl.col("id").alias("chosen_id"),
        pl.col("id_rejected").alias("rejected_id"),
        pl.col("score").alias("chosen_score"),
        pl.col("score_rejected").alias("rejected_score"),
        (pl.col("score") - pl.col("score_rejected")).alias("score_margin"),
        pl.col("rubric"),
        pl.col("rubric_version"),
        pl.col("model_sha"),
        pl.col("params").alias("chosen_params"),
        pl.col("params_rejected").alias("rejected_params"),
        pl.col("seed").cast(pl.Int64).alias("chosen_seed"),
        pl.col("seed_rejected").cast(pl.Int64).alias("rejected_seed"),
    ).sort("prompt_id")


def dpo_frame(pairs: pl.DataFrame, *, conversational: bool = False) -> pl.DataFrame:
    """DPO: `prompt`, `chosen`, `rejected` (strings, or message lists when conversational), provenance kept.

    `pairs` has columns prompt_text, chosen_text, rejected_text (as from `preference_pairs`)."""
    missing = {"prompt_text", "chosen_text", "rejected_text"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs frame lacks {sorted(missing)}; build it with preference_pairs()")
    if conversational:
        cols: list[Any] = [
            pl.concat_list([_message("user", pl.col("prompt_text"))]).cast(pl.List(MESSAGE)).alias("prompt"),
            pl.concat_list([_message("assistant", pl.col("chosen_text"))]).cast(pl.List(MESSAGE)).alias("chosen"),
            pl.concat_list([_message("assistant", pl.col("rejected_text"))]).cast(pl.List(MESSAGE)).alias("rejected"),
        ]
    else:
        cols = [
            pl.col("prompt_text").alias("prompt"),
            pl.col("chosen_text").alias("chosen"),
            pl.col("rejected_text").alias("rejected"),
        ]
    rest = [c for c in pairs.columns if c not in ("prompt_text", "chosen_text", "rejected_text")]
    return pairs.select(*cols, *rest)
