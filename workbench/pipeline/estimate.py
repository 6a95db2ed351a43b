"""How long a step will take, from a preview of it and this machine's measured prefill and decode rates.

A preview runs the real step on a handful of rows through a `RecordingBackend`, which notes every request
it passes on (the row id it is for, prompt and completion tokens). Joined with the rows the preview wrote,
that gives, per sub-step (stage: instructions, instances, completions, judgments, …), how many requests a
row of input costs and how long its prompts and answers are. `measure_rates` times this machine on the
model: prefill tokens/s, and decode tokens/s with one sequence and with as many in flight as the backend
runs. The estimate of a full run scales each sub-step's requests to the full input and prices them:

    seconds = Σ_substeps  requests × (prompt_tokens / prefill_rate + completion_tokens / decode_rate(width))

where width = min(requests, the backend's parallel slots) and decode_rate interpolates between the one-
and many-sequence rates. It is an estimate, not a bound: prompts sharing a prefix prefill faster than
counted, and prefill overlapping decode is counted twice (both make it pessimistic); a preview whose rows
happen to be short makes it optimistic. `tests/benchmarks/bench_estimator.py` measures its error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..engine import Backend, Generation, GenerationRequest, SamplingParams
from ..engine.protocol import ProgressCallback, ResultCallback

__all__ = ["Estimate", "Rates", "RecordingBackend", "SubStep", "measure_rates", "substeps_from_preview"]


_DECODE_PROMPT_CHARS = 120
"""Decode is timed on prompts cut to this many characters (see `measure_rates`)."""


@dataclass(frozen=True)
class Rates:
    """This machine on this model: tokens/s of prefill and of decode, at one and at `width` sequences."""

    prefill_tok_s: float
    decode_tok_s_single: float
    decode_tok_s_batched: float
    width: int
    seconds: float = 0.0
    """What measuring cost."""

    def decode_at(self, sequences: int) -> float:
        """Aggregate decode tokens/s with `sequences` in flight (linear between the two measured points)."""
        if self.width <= 1 or sequences <= 1:
            return self.decode_tok_s_single
        k = min(sequences, self.width)
        share = (k - 1) / (self.width - 1)
        return self.decode_tok_s_single + share * (self.decode_tok_s_batched - self.decode_tok_s_single)

    def describe(self) -> str:
        return (f"prefill {self.prefill_tok_s:.0f} tok/s, decode {self.decode_tok_s_single:.0f} tok/s with one "
                f"sequence and {self.decode_tok_s_batched:.0f} with {self.width}")  # fmt: skip


@dataclass(frozen=True)
class SubStep:
    """One kind of request a step sends: how many a full run sends and their mean token counts."""

    stage: str
    requests: float
    prompt_tokens: float
    completion_tokens: float
    note: str = ""

    def seconds(self, rates: Rates) -> float:
        if self.requests <= 0:
            return 0.0
        width = max(1, min(round(self.requests), rates.width))
        prefill = self.requests * self.prompt_tokens / max(rates.prefill_tok_s, 1e-9)
        decode = self.requests * self.completion_tokens / max(rates.decode_at(width), 1e-9)
        return prefill + decode


@dataclass(frozen=True)
class Estimate:
    """A full run's expected time, sub-step by sub-step."""

    substeps: tuple[SubStep, ...]
    rates: Rates

    @property
    def seconds(self) -> float:
        return sum(s.seconds(self.rates) for s in self.substeps)

    def describe(self) -> str:
        parts = [f"{s.stage}: {s.requests:.0f} requests ≈ {_fmt(s.seconds(self.rates))}"
                 + (f" ({s.note})" if s.note else "") for s in self.substeps]  # fmt: skip
        return f"a full run ≈ {_fmt(self.seconds)} — " + "; ".join(parts) + f" — at {self.rates.describe()}"


