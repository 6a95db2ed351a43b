"""The row contract: every column a run's rows may carry, its type, which stages set it, what it means.

One name means one thing with one type, whatever mix of stages a run holds: `conform` casts every
contract column to its type when a part is written (`RunStore.append`) and again when it is read
(`RunStore.rows`), so a column never changes type because another stage wrote into the same run.
Columns outside the contract are allowed (a user's own annotations); each keeps the type of its first
write. Parts written by older versions are read through `LEGACY_RENAMES` (a column renamed per stage),
or refused with a message naming the column and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = [
    "ALL_STAGES",
    "COLUMNS",
    "CORE_COLUMNS",
    "MESSAGE_TYPE",
    "SCHEMA",
    "STAGES",
    "STATUSES",
    "TURN_SOURCE_TYPE",
    "Column",
    "ContractError",
    "conform",
    "contract_markdown",
    "stage_columns",
]

STAGES = ("instruction", "instance", "completion", "evolution", "conversation", "judgment", "ifd", "filter")
"""The stages this version writes (user code may append rows of other stages)."""
ALL_STAGES = ("*",)
STATUSES = ("kept", "dropped", "error")

_GEN = ("instruction", "instance", "completion", "evolution", "conversation", "judgment")  # rows from model calls
_SI = ("instruction",)  # self-instruct and Magpie candidates
_CONV = ("conversation",)  # multi-turn conversations (Magpie n_turns, extend_conversations)

MESSAGE_TYPE = pl.Struct({"role": pl.Utf8, "content": pl.Utf8})
"""One chat message, as TRL's conversational datasets hold it."""
TURN_SOURCE_TYPE = pl.Struct(
    {
        "role": pl.Utf8,
        "step": pl.Utf8,
        "model": pl.Utf8,
        "model_sha": pl.Utf8,
        "seed": pl.Int64,
        "prompt_hash": pl.Utf8,
        "finish_reason": pl.Utf8,
        "source_id": pl.Utf8,
    }
)
"""Who wrote one message of a conversation (see the `turn_sources` column)."""


@dataclass(frozen=True)
class Column:
    """One column of the contract."""

    name: str
    dtype: Any
    stages: tuple[str, ...]
    meaning: str

    @property
    def core(self) -> bool:
        return self.stages == ALL_STAGES


def _c(name: str, dtype: Any, stages: tuple[str, ...], meaning: str) -> Column:
    return Column(name, dtype, stages, meaning)


