"""Run rows → the dataset formats TRL trainers expect, as polars frames with provenance columns.

- SFT, conversational: `messages` = [{role: user, content: instruction}, {role: assistant, content: answer}]
  (a `system` message first when given). TRL's SFTTrainer applies the tokenizer's chat template.
- Prompt-completion: `prompt` and `completion` strings (or, conversational, one-message lists).
- DPO (preference): `prompt`, `chosen`, `rejected` strings (or conversational lists): the judge's pairs
  (`workbench.judge.build_dpo_pairs`: best vs worst answer to a prompt, scores at least a margin apart).

Conversation rows (stage "conversation", a `messages` column) export in TRL's conversational layouts only:
SFT `{"messages": [...the whole conversation...]}`; prompt-completion `{"prompt": [...all but the last
message...], "completion": [{"role": "assistant", ...}]}`; DPO `{"prompt": [...the shared context...],
"chosen": [{"role": "assistant", ...}], "rejected": [{"role": "assistant", ...}]}` (candidates are rows
sharing a `context_id`: alternative last replies). Their `turn_sources` (who wrote each turn) go along.

Every format keeps provenance: the row ids, model hash, sampling parameters (JSON), seed, and, where a
judge scored the rows, the rubric name, rubric version hash and scores.
"""

from __future__ import annotations

import polars as pl

from ..runs.contract import MESSAGE_TYPE

__all__ = [
    "dpo_frame",
    "has_conversations",
    "judged_completions",
    "prompt_completion_frame",
    "sft_frame",
    "user_text",
]

MESSAGE = MESSAGE_TYPE
_PROVENANCE = ("id", "parent_id", "model", "model_sha", "params", "seed")
_CONVERSATION_PROVENANCE = ("turn_sources", "context_id")
_SCORES = ("rubric", "rubric_version", "score", "expected_score")


def user_text(rows: pl.DataFrame) -> pl.Expr:
    """The user's turn of a completion row: `instruction` plus its `input` when non-empty, else `prompt`."""
    if "instruction" not in rows.columns:
        return pl.col("prompt")
    inp = pl.col("input") if "input" in rows.columns else pl.lit(None, dtype=pl.Utf8)
    joined = pl.when(inp.is_not_null() & (inp.str.strip_chars() != "")).then(
        pl.col("instruction") + pl.lit("\n\n") + inp
    ).otherwise(pl.col("instruction"))
    # rows built outside a run (an experiment's frame) may have no `prompt` column to fall back on
    return pl.coalesce(joined, pl.col("prompt")) if "prompt" in rows.columns else joined


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
    if has_conversations(rows):
        exprs.extend(pl.col(c) for c in _CONVERSATION_PROVENANCE if c in rows.columns)
    return exprs


def _message(role: str, content: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(role).alias("role"), content.alias("content"))


def has_conversations(rows: pl.DataFrame) -> bool:
    """Whether any row carries a multi-turn `messages` list (conversation rows)."""
    return "messages" in rows.columns and rows.height > 0 and rows["messages"].null_count() < rows.height


def _single_turn(rows: pl.DataFrame, what: str) -> None:
    if has_conversations(rows) and rows["messages"].null_count():
        raise ValueError(
            f"{what}: the rows mix conversations and single-turn answers; export one stage at a time "
            "(ExportSpec.stage='conversation' or 'completion')"
        )


def _standard_refused(what: str) -> ValueError:
    return ValueError(
        f"{what}: conversation rows have several turns, which plain strings cannot hold; "
        "export them with conversational=True (TRL's message lists)"
    )


def _context(messages: pl.Expr) -> pl.Expr:
    """Every message before the last one (a conversation's last assistant reply)."""
    return messages.list.head(messages.list.len() - 1)


def sft_frame(rows: pl.DataFrame, *, system_prompt: str | None = None) -> pl.DataFrame:
    """SFT, conversational: one `messages` list per completion row (a conversation row: its whole
    `messages`), provenance columns kept. `system_prompt` goes first where no system message is."""
    _single_turn(rows, "SFT")
    if has_conversations(rows):
        messages = pl.col("messages").cast(pl.List(MESSAGE))
        if system_prompt:
            has_system = messages.list.first().struct.field("role") == "system"
            with_system = pl.concat_list([_message("system", pl.lit(system_prompt)), messages])
            messages = pl.when(has_system).then(messages).otherwise(with_system)
        return rows.select(messages.cast(pl.List(MESSAGE)).alias("messages"), *_provenance(rows))
    turns = [_message("user", user_text(rows)), _message("assistant", pl.col("text"))]
    if system_prompt:
        turns.insert(0, _message("system", pl.lit(system_prompt)))
    return rows.select(pl.concat_list(turns).cast(pl.List(MESSAGE)).alias("messages"), *_provenance(rows))


