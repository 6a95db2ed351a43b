"""Mechanics shared by absolute and pairwise judging: prompts, requests, resume, writing rows."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from ..engine import Backend, Generation, GenerationRequest, SamplingParams
from ..engine.protocol import ProgressCallback
from ..runs import CORE_COLUMNS, RowWriter, RunStore
from ..runs.contract import stage_columns
from .config import JudgeConfig
from .distribution import Resolver

JudgeStyle = Literal["completion", "chat"]

# Judgment columns beyond the core ones, with their dtypes: the row contract's judgment columns
# (workbench.runs.contract is the one definition; parts with all-null columns are cast back).
JUDGMENT_COLUMNS: dict[str, Any] = {
    name: dtype for name, dtype in stage_columns("judgment").items() if name not in CORE_COLUMNS
}


@dataclass
class JudgeTask:
    """One judge call: its row id, the request, and the row fields known before it runs."""

    id: str
    request: GenerationRequest
    skeleton: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def judge_style(backend: Backend, config: JudgeConfig) -> JudgeStyle:
    if config.prompt_style == "chat":
        if backend.chat_template is None:
            raise ValueError(
                f"prompt_style='chat' but {backend.name} has no chat template (a base model): "
                "use prompt_style='completion' or 'auto'"
            )
        return "chat"
    if config.prompt_style == "completion":
        return "completion"
    return "chat" if backend.chat_template else "completion"


def instruction_texts(rows: pl.DataFrame, config: JudgeConfig) -> list[str]:
    """The instruction each judged row answers (with its input appended, when it has one)."""
    col = config.instruction_column
    if col is None:
        col = "instruction" if "instruction" in rows.columns else "prompt"
    if col not in rows.columns:
        raise ValueError(
            f"the rows to judge have no {col!r} column (columns: {rows.columns}); "
            "set JudgeConfig(instruction_column=...)"
        )
    texts = [str(t) if t is not None else "" for t in rows[col].to_list()]
    if config.instruction_column is None and col == "instruction" and "input" in rows.columns:
        inputs = rows["input"].to_list()
        texts = [
            f"{t}\n\n{i}" if isinstance(i, str) and i.strip() else t
            for t, i in zip(texts, inputs, strict=True)
        ]
    return texts


def column_or_none(rows: pl.DataFrame, name: str | None) -> list[Any]:
    if name is None or name not in rows.columns:
        return [None] * rows.height
    return rows[name].to_list()


def judged_model_ids(rows: pl.DataFrame) -> list[Any]:
    """Which model wrote each judged answer (for self-preference), when the rows say."""
    for col in ("model_id", "model_sha", "model"):
        if col in rows.columns:
            return rows[col].cast(pl.Utf8).to_list()
    return [None] * rows.height


def make_request(
    style: JudgeStyle, body: str, params: SamplingParams, key: str, config: JudgeConfig
) -> tuple[GenerationRequest, str]:
    """The request and the prompt text shown in the row (chat: the user message)."""
    if style == "chat":
        return GenerationRequest(messages=({"role": "user", "content": body},), params=params, key=key), body
    prompt = body + config.completion_suffix
    return GenerationRequest(prompt=prompt, params=params, key=key), prompt


def skeleton(
    task_id: str,
    parent_id: str,
    backend: Backend,
    shown_prompt: str,
    params: SamplingParams,
    style: JudgeStyle,
) -> dict[str, Any]:
    return {
        "id": task_id,
        "stage": "judgment",
        "parent_id": parent_id,
        "prompt": shown_prompt,
        "model": backend.name,
        "model_sha": backend.model_id,
        "params": params.as_json(),
        "seed": params.seed,
        "judge_style": style,
    }


def generation_fields(gen: Generation) -> dict[str, Any]:
    return {
        "text": gen.text,
        "finish_reason": gen.finish_reason,
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "seconds": gen.seconds,
    }


def score_resolver(backend: Backend, gen: Generation, text_before: str) -> Resolver | None:
    """Split an ambiguous score prefix ("1" of "10") with the model's own continuation probabilities."""
    if gen.prompt_text is None:
        return None
    context = gen.prompt_text + text_before

    def resolve(prefix: str, longer: Sequence[str]) -> dict[str, float]:
        others = [c for c in longer if c != prefix]
        if not others:
            return {prefix: 1.0}
        try:
            scores = backend.score([context + prefix] * len(others), [c[len(prefix) :] for c in others])
        except Exception:  # e.g. an HTTP server without prompt logprobs: fall back (marked approx)
            return {}
        probs = {c: math.exp(sum(s.logprobs)) for c, s in zip(others, scores, strict=True)}
        if prefix in longer:
            # What is left ends the number at the prefix itself (the grammar allows nothing else).
            probs[prefix] = max(1e-9, 1.0 - sum(probs.values()))
        return probs

    return resolve