COLUMNS: tuple[Column, ...] = (
    # -- every row ----------------------------------------------------------------------------------
    _c(
        "id",
        pl.Utf8,
        ALL_STAGES,
        "stable hash of what made the row (stage, parent, prompt, parameters, "
        "model identity, seed): a resumed run skips ids it has",
    ),
    _c("stage", pl.Utf8, ALL_STAGES, "which step wrote the row: " + ", ".join(STAGES)),
    _c(
        "parent_id",
        pl.Utf8,
        ALL_STAGES,
        "the row this one derives from (instance → instruction, completion "
        "→ prompt, evolution → evolved prompt, conversation → the row it extends (a completion, a Magpie "
        "instruction or a shorter conversation), judgment/ifd → judged row, filter → decided row); null for roots",
    ),
    _c(
        "round",
        pl.Int64,
        ALL_STAGES,
        "bootstrap round (self-instruct), generation (evolution), or the "
        "prompt's round (completions); null where it does not apply",
    ),
    _c(
        "text",
        pl.Utf8,
        ALL_STAGES,
        "what the step produced: the instruction, the answer, the evolved "
        "prompt, a conversation's last assistant reply, the judge's output, a one-line IFD summary, or why a filter decided (filter)",
    ),
    _c(
        "prompt",
        pl.Utf8,
        ALL_STAGES,
        "the exact prompt sent to the model (chat: the messages as JSON; ifd: the conditioning text; "
        "conversation: what wrote the user turns, the user-simulator template or Magpie's pre-query prefix)",
    ),
    _c("model", pl.Utf8, ALL_STAGES, "display name of the model (file name or served model name)"),
    _c(
        "model_sha",
        pl.Utf8,
        ALL_STAGES,
        "model identity: the GGUF's sha256, or an endpoint's "
        "`model_identity` (default: its served model name); never a URL",
    ),
    _c("params", pl.Utf8, ALL_STAGES, "sampling parameters as JSON (ifd: the scoring settings)"),
    _c("seed", pl.Int64, ALL_STAGES, "sampling seed of this row's request (null when nothing was sampled)"),
    _c(
        "attributes",
        pl.Utf8,
        ("instruction", "completion", "evolution"),
        "values drawn by the step's samplers (persona, topic, ...) as JSON with sorted keys; "
        "null without samplers; part of the row id",
    ),
    _c("status", pl.Utf8, ALL_STAGES, "kept, dropped or error"),
    _c("reason", pl.Utf8, ALL_STAGES, "why a row was dropped or failed (null when kept)"),
    _c("prompt_tokens", pl.Int64, ALL_STAGES, "tokens in the prompt"),
    _c("completion_tokens", pl.Int64, ALL_STAGES, "tokens generated"),
    _c("seconds", pl.Float64, ALL_STAGES, "wall time of the request"),
    _c("created_at", pl.Utf8, ALL_STAGES, "ISO-8601 UTC time the row was written"),
    # -- generation -------------------------------------------------------------------------------
    _c("finish_reason", pl.Utf8, _GEN, "stop, length, error (the engine's finish reason)"),
    _c("raw_text", pl.Utf8, ("instruction", "instance", "evolution"), "the model's output before parsing"),
    _c(
        "model_id",
        pl.Utf8,
        ("completion", "conversation"),
        "same as model_sha (kept for the judge's self-preference)",
    ),
    _c(
        "source",
        pl.Utf8,
        ("instruction", "instance", "conversation"),
        "which generator: self_instruct or magpie (conversation: magpie or user_simulator)",
    ),
    _c(
        "run_seed",
        pl.Int64,
        ("instruction", "instance", "conversation"),
        "the config seed of the self-instruct/Magpie/conversation run",
    ),
    # -- self-instruct and Magpie candidates -------------------------------------------------------
    _c(
        "pool_id",
        pl.Utf8,
        _SI,
        "the candidate pool the row was decided in (generator, model identity, "
        "run seed, seed set): the threshold replay replays each pool on its own",
    ),
    _c(
        "decision_order",
        pl.Int64,
        _SI,
        "position in the sequence of keep/drop decisions of the run "
        "(the similarity filter is sequential; `apply_similarity_threshold` replays in this order)",
    ),
    _c("variant", pl.Utf8, _SI, "prompt variant: generation or classification"),
    _c("prompt_index", pl.Int64, _SI, "index of the prompt within its round"),
    _c("example_ids", pl.List(pl.Utf8), ("instruction", "instance"), "ids of the few-shot examples shown"),
    _c("is_classification", pl.Boolean, ("instruction", "instance"), "a classification task (output-first)"),
    _c("nearest_score", pl.Float64, _SI, "ROUGE-L F1 to the nearest pool instruction when decided"),
    _c("nearest_id", pl.Utf8, _SI, "id of that nearest pool instruction"),
    _c("nearest_text", pl.Utf8, _SI, "text of that nearest pool instruction"),
    _c("seed_score", pl.Float64, _SI, "ROUGE-L F1 to the nearest seed task"),
    _c("seed_nearest_id", pl.Utf8, _SI, "id of the nearest seed task"),
    _c("seed_nearest_text", pl.Utf8, _SI, "text of the nearest seed task"),
    _c("filter_reason", pl.Utf8, _SI, "the text filter or parse failure that dropped it (null: passed)"),
    # -- tasks and answers --------------------------------------------------------------------------
    _c(
        "instruction",
        pl.Utf8,
        ("instance", "completion", "conversation"),
        "the instruction the row answers (conversation: its first user message)",
    ),
    _c("input", pl.Utf8, ("instance", "completion"), "the task's input ('' when none)"),
    _c("output", pl.Utf8, ("instance",), "the instance's output"),
    _c(
        "sample",
        pl.Int64,
        ("completion", "conversation"),
        "sample index among the k answers to one prompt (conversation: among the alternative last replies)",
    ),
    _c("mode", pl.Utf8, ("completion",), "chat (the model's template) or completion (the text template)"),
    _c("target", pl.Utf8, ("completion",), "reference answer (loaded prediction files)"),
    _c("source_file", pl.Utf8, ("completion",), "file the row was loaded from (prediction files)"),
    # -- evolution ------------------------------------------------------------------------------------
    _c("root_id", pl.Utf8, ("evolution",), "the original prompt at the root of the lineage"),
    _c("generation", pl.Int64, ("evolution",), "evolution round (1 = rewrite of the original)"),
    _c("operator", pl.Utf8, ("evolution",), "Evol-Instruct operator that wrote it"),
    _c("parent_text", pl.Utf8, ("evolution",), "the prompt it rewrote"),
    # -- conversations ------------------------------------------------------------------------------
    _c(
        "messages",
        pl.List(MESSAGE_TYPE),
        _CONV,
        "the whole conversation as [{role, content}] (system, user, assistant), TRL's conversational layout",
    ),
    _c(
        "turn_sources",
        pl.List(TURN_SOURCE_TYPE),
        _CONV,
        "one entry per message, in order: role, step that wrote it (source, magpie, user_simulator, "
        "assistant, system_prompt), model, model_sha, seed, prompt_hash (hash of the exact prompt sent), "
        "finish_reason, source_id (the row a copied turn came from)",
    ),
    _c(
        "context_id",
        pl.Utf8,
        _CONV,
        "hash of the messages before the last assistant reply: rows sharing it are alternative last "
        "replies to one context (DPO candidates)",
    ),
    # -- judgments --------------------------------------------------------------------------------------
    _c("judge_kind", pl.Utf8, ("judgment",), "absolute or pairwise"),
    _c("judge_style", pl.Utf8, ("judgment",), "completion (plain prompt) or chat (user message)"),
    _c("rubric", pl.Utf8, ("judgment",), "rubric name"),
    _c(
        "rubric_version",
        pl.Utf8,
        ("judgment",),
        "content hash of the rubric version (its text is in the manifest under 'rubrics')",
    ),
    _c("parse_ok", pl.Boolean, ("judgment",), "the verdict parsed"),
    _c("score", pl.Int64, ("judgment",), "absolute: the parsed integer score"),
    _c("score_distribution", pl.Utf8, ("judgment",), "absolute: P(score) from logprobs, JSON"),
    _c("expected_score", pl.Float64, ("judgment",), "absolute: expected score under that distribution"),
    _c("score_std", pl.Float64, ("judgment",), "absolute: its standard deviation"),
    _c("score_entropy", pl.Float64, ("judgment",), "absolute: its entropy"),
    _c("score_coverage", pl.Float64, ("judgment",), "probability mass the distribution covers"),
    _c("distribution_approx", pl.Boolean, ("judgment",), "the distribution was approximated"),
    _c("answer_chars", pl.Int64, ("judgment",), "characters of the judged answer (shown first, pairwise)"),
    _c("judged_model_id", pl.Utf8, ("judgment",), "model identity of the judged answer's author"),
    _c("pair_id", pl.Utf8, ("judgment",), "pairwise: id of the answer pair"),
    _c("pair_order", pl.Utf8, ("judgment",), "pairwise: AB (the pair's a shown first) or BA"),
    _c("other_id", pl.Utf8, ("judgment",), "pairwise: id of the answer shown second"),
    _c("verdict", pl.Utf8, ("judgment",), "pairwise: A, B or tie (positional)"),
    _c("preferred_id", pl.Utf8, ("judgment",), "pairwise: the preferred answer's row id"),
    _c("verdict_distribution", pl.Utf8, ("judgment",), "pairwise: P(verdict) from logprobs, JSON"),
    _c("other_chars", pl.Int64, ("judgment",), "pairwise: characters of the answer shown second"),
    _c("other_model_id", pl.Utf8, ("judgment",), "pairwise: model identity of that answer's author"),
    # -- IFD (Superfiltering) -----------------------------------------------------------------------------
    _c("ifd", pl.Float64, ("ifd",), "PPL(answer | instruction) / PPL(answer) of the parent row"),
    _c("ppl_conditioned", pl.Float64, ("ifd",), "PPL(answer | instruction)"),
    _c("ppl_response", pl.Float64, ("ifd",), "PPL(answer) alone"),
    # -- filter decisions (Filters Apply, filters / near_dup / decontam steps; parent_id = the decided row) ----
    _c("filter_name", pl.Utf8, ("filter",), "which filter decided: length, keywords, ifd, rouge_l, decontam, near_dup"),
    _c("matched_id", pl.Utf8, ("filter",), "near_dup / rouge_l: the row or reference text it repeats; decontam: the benchmark item"),
    _c("matched_score", pl.Float64, ("filter",), "near_dup / rouge_l: the ROUGE-L F1 with that match"),
    _c("matched_span", pl.Utf8, ("filter",), "decontam: the word span shared with the benchmark item"),
)