def prompt_completion_frame(rows: pl.DataFrame, *, conversational: bool = False) -> pl.DataFrame:
    """Prompt-completion: `prompt` and `completion` (strings, or one-message lists when conversational;
    a conversation row: every message but the last, and the last assistant reply)."""
    _single_turn(rows, "prompt-completion")
    if has_conversations(rows):
        if not conversational:
            raise _standard_refused("prompt-completion")
        messages = pl.col("messages").cast(pl.List(MESSAGE))
        prompt = _context(messages)
        completion = pl.concat_list([messages.list.last()]).cast(pl.List(MESSAGE))
    elif conversational:
        prompt = pl.concat_list([_message("user", user_text(rows))]).cast(pl.List(MESSAGE))
        completion = pl.concat_list([_message("assistant", pl.col("text"))]).cast(pl.List(MESSAGE))
    else:
        prompt, completion = user_text(rows), pl.col("text")
    return rows.select(prompt.alias("prompt"), completion.alias("completion"), *_provenance(rows))


def dpo_frame(
    pairs: pl.DataFrame,
    completions: pl.DataFrame,
    judgments: pl.DataFrame | None = None,
    *,
    conversational: bool = False,
) -> pl.DataFrame:
    """DPO: `prompt`, `chosen`, `rejected` (strings, or message lists when conversational).

    `pairs` comes from `workbench.judge.build_dpo_pairs` (prompt, chosen, rejected, scores, ids, margin);
    provenance is added from the completion rows (model hash, parameters, seed of each side) and the
    judgments (rubric name and version hash). Conversation candidates (grouped by `context_id`) give
    the shared context as the prompt list; they need `conversational=True`."""
    missing = {"prompt", "chosen", "rejected", "chosen_id", "rejected_id"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs frame lacks {sorted(missing)}; build it with workbench.judge.build_dpo_pairs")
    conversations = has_conversations(completions)
    if conversations and not conversational:
        raise _standard_refused("DPO")
    side = completions.select(
        "id",
        *[pl.col(c).cast(pl.Utf8) for c in ("model_sha", "params") if c in completions.columns],
        *[pl.col("seed").cast(pl.Int64)] if "seed" in completions.columns else [],
    ).unique("id", keep="first")
    out = pairs.join(side.rename({c: f"chosen_{c}" for c in side.columns if c != "id"}), left_on="chosen_id", right_on="id", how="left")
    out = out.join(side.rename({c: f"rejected_{c}" for c in side.columns if c != "id"}), left_on="rejected_id", right_on="id", how="left")
    if judgments is not None and judgments.height and "rubric_version" in judgments.columns:
        versions = judgments.group_by("parent_id").agg(
            pl.col("rubric").cast(pl.Utf8).unique().sort().str.join(",").alias("rubric"),
            pl.col("rubric_version").cast(pl.Utf8).unique().sort().str.join(",").alias("rubric_version"),
        )
        out = out.join(versions, left_on="chosen_id", right_on="parent_id", how="left")
    if conversations:
        contexts = completions.select(
            pl.col("id").alias("chosen_id"), _context(pl.col("messages").cast(pl.List(MESSAGE))).alias("_context"),
            *[pl.col(c).alias(f"chosen_{c}") for c in _CONVERSATION_PROVENANCE if c in completions.columns],
        ).unique("chosen_id", keep="first")  # fmt: skip
        out = out.join(contexts, on="chosen_id", how="left")
        if "context_id" in completions.columns:  # a pair must answer one context, or DPO learns nonsense
            ctx = completions.select("id", pl.col("context_id").alias("_ctx")).unique("id", keep="first")
            sides = out.join(ctx.rename({"id": "chosen_id", "_ctx": "_c"}), on="chosen_id", how="left").join(
                ctx.rename({"id": "rejected_id", "_ctx": "_r"}), on="rejected_id", how="left"
            )
            if sides.filter(pl.col("_c") != pl.col("_r")).height:
                raise ValueError(
                    "DPO pairs of conversations must share the context before the last reply: build them "
                    "with build_dpo_pairs(..., group_column='context_id')"
                )
        out = out.with_columns(
            pl.col("_context").alias("prompt"),
            pl.concat_list([_message("assistant", pl.col("chosen"))]).cast(pl.List(MESSAGE)).alias("chosen"),
            pl.concat_list([_message("assistant", pl.col("rejected"))]).cast(pl.List(MESSAGE)).alias("rejected"),
        ).drop("_context")
    elif conversational:
        out = out.with_columns(
            pl.concat_list([_message("user", pl.col("prompt"))]).cast(pl.List(MESSAGE)).alias("prompt"),
            pl.concat_list([_message("assistant", pl.col("chosen"))]).cast(pl.List(MESSAGE)).alias("chosen"),
            pl.concat_list([_message("assistant", pl.col("rejected"))]).cast(pl.List(MESSAGE)).alias("rejected"),
        )
    first = ["prompt", "chosen", "rejected"]
    return out.select(*first, *[c for c in out.columns if c not in first])