RowFn = Callable[[JudgeTask, Generation, bool], "dict[str, Any] | None"]


def run_tasks(
    backend: Backend,
    store: RunStore,
    tasks: list[JudgeTask],
    make_row: RowFn,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Run the tasks the run does not have yet, appending their rows as they finish.

    `make_row(task, gen, final)` returns the row, or None (only when `final` is False) to ask to be
    called again after generation finished: resolving a multi-digit score needs `backend.score`, which
    must not run inside the generate callback. Cancelled rows are not written, so a resume redoes them.
    """
    existing = store.ids("judgment")
    todo = [t for t in tasks if t.id not in existing]
    if not todo:
        return
    pending: list[tuple[JudgeTask, Generation]] = []
    with RowWriter(store) as writer:

        def on_result(index: int, gen: Generation) -> None:
            if gen.finish_reason == "cancelled":
                return
            row = make_row(todo[index], gen, False)
            if row is None:
                pending.append((todo[index], gen))
            else:
                writer.add(row)

        backend.generate(
            [t.request for t in todo], on_progress=on_progress, on_result=on_result, cancel=cancel
        )
        for task, gen in pending:
            row = make_row(task, gen, True)
            assert row is not None
            writer.add(row)


def collect(store: RunStore, ids: Sequence[str]) -> pl.DataFrame:
    """The judgment rows with these ids, in this order, judgment columns typed."""
    order = pl.DataFrame(
        {"id": list(ids), "_order": list(range(len(ids)))}, schema={"id": pl.Utf8, "_order": pl.Int64}
    )
    rows = store.rows()
    if rows.height:
        rows = rows.filter(pl.col("stage") == "judgment")
    rows = rows.filter(pl.col("id").is_in(list(ids))).unique("id", keep="first", maintain_order=True)
    rows = rows.join(order, on="id").sort("_order").drop("_order")
    return with_judgment_schema(rows)


def with_judgment_schema(rows: pl.DataFrame) -> pl.DataFrame:
    """Every judgment column present with its dtype (null where a row kind does not use it)."""
    exprs = []
    for col, dtype in JUDGMENT_COLUMNS.items():
        if col in rows.columns:
            exprs.append(pl.col(col).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(col))
    rows = rows.with_columns(exprs)
    core = [c for c in CORE_COLUMNS if c in rows.columns]
    rest = [c for c in rows.columns if c not in CORE_COLUMNS and c not in JUDGMENT_COLUMNS]
    return rows.select(*core, *JUDGMENT_COLUMNS, *rest)


def judgments_in(store: RunStore, kind: str | None = None) -> pl.DataFrame:
    """Every judgment row of a run (optionally only 'absolute' or 'pairwise'), typed."""
    rows = store.rows()
    if rows.height == 0 or "judge_kind" not in rows.columns:
        return with_judgment_schema(rows.clear())
    rows = with_judgment_schema(rows.filter(pl.col("stage") == "judgment"))
    return rows.filter(pl.col("judge_kind") == kind) if kind else rows


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
