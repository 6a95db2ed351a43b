"""Reading a verdict out of a judge's raw text, for constrained and unconstrained judges alike.

A grammar-constrained judge always yields `...\\nScore: n`. An HTTP backend may ignore grammars and a
user may turn them off; then the text is searched for a score line. Whatever happens, the caller gets a
`Parsed` with `ok=False` and a reason when nothing valid is found: the row is stored with its raw
output and counted as a failure, never given a default score and never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from .runner import with_judgment_schema

# Last match wins: a judge may quote the format ("Score: n") before giving its own.
_SCORE_PATTERNS = (
    re.compile(r"(?:score|rating)\s*[:=]\s*\**\s*(-?\d+)", re.IGNORECASE),
    re.compile(r"\[RESULT\]\s*(-?\d+)", re.IGNORECASE),
)
_VERDICT_PATTERNS = (
    re.compile(r"(?:winner|better|verdict)\s*[:=]\s*\**\s*(?:response\s+)?(A|B|tie)\b", re.IGNORECASE),
    re.compile(r"\[RESULT\]\s*(A|B|tie)\b", re.IGNORECASE),
)


@dataclass(frozen=True)
class Parsed:
    """The outcome of parsing one judge output."""

    ok: bool
    value: int | str | None
    """The score (absolute) or 'A'/'B'/'tie' (pairwise); None when `ok` is False."""
    start: int | None
    """Character offset of the value in the raw text (where its token distribution is read)."""
    reason: str | None
    """Why parsing failed (None when ok)."""


def _last_match(patterns: Sequence[re.Pattern[str]], text: str) -> re.Match[str] | None:
    best: re.Match[str] | None = None
    for pattern in patterns:
        for m in pattern.finditer(text):
            if best is None or m.start(1) > best.start(1):
                best = m
    return best


def parse_score(text: str, scale: Sequence[int], *, finish_reason: str | None = None) -> Parsed:
    """Find the judge's score in `text`; it must be one of `scale`."""
    if not text.strip():
        return Parsed(False, None, None, _why_empty(finish_reason))
    m = _last_match(_SCORE_PATTERNS, text)
    if m is None:
        reason = "no 'Score: <n>' line in the output"
        if finish_reason == "length":
            reason = "truncated: max_tokens ran out before the score (raise max_tokens or lower max_reasoning_chars)"
        return Parsed(False, None, None, reason)
    value = int(m.group(1))
    if value not in set(scale):
        return Parsed(
            False, None, m.start(1), f"score {value} is outside the scale {min(scale)}-{max(scale)}"
        )
    if finish_reason == "length" and m.end(1) == len(text.rstrip()):
        # A multi-digit score may have been cut ("1" of "10"): the value is not trustworthy.
        longer = [s for s in scale if str(s).startswith(str(value)) and s != value]
        if longer:
            return Parsed(
                False, None, m.start(1), f"truncated inside the score ({value!r} could be {longer})"
            )
    return Parsed(True, value, m.start(1), None)


def parse_verdict(text: str, allow_ties: bool, *, finish_reason: str | None = None) -> Parsed:
    """Find 'A', 'B' (or 'tie' when allowed) after 'Winner:' in `text`."""
    if not text.strip():
        return Parsed(False, None, None, _why_empty(finish_reason))
    m = _last_match(_VERDICT_PATTERNS, text)
    if m is None:
        reason = "no 'Winner: A|B' line in the output"
        if finish_reason == "length":
            reason = "truncated: max_tokens ran out before the verdict (raise max_tokens or lower max_reasoning_chars)"
        return Parsed(False, None, None, reason)
    raw = m.group(1)
    value = "tie" if raw.lower() == "tie" else raw.upper()
    if value == "tie" and not allow_ties:
        return Parsed(False, None, m.start(1), "the judge answered 'tie' but this rubric does not allow ties")
    return Parsed(True, value, m.start(1), None)


def _why_empty(finish_reason: str | None) -> str:
    if finish_reason in ("error", "cancelled"):
        return f"no output (generation {finish_reason})"
    return "empty output"


def parse_counts(judgments: pl.DataFrame) -> pl.DataFrame:
    """Parse successes and failures per rubric version: n, parsed, failed, truncated, failure_rate."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    if judgments.height == 0:
        return pl.DataFrame(
            schema={
                "rubric": pl.Utf8,
                "rubric_version": pl.Utf8,
                "judge_kind": pl.Utf8,
                "n": pl.UInt32,
                "parsed": pl.UInt32,
                "failed": pl.UInt32,
                "truncated": pl.UInt32,
                "failure_rate": pl.Float64,
            }
        )
    return (
        judgments.group_by(["rubric", "rubric_version", "judge_kind"], maintain_order=True)
        .agg(
            pl.len().alias("n"),
            pl.col("parse_ok").sum().cast(pl.UInt32).alias("parsed"),
            (~pl.col("parse_ok")).sum().cast(pl.UInt32).alias("failed"),
            pl.col("reason")
            .fill_null("")
            .str.starts_with("truncated")
            .sum()
            .cast(pl.UInt32)
            .alias("truncated"),
        )
        .with_columns((pl.col("failed") / pl.col("n")).alias("failure_rate"))
    )


def parse_failures(judgments: pl.DataFrame) -> pl.DataFrame:
    """The failed rows with their raw output and the reason, for inspection."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    cols = [
        c for c in ("id", "rubric", "rubric_version", "parent_id", "reason", "text") if c in judgments.columns
    ]
    return judgments.filter(~pl.col("parse_ok")).select(cols)
