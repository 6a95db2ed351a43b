"""Superfiltering (Li et al. 2024): filter instruction data by a small model's IFD score.

Instruction-Following Difficulty: IFD(Q, A) = PPL(A | Q) / PPL(A), the perplexity of the response
given the instruction over its perplexity alone. Low IFD: the instruction makes the answer much
easier to predict (the pair is coherent and easy). High IFD: the instruction barely helps (a hard,
informative example). IFD > 1: the instruction makes the answer *less* likely, i.e. the two do not
match; Superfiltering drops those and keeps the highest-IFD fraction of the rest. The paper shows a
small scorer (GPT-2) ranks data much like a 7B one, so the default 270M model is enough here.

`add_ifd` adds the columns to a frame; `run_ifd` writes the scores to the run as rows of their own
(stage "ifd", parent_id = the scored row, with the scorer's identity and settings), resumable like
every step, so the inspector's IFD sort and chips read them (`with_ifd`) and a recipe replays the step.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..engine import Backend, Progress
from ..generate.completions import DEFAULT_COMPLETION_TEMPLATE, compile_template, render_template
from ..runs import RowWriter, RunStore, row_id

__all__ = ["IFDConfig", "add_ifd", "filter_by_ifd", "ifd_score", "run_ifd", "with_ifd"]

_SCORES = ("ifd", "ppl_conditioned", "ppl_response")


class IFDConfig(BaseModel):
    """How IFD is scored (the scorer is the backend the step runs on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruction_column: str = "instruction"
    """Column holding the instruction (Q)."""
    input_column: str | None = "input"
    """Column holding the task input appended to the instruction (None: no input)."""
    response_column: str = "text"
    """Column holding the response (A)."""
    template: str = DEFAULT_COMPLETION_TEMPLATE
    """Sandboxed Jinja template framing Q for PPL(A|Q): use the one the completions were made with."""
    batch_size: int = Field(32, ge=1)
    """Pairs scored per backend call (each batch is written to the run when it finishes)."""

    @field_validator("template")
    @classmethod
    def _template_compiles(cls, value: str) -> str:
        compile_template(value)
        return value


def ifd_score(ppl_conditioned: float, ppl_response: float) -> float | None:
    """PPL(A|Q) / PPL(A); None when either perplexity is missing or not finite."""
    if not (math.isfinite(ppl_conditioned) and math.isfinite(ppl_response)) or ppl_response <= 0:
        return None
    return ppl_conditioned / ppl_response


def add_ifd(
    backend: Backend,
    frame: pl.DataFrame,
    *,
    instruction_column: str = "instruction",
    input_column: str | None = "input",
    response_column: str = "text",
    template: str = DEFAULT_COMPLETION_TEMPLATE,
    batch_size: int = 32,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """`frame` with three new columns: `ppl_conditioned` = PPL(response | template(instruction, input)),
    `ppl_response` = PPL(response) and `ifd` = their ratio. Rows with an empty response, too long for
    the scorer's context, or left unscored by `cancel` get nulls. The conditioning text is the completion template the
    completions were made with, so the scorer sees the same framing."""
    for col in (instruction_column, response_column):
        if col not in frame.columns:
            raise ValueError(
                f"frame has no {col!r} column: IFD needs instruction and response columns "
                f"(set instruction_column=/response_column=); columns: {frame.columns}"
            )
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    instructions = frame[instruction_column].cast(pl.Utf8).fill_null("").to_list()
    inputs = (
        frame[input_column].cast(pl.Utf8).fill_null("").to_list()
        if input_column is not None and input_column in frame.columns
        else [""] * frame.height
    )
    responses = frame[response_column].cast(pl.Utf8).fill_null("").to_list()
    todo = [i for i, r in enumerate(responses) if r.strip()]
    conditioned: list[float | None] = [None] * frame.height
    alone: list[float | None] = [None] * frame.height
    t0 = time.perf_counter()
    for start in range(0, len(todo), batch_size):
        if cancel is not None and cancel.is_set():
            break
        idx = todo[start : start + batch_size]
        prompts = [
            render_template(template, instruction=instructions[i], input=inputs[i], system="") for i in idx
        ]
        conts = [responses[i] for i in idx]
        for i, a, b in zip(idx, *_score_pairs(backend, prompts, conts), strict=True):
            conditioned[i], alone[i] = a, b
        if on_progress is not None:
            done = min(start + batch_size, len(todo))
            on_progress(Progress(done, len(todo), 0, time.perf_counter() - t0))
    ifd = [
        None if a is None or b is None else ifd_score(a, b) for a, b in zip(conditioned, alone, strict=True)
    ]
    return frame.with_columns(
        pl.Series("ppl_conditioned", conditioned, dtype=pl.Float64),
        pl.Series("ppl_response", alone, dtype=pl.Float64),
        pl.Series("ifd", ifd, dtype=pl.Float64),
    )


def _score_pairs(
    backend: Backend, prompts: list[str], responses: list[str]
) -> tuple[list[float | None], list[float | None]]:
    """Perplexities with and without the instruction. If the batch fails (one pair too long for the
    context), pairs are retried one by one and only the failing ones get None."""
    try:
        with_q = backend.score(prompts, responses)
        alone = backend.score([""] * len(responses), responses)
        return [s.perplexity for s in with_q], [s.perplexity for s in alone]
    except ValueError:
        if len(prompts) == 1:
            return [None], [None]
        a: list[float | None] = []
        b: list[float | None] = []
        for p, r in zip(prompts, responses, strict=True):
            x, y = _score_pairs(backend, [p], [r])
            a += x
            b += y
        return a, b


def filter_by_ifd(
    frame: pl.DataFrame,
    max_ifd: float = 1.0,
    *,
    top_fraction: float | None = None,
    mark: bool = False,
) -> pl.DataFrame:
    """Superfiltering's selection. Rows with IFD >= `max_ifd` (the instruction does not help) or no
    IFD are dropped; with `top_fraction` (e.g. 0.1) only that fraction of the remaining rows with the
    highest IFD is kept. `mark=False` returns only the kept rows; `mark=True` returns every row with
    status="dropped" and a reason on the others (so nothing is lost)."""
    if "ifd" not in frame.columns:
        raise ValueError("frame has no 'ifd' column: run add_ifd(backend, frame) first")
    if top_fraction is not None and not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    no_score = pl.col("ifd").is_null() | pl.col("ifd").is_nan()
    ok = ~no_score & (pl.col("ifd") < max_ifd)
    top_reason: str | None = None
    if top_fraction is not None:
        n_ok = frame.filter(ok).height
        keep_n = max(1, math.ceil(n_ok * top_fraction)) if n_ok else 0
        # rank among eligible rows only, highest IFD first; ties keep frame order
        rank = pl.when(ok).then(pl.col("ifd")).otherwise(None).rank("ordinal", descending=True)
        ok = ok & (rank <= keep_n)
        top_reason = f"ifd below top {top_fraction:.0%}"
    reason = (
        pl.when(no_score)
        .then(pl.lit("no ifd score"))
        .when(pl.col("ifd") >= max_ifd)
        .then(pl.lit(f"ifd >= {max_ifd:g}"))
        .otherwise(pl.lit(top_reason, dtype=pl.Utf8))
    )
    if not mark:
        return frame.filter(ok)
    status = pl.col("status") if "status" in frame.columns else pl.lit("kept")
    old_reason = pl.col("reason") if "reason" in frame.columns else pl.lit(None, dtype=pl.Utf8)
    already_out = status != "kept"
    return frame.with_columns(
        pl.when(already_out | ok).then(status).otherwise(pl.lit("dropped")).alias("status"),
        pl.when(already_out | ok).then(old_reason).otherwise(reason).alias("reason"),
    )


def _texts(frame: pl.DataFrame, config: IFDConfig) -> tuple[list[str], list[str], list[str]]:
    for col in (config.instruction_column, config.response_column):
        if col not in frame.columns:
            raise ValueError(
                f"frame has no {col!r} column: IFD needs instruction and response columns "
                f"(set IFDConfig(instruction_column=/response_column=)); columns: {frame.columns}"
            )
    inst = frame[config.instruction_column].cast(pl.Utf8).fill_null("").to_list()
    inputs = (
        frame[config.input_column].cast(pl.Utf8).fill_null("").to_list()
        if config.input_column is not None and config.input_column in frame.columns
        else [""] * frame.height
    )
    return inst, inputs, frame[config.response_column].cast(pl.Utf8).fill_null("").to_list()


def _ifd_row(skeleton: dict[str, Any], cond: float | None, alone: float | None, why: str | None) -> dict[str, Any]:
    ratio = None if cond is None or alone is None else ifd_score(cond, alone)
    if ratio is None:
        reason = why or "no ifd score: a perplexity was not finite"
        return {**skeleton, "status": "dropped", "reason": reason, "text": reason, "ifd": None,
                "ppl_conditioned": cond, "ppl_response": alone}  # fmt: skip
    text = f"IFD {ratio:.4g} = PPL(A|Q) {cond:.4g} / PPL(A) {alone:.4g}"
    return {**skeleton, "status": "kept", "reason": None, "text": text, "ifd": ratio,
            "ppl_conditioned": cond, "ppl_response": alone}  # fmt: skip


def run_ifd(
    backend: Backend,
    store: RunStore,
    frame: pl.DataFrame,
    config: IFDConfig | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Score IFD for every row of `frame` (columns `id`, the instruction, the response) and append one
    row per scored row to `store`: stage "ifd", parent_id = the scored row, `ifd`, `ppl_conditioned`,
    `ppl_response`, the scorer's model and identity, the settings as `params`. Rows the run already has
    (same id: same scored text, template and scorer) are skipped; an empty response or one too long for
    the scorer is a dropped row with its reason. Returns the IFD rows of these inputs, in input order."""
    config = config or IFDConfig()
    if "id" not in frame.columns:
        raise ValueError("the rows to score need an 'id' column (it becomes the IFD row's parent_id)")
    instructions, inputs, responses = _texts(frame, config)
    params = json.dumps(config.model_dump(mode="json", exclude={"batch_size"}), sort_keys=True)
    rounds = frame["round"].to_list() if "round" in frame.columns else [None] * frame.height
    plan = []
    for parent, q, x, a, rnd in zip(frame["id"].to_list(), instructions, inputs, responses, rounds, strict=True):
        cond = render_template(config.template, instruction=q, input=x, system="")
        rid = row_id("ifd", parent, f"{cond}\x1f{a}", {"settings": params, "model": backend.model_id}, None)
        skeleton = {"id": rid, "stage": "ifd", "parent_id": parent, "round": rnd, "prompt": cond,
                    "model": backend.name, "model_sha": backend.model_id, "params": params, "seed": None}  # fmt: skip
        plan.append((skeleton, a))
    have = store.ids("ifd")
    todo = [(s, a) for s, a in plan if s["id"] not in have]
    t0 = time.perf_counter()
    with RowWriter(store) as writer:
        empty = [(s, a) for s, a in todo if not a.strip()]
        for s, _ in empty:
            writer.add(_ifd_row(s, None, None, "no ifd score: empty response"))
        scorable = [(s, a) for s, a in todo if a.strip()]
        for start in range(0, len(scorable), config.batch_size):
            if cancel is not None and cancel.is_set():
                break
            chunk = scorable[start : start + config.batch_size]
            t_batch = time.perf_counter()
            with_q, alone = _score_pairs(backend, [s["prompt"] for s, _ in chunk], [a for _, a in chunk])
            seconds = (time.perf_counter() - t_batch) / len(chunk)
            for (s, _), c, b in zip(chunk, with_q, alone, strict=True):
                why = "no ifd score: too long for the scorer's context" if c is None or b is None else None
                writer.add({**_ifd_row(s, c, b, why), "seconds": seconds})
            writer.flush()
            if on_progress is not None:
                done = min(start + config.batch_size, len(scorable))
                on_progress(Progress(done, len(scorable), 0, time.perf_counter() - t0))
    return store.rows_by_id(s["id"] for s, _ in plan)


def with_ifd(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` where every row an IFD step scored carries that score (`ifd`, `ppl_conditioned`,
    `ppl_response`; the latest IFD row of each scored row wins). Rows without a score keep what they had.
    A frame without IFD rows comes back unchanged, so this is cheap to call on any run's rows."""
    if frame.height == 0 or not {"stage", "parent_id", *_SCORES} <= set(frame.columns):
        return frame
    scores = frame.filter((pl.col("stage") == "ifd") & pl.col("parent_id").is_not_null())
    if scores.height == 0:
        return frame
    latest = scores.select(pl.col("parent_id").alias("id"), *_SCORES).unique("id", keep="last", maintain_order=True)
    joined = frame.join(latest, on="id", how="left", suffix="__ifd", maintain_order="left")
    is_ifd = pl.col("stage") == "ifd"
    return joined.with_columns(
        [pl.when(is_ifd).then(pl.col(c)).otherwise(pl.coalesce(pl.col(f"{c}__ifd"), pl.col(c))).alias(c) for c in _SCORES]
    ).drop([f"{c}__ifd" for c in _SCORES])