SCHEMA: dict[str, Any] = {c.name: c.dtype for c in COLUMNS}
CORE_COLUMNS: dict[str, Any] = {c.name: c.dtype for c in COLUMNS if c.core}
_BY_NAME = {c.name: c for c in COLUMNS}

# Columns older versions wrote under another name: {old name: {stage: new name}}. A stage missing from
# the mapping has no meaning for the old column, and reading refuses it with a message.
LEGACY_RENAMES: dict[str, dict[str, str]] = {
    "order": {"instruction": "decision_order", "judgment": "pair_order"},
    "raw": {"evolution": "raw_text"},
}
# Columns whose meaning on one stage moved to another name (the name itself stays for other stages).
LEGACY_STAGE_MOVES: dict[tuple[str, str], str] = {("source", "completion"): "source_file"}
_LEGACY_WHY = {
    "order": "it meant the self-instruct decision order on instruction rows and the pairwise presentation "
    "order on judgment rows; it is now `decision_order` and `pair_order`",
    "raw": "it was the evolution rewriter's raw output; it is now `raw_text`",
}


class ContractError(ValueError):
    """Rows that break the row contract; the message names the column, the stage and what to fix."""


def stage_columns(stage: str) -> dict[str, Any]:
    """The contract columns rows of `stage` may carry (core columns first), with their types."""
    return {c.name: c.dtype for c in COLUMNS if c.core or stage in c.stages}


