"""What a backend returns: one Generation per request, progress reports, token scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

FinishReason = Literal["stop", "length", "error", "cancelled"]


@dataclass
class TokenLogprob:
    """The chosen token, its log-probability, and the top alternatives at that position."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Generation:
    """The result of one request. Errors are rows too: `finish_reason == 'error'` with `error` set."""

    key: str | None
    text: str
    finish_reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None
    logprobs: list[TokenLogprob] | None = None
    prompt_text: str | None = None

    @property
    def ok(self) -> bool:
        return self.finish_reason in ("stop", "length")

    def as_record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": self.seconds,
            "error": self.error,
        }


def generations_frame(gens: list[Generation]) -> pl.DataFrame:
    """Generations as a polars frame (one row each, in request order)."""
    schema = {
        "key": pl.Utf8,
        "text": pl.Utf8,
        "finish_reason": pl.Utf8,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
        "seconds": pl.Float64,
        "error": pl.Utf8,
    }
    return pl.DataFrame([g.as_record() for g in gens], schema=schema)


@dataclass
class Progress:
    """A progress report: sent through the `on_progress` callback during a run."""

    rows_done: int
    rows_total: int
    tokens_generated: int
    elapsed_s: float
    errors: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_generated / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.rows_done == 0 or self.elapsed_s <= 0:
            return None
        return self.elapsed_s / self.rows_done * (self.rows_total - self.rows_done)

    def describe(self) -> str:
        eta = self.eta_s
        eta_txt = "?" if eta is None else f"{eta:.0f}s"
        return (
            f"{self.rows_done}/{self.rows_total} rows · {self.tokens_per_s:.0f} tok/s · ETA {eta_txt}"
            + (f" · {self.errors} errors" if self.errors else "")
        )


@dataclass
class TokenScores:
    """Log-probabilities of each token of a given continuation after a prompt (for perplexity)."""

    tokens: list[str]
    logprobs: list[float]

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else 0.0

    @property
    def perplexity(self) -> float:
        import math

        return math.exp(-self.mean_logprob) if self.logprobs else float("nan")