def _fmt(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _Call:
    key: str | None
    prompt_tokens: int
    completion_tokens: int
    ok: bool


@dataclass
class RecordingBackend:
    """A backend that passes every call to `inner` and notes each request's row id and token counts."""

    inner: Backend
    calls: list[_Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __getattr__(self, name: str) -> Any:  # name, model_id, chat_template, count_tokens, score, embed…
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def chat_template(self) -> str | None:
        return self.inner.chat_template

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        gens = self.inner.generate(requests, on_progress=on_progress, on_result=on_result, cancel=cancel)
        with self._lock:
            self.calls.extend(_Call(r.key, g.prompt_tokens, g.completion_tokens, g.ok)
                              for r, g in zip(requests, gens, strict=True))  # fmt: skip
        return gens

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            [(c.key, c.prompt_tokens, c.completion_tokens, c.ok) for c in self.calls],
            schema={"key": pl.Utf8, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64, "ok": pl.Boolean},
            orient="row",
        )


def substeps_from_preview(
    recorder: RecordingBackend,
    rows: pl.DataFrame,
    scale: Mapping[str, float],
    *,
    notes: Mapping[str, str] | None = None,
) -> tuple[SubStep, ...]:
    """Sub-steps of a full run: the preview's requests grouped by the stage of the row each was for,
    their mean tokens, and their count multiplied by `scale[stage]` (full run / preview; a stage missing
    from `scale` is skipped). Requests whose row was not written (a cancelled or dropped attempt that left
    no row) count under "other" with the scale of the most common stage."""
    calls = recorder.frame()
    if calls.is_empty():
        return ()
    stages = rows.select(pl.col("id").alias("key"), "stage") if rows.height else pl.DataFrame(
        schema={"key": pl.Utf8, "stage": pl.Utf8})  # fmt: skip
    joined = calls.join(stages.unique("key"), on="key", how="left").with_columns(pl.col("stage").fill_null("other"))
    per = (joined.group_by("stage", maintain_order=True)
           .agg(pl.len().alias("n"), pl.col("prompt_tokens").mean(), pl.col("completion_tokens").mean()))  # fmt: skip
    common = per.sort("n", descending=True)["stage"][0]
    out = []
    for r in per.iter_rows(named=True):
        factor = scale.get(r["stage"], scale.get(common) if r["stage"] == "other" else None)
        if factor is None:
            continue
        out.append(SubStep(r["stage"], r["n"] * factor, float(r["prompt_tokens"] or 0),
                           float(r["completion_tokens"] or 0), (notes or {}).get(r["stage"], "")))  # fmt: skip
    return tuple(out)


def measure_rates(
    backend: Backend,
    prompts: Sequence[str],
    *,
    width: int | None = None,
    decode_tokens: int = 12,
    repeats: int = 2,
    max_prompt_chars: int = 600,
) -> Rates:
    """Time prefill and decode on `backend` with `prompts` (cycled to `width` requests, each made distinct
    at its start so no two share a prefix, and cut to `max_prompt_chars`): one pass of 1-token answers
    (prefill), one of answers of 2..2x`decode_tokens` tokens with `width` in flight (rows ending at
    different times, as in a real step), and one of `decode_tokens` with a single sequence.

    Each pass runs `repeats` times and the fastest counts: a pass takes a second or less, so one burst of
    other work on the machine (a test, a build) would otherwise set the rate for the backend's lifetime
    (measured: one such burst made a quiet machine's estimates 2.4-5.6x too long). The default width is
    the backend's parallel slots, at most 16: wider batches decode faster than measured (errs long)."""
    if not prompts:
        raise ValueError("measure_rates needs at least one prompt")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    w = int(width or min(16, getattr(backend, "n_parallel", 0) or getattr(backend, "max_concurrency", 0) or 8))
    texts = [f"({i + 1}) {prompts[i % len(prompts)][-max_prompt_chars:]}" for i in range(w)]
    start = time.perf_counter()

    def timed(batch: list[str], max_tokens: int | list[int]) -> tuple[float, list[Generation]]:
        lengths = max_tokens if isinstance(max_tokens, list) else [max_tokens] * len(batch)
        best: tuple[float, list[Generation]] | None = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            gens = backend.generate([
                GenerationRequest(prompt=t, params=SamplingParams(max_tokens=n, temperature=0.8, seed=i))
                for i, (t, n) in enumerate(zip(batch, lengths, strict=True))
            ])
            took = time.perf_counter() - t0
            if best is None or took < best[0]:
                best = (took, gens)
        assert best is not None
        return best

    t_prefill, first = timed(texts, 1)
    prompt_tokens = sum(g.prompt_tokens for g in first)
    prefill = prompt_tokens / max(t_prefill, 1e-9)
    # Decode on short prompts: a decode rate is (time with n tokens − time with 1) / tokens, and with long
    # prompts both times are mostly prefill, so their difference would be mostly noise.
    short = [t[:_DECODE_PROMPT_CHARS] for t in texts]
    t_short, _ = timed(short, 1) if short != texts else (t_prefill, first)
    # Rows of a real step finish at different times, and the batch decodes slower as they do (measured:
    # 16 rows of 3..48 tokens decode at 126-141 tok/s where 16 rows of 24 reach 183-193); a uniform pass
    # made the estimates of answers 2x short. So the rows get 2..2x`decode_tokens` tokens, mean ≈ decode_tokens.
    t_batch, batch = timed(short, [max(2, round(2 * decode_tokens * (i + 1) / w)) for i in range(w)])
    decoded = sum(max(g.completion_tokens - 1, 0) for g in batch)
    batched = decoded / max(t_batch - t_short, 1e-3) if decoded else prefill
    t_one, one = timed(short[:1], decode_tokens)
    decoded_one = max(one[0].completion_tokens - 1, 0)
    single = decoded_one / max(t_one - t_short / w, 1e-3) if decoded_one else batched / w
    return Rates(prefill, min(single, batched), max(single, batched), w, time.perf_counter() - start)