def _legacy(df: pl.DataFrame, where: str) -> pl.DataFrame:
    for (old, stage), new in LEGACY_STAGE_MOVES.items():
        if old in df.columns and "stage" in df.columns and new not in df.columns:
            moved = (pl.col("stage") == stage) & pl.col(old).is_not_null()
            if df.select(moved.any()).item():
                df = df.with_columns(
                    pl.when(moved).then(pl.col(old)).alias(new),
                    pl.when(moved).then(None).otherwise(pl.col(old)).alias(old),
                )
    for old, by_stage in LEGACY_RENAMES.items():
        if old not in df.columns or old in SCHEMA:
            continue
        stages = df["stage"] if "stage" in df.columns else pl.Series([None] * df.height, dtype=pl.Utf8)
        has = df[old].is_not_null()
        other = df.filter(has & ~stages.is_in(list(by_stage)))
        if other.height:
            bad = other["stage"][0] if "stage" in other.columns else None
            raise ContractError(
                f"{where}: column {old!r} on {bad!r} rows cannot be read: {_LEGACY_WHY[old]}, and it has no "
                f"meaning for stage {bad!r} (rename or drop it in that part)"
            )
        exprs = []
        for stage, new in by_stage.items():
            value: pl.Expr = pl.when(pl.col("stage") == stage).then(pl.col(old))
            if new in df.columns:
                value = pl.coalesce(pl.col(new), value)
            exprs.append(value.alias(f"__{new}"))
        df = df.with_columns(exprs)
        df = df.drop(old, *[n for n in by_stage.values() if n in df.columns])
        df = df.rename({f"__{n}": n for n in by_stage.values()})
    return df


def _struct_by_name(col: pl.Series, dtype: pl.List) -> pl.Series:
    """A list-of-struct column rebuilt field by field, by name: rows built from dicts hold the struct
    fields in key order (and a field that was always null as Null), which a positional cast refuses."""
    assert isinstance(dtype.inner, pl.Struct) and isinstance(col.dtype, pl.List)
    assert isinstance(col.dtype.inner, pl.Struct)
    fields = dtype.inner.fields
    have = {f.name for f in col.dtype.inner.fields}
    unknown = have - {f.name for f in fields}
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    inner = pl.struct(
        [
            (pl.element().struct.field(f.name) if f.name in have else pl.lit(None))
            .cast(f.dtype, strict=True)
            .alias(f.name)
            for f in fields
        ]
    )
    return col.to_frame().select(pl.col(col.name).list.eval(inner)).to_series().cast(dtype)


def _cast(df: pl.DataFrame, name: str, dtype: Any, where: str) -> pl.Expr:
    col = df[name]
    if col.dtype == dtype:
        return pl.col(name)
    if col.dtype == pl.Null or col.null_count() == df.height:
        return pl.lit(None, dtype=dtype).alias(name)
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        try:
            if not (isinstance(col.dtype, pl.List) and isinstance(col.dtype.inner, pl.Struct)):
                raise TypeError(f"not a list of records but {col.dtype}")
            return pl.lit(_struct_by_name(col, dtype)).alias(name)
        except Exception as exc:
            fields = ", ".join(f.name for f in dtype.inner.fields)
            raise ContractError(
                f"{where}: column {name!r} must be a list of records with fields {fields} "
                f"({_BY_NAME[name].meaning}); got {col.dtype} ({exc}). Use another column name for other data."
            ) from None
    if dtype == pl.Int64 and col.dtype.is_float():
        fractional = col.drop_nulls().drop_nans()
        if (fractional != fractional.round()).any():
            raise ContractError(
                f"{where}: column {name!r} holds integers (Int64), got a fractional value "
                f"{fractional.filter(fractional != fractional.round())[0]!r}"
            )
    try:
        col.cast(dtype, strict=True)
    except Exception as exc:
        stage = None
        if "stage" in df.columns:
            bad = df.filter(col.is_not_null() & col.cast(dtype, strict=False).is_null())
            stage = bad["stage"][0] if bad.height else None
        meaning = _BY_NAME[name].meaning
        raise ContractError(
            f"{where}: column {name!r} must be {dtype} ({meaning}); the {stage or 'given'} rows hold "
            f"{col.dtype} values that do not convert ({type(exc).__name__}). Use another column name for "
            "other data."
        ) from None
    return pl.col(name).cast(dtype)


def conform(df: pl.DataFrame, *, where: str = "rows", fill_core: bool = True) -> pl.DataFrame:
    """`df` with legacy columns renamed and every contract column cast to its type, core columns first
    (added as nulls when `fill_core`), then the other contract columns in contract order, then the rest."""
    if any(old in df.columns for old in (*LEGACY_RENAMES, *(o for o, _ in LEGACY_STAGE_MOVES))):
        df = _legacy(df, where)
    schema = df.schema
    present = [name for name in SCHEMA if name in schema]
    missing_core = [name for name in CORE_COLUMNS if name not in schema] if fill_core else []
    extra = [c for c in schema if c not in SCHEMA]
    if not missing_core and list(schema) == present + extra and all(schema[n] == SCHEMA[n] for n in present):
        return df  # a part written by this version: already in shape (the common case when reading)
    exprs: list[pl.Expr] = []
    for name, dtype in SCHEMA.items():
        if name in schema:
            exprs.append(_cast(df, name, dtype, where))
        elif name in missing_core:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(*exprs, *[pl.col(c) for c in extra])


def order_columns(columns: Iterable[str]) -> list[str]:
    """Contract columns in contract order, then the rest in the given order."""
    cols = list(columns)
    known = [c for c in SCHEMA if c in cols]
    return known + [c for c in cols if c not in SCHEMA]


def contract_markdown() -> str:
    """The contract as a markdown table (the README's run-directory section is generated from it)."""
    lines = ["| column | type | stages | meaning |", "|---|---|---|---|"]
    for c in COLUMNS:
        stages = "all" if c.core else ", ".join(c.stages)
        lines.append(f"| `{c.name}` | {c.dtype} | {stages} | {c.meaning} |")
    return "\n".join(lines)
