"""Querying runs: filter, search, sort and page rows with polars expressions, and diff two runs.

Everything here is a pure function of frames, so the inspector widget, notebooks and tests share it.
`load_predictions` turns the self-instruct paper's per-model prediction files into a run-like frame,
so four models' answers to the same 252 instructions can be paged and diffed like any run.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz

from ..filters.apply import with_filter_drops
from ..filters.ifd import with_ifd
from .ids import row_id
from .store import RunStore, normalise_rows

__all__ = [
    "CardPages",
    "RunQuery",
    "diff_models",
    "diff_runs",
    "facet_values",
    "load_predictions",
    "page",
    "page_count",
    "search",
    "sort_rows",
    "with_labels",
]

SortKey = Literal["none", "length", "round", "score", "ifd", "model", "operator", "seed", "created_at"]


def _need(frame: pl.DataFrame, column: str, why: str) -> None:
    if column not in frame.columns:
        raise ValueError(
            f"cannot {why}: this run has no {column!r} column (columns: {', '.join(frame.columns)})"
        )


def _length(column: str = "text") -> pl.Expr:
    return pl.col(column).fill_null("").str.len_chars()


class RunQuery(BaseModel):
    """A filter + search + sort over run rows. Unset fields do not filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str | None = None
    """Keep rows of this stage (seed, instruction, evolution, completion, judgment...)."""
    status: str | None = None
    """Keep rows with this status (kept, dropped, error)."""
    reason: str | None = None
    """Keep rows whose drop/error reason contains this text (case-insensitive)."""
    model: str | None = None
    """Keep rows made by this model name."""
    operator: str | None = None
    """Keep evolution rows made by this operator."""
    round: int | None = None
    """Keep rows of this round / generation."""
    min_length: int | None = Field(default=None, ge=0)
    """Keep rows whose text has at least this many characters."""
    max_length: int | None = Field(default=None, ge=0)
    """Keep rows whose text has at most this many characters."""
    min_score: float | None = None
    """Keep rows whose `score_column` is at least this (needs judged rows)."""
    max_score: float | None = None
    """Keep rows whose `score_column` is at most this."""
    score_column: str = "score"
    """Column the score bounds (and sort_by='score') use, e.g. 'score' or 'ifd'."""
    search: str = ""
    """Text to find (case-insensitive) in any of `search_columns`; empty: no search."""
    regex: bool = False
    """Treat `search` as a regular expression instead of literal text."""
    search_columns: tuple[str, ...] = ("text", "prompt", "instruction")
    """Columns searched (those absent from the run are skipped)."""
    ids: tuple[str, ...] | None = None
    """Keep only these row ids (None: all)."""
    flagged: bool | None = None
    """True: only flagged rows, False: only unflagged (needs a 'flagged' column, see `with_labels`)."""
    sort_by: SortKey = "none"
    """Sort rows by this; 'none' keeps run order."""
    descending: bool = False
    """Sort from high to low."""

    def expr(self, frame: pl.DataFrame) -> pl.Expr:
        """One boolean polars expression for every filter set (validated against `frame`'s columns)."""
        conds: list[pl.Expr] = []
        for field in ("stage", "status", "model", "operator"):
            value = getattr(self, field)
            if value is not None:
                _need(frame, field, f"filter by {field}")
                conds.append(pl.col(field) == value)
        if self.round is not None:
            _need(frame, "round", "filter by round")
            conds.append(pl.col("round") == self.round)
        if self.reason:
            _need(frame, "reason", "filter by reason")
            conds.append(pl.col("reason").fill_null("").str.contains(f"(?i){re.escape(self.reason)}"))
        if self.min_length is not None:
            conds.append(_length() >= self.min_length)
        if self.max_length is not None:
            conds.append(_length() <= self.max_length)
        if self.min_score is not None or self.max_score is not None:
            _need(frame, self.score_column, "filter by score (judge the run first)")
            if self.min_score is not None:
                conds.append(pl.col(self.score_column) >= self.min_score)
            if self.max_score is not None:
                conds.append(pl.col(self.score_column) <= self.max_score)
        if self.search:
            conds.append(search_expr(frame, self.search, regex=self.regex, columns=self.search_columns))
        if self.ids is not None:
            conds.append(pl.col("id").is_in(list(self.ids)))
        if self.flagged is not None:
            _need(frame, "flagged", "filter by flag (add labels with with_labels)")
            conds.append(pl.col("flagged").fill_null(False) == self.flagged)
        return pl.all_horizontal(conds) if conds else pl.lit(True)

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The matching rows, sorted. Rows an IFD step scored carry their `ifd` (see `with_ifd`), and rows a
        Filters Apply dropped carry that status and reason (see `with_filter_drops`)."""
        frame = with_filter_drops(with_ifd(frame))
        try:
            out = frame.filter(self.expr(frame))
        except pl.exceptions.ComputeError as exc:
            raise ValueError(f"search {self.search!r} is not a valid regular expression: {exc}") from exc
        return sort_rows(out, self.sort_by, descending=self.descending, score_column=self.score_column)


def search_expr(
    frame: pl.DataFrame, text: str, *, regex: bool = False, columns: Iterable[str] = ("text", "prompt")
) -> pl.Expr:
    """Case-insensitive literal (or regex) match in any of `columns` that `frame` has."""
    cols = [c for c in columns if c in frame.columns]
    if not cols:
        raise ValueError(f"none of the search columns {tuple(columns)} is in this run")
    if regex:
        try:
            re.compile(text)
        except re.error as exc:
            raise ValueError(f"search {text!r} is not a valid regular expression: {exc}") from exc
        pattern = f"(?i){text}"
    else:
        pattern = f"(?i){re.escape(text)}"
    return pl.any_horizontal([pl.col(c).cast(pl.Utf8).fill_null("").str.contains(pattern) for c in cols])


def search(
    frame: pl.DataFrame, text: str, *, regex: bool = False, columns: Iterable[str] = ("text", "prompt")
) -> pl.DataFrame:
    """Rows where `text` occurs (case-insensitive) in any of `columns`."""
    return frame.filter(search_expr(frame, text, regex=regex, columns=columns))


def sort_rows(
    frame: pl.DataFrame, by: str = "none", *, descending: bool = False, score_column: str = "score"
) -> pl.DataFrame:
    """Stable sort by a named key ('length' is text length, 'score' is `score_column`); nulls last."""
    if by == "none":
        return frame
    column = score_column if by == "score" else by
    if by == "length":
        key = _length()
    else:
        _need(frame, column, f"sort by {by}")
        key = pl.col(column)
    return frame.sort(key, descending=descending, nulls_last=True, maintain_order=True)


def page_count(n_rows: int, size: int) -> int:
    """Pages needed for `n_rows` (at least 1, so an empty run has one empty page)."""
    if size < 1:
        raise ValueError(f"page size must be at least 1, got {size}")
    return max(1, math.ceil(n_rows / size))


def page(frame: pl.DataFrame, page: int, size: int) -> pl.DataFrame:
    """Rows of 0-based page `page` of `size` rows (a zero-copy slice; empty past the end)."""
    if page < 0:
        raise ValueError(f"page must be >= 0, got {page}")
    page_count(frame.height, size)
    return frame.slice(page * size, size)


def facet_values(frame: pl.DataFrame, column: str) -> list[Any]:
    """Distinct non-null values of a column, sorted (for dropdowns); [] when the run lacks it."""
    if column not in frame.columns:
        return []
    return sorted(frame[column].drop_nulls().unique().to_list())


def with_labels(frame: pl.DataFrame, store: RunStore, kinds: Iterable[str] = ("flag",)) -> pl.DataFrame:
    """`frame` with one column per label kind from the run's labels ('flag' becomes bool 'flagged')."""
    out = frame
    for kind in kinds:
        values = store.label_values(kind)
        name = "flagged" if kind == "flag" else f"label_{kind}"
        if kind == "flag":
            flagged = [k for k, v in values.items() if v]
            out = out.with_columns(pl.col("id").is_in(flagged).alias(name))
        else:
            out = out.with_columns(
                pl.col("id")
                .replace_strict(
                    {k: json.dumps(v) for k, v in values.items()}, default=None, return_dtype=pl.Utf8
                )
                .alias(name)
            )
    return out


def _diff_side(frame: pl.DataFrame, on: str, text: str, suffix: str) -> pl.DataFrame:
    _need(frame, on, f"diff on {on!r}")
    _need(frame, text, f"diff the {text!r} column")
    ordered = frame.sort("sample", maintain_order=True) if "sample" in frame.columns else frame
    aggs = [
        pl.col(text).alias(f"texts{suffix}"),
        pl.col(text).first().alias(f"text{suffix}"),
        _length(text).mean().alias(f"mean_len{suffix}"),
        pl.len().cast(pl.Int64).alias(f"n{suffix}"),
    ]
    if "status" in frame.columns:
        aggs.append((pl.col("status") == "kept").sum().cast(pl.Int64).alias(f"kept{suffix}"))
    if "model" in frame.columns:
        aggs.append(pl.col("model").first().alias(f"model{suffix}"))
    return ordered.group_by(on, maintain_order=True).agg(aggs)


def diff_runs(a: pl.DataFrame, b: pl.DataFrame, on: str = "prompt", *, text: str = "text") -> pl.DataFrame:
    """What changed between two runs over the same prompts: one row per `on` value with both sides'
    texts (all samples, sample order), the first texts, their similarity (0..1, rapidfuzz ratio),
    `changed` (any text differs), mean lengths and their delta, kept counts, and `presence`
    ('both', 'only_a', 'only_b'). Most-changed prompts come first."""
    left, right = _diff_side(a, on, text, "_a"), _diff_side(b, on, text, "_b")
    joined = left.join(right, on=on, how="full", coalesce=True, maintain_order="left_right")
    first_a, first_b = joined["text_a"].to_list(), joined["text_b"].to_list()
    sims = [
        None if x is None or y is None else fuzz.ratio(x, y) / 100.0
        for x, y in zip(first_a, first_b, strict=True)
    ]
    texts_a, texts_b = joined["texts_a"].to_list(), joined["texts_b"].to_list()
    changed = [x != y for x, y in zip(texts_a, texts_b, strict=True)]
    presence = (
        pl.when(pl.col("n_a").is_not_null() & pl.col("n_b").is_not_null())
        .then(pl.lit("both"))
        .when(pl.col("n_a").is_not_null())
        .then(pl.lit("only_a"))
        .otherwise(pl.lit("only_b"))
    )
    return joined.with_columns(
        pl.Series("similarity", sims, dtype=pl.Float64),
        pl.Series("changed", changed, dtype=pl.Boolean),
        (pl.col("mean_len_b") - pl.col("mean_len_a")).alias("len_delta"),
        presence.alias("presence"),
    ).sort("similarity", nulls_last=True, maintain_order=True)


def diff_models(frame: pl.DataFrame, model_a: str, model_b: str, on: str = "prompt") -> pl.DataFrame:
    """`diff_runs` of two models' rows inside one run (e.g. the predictions run)."""
    _need(frame, "model", "diff models")
    known = facet_values(frame, "model")
    for m in (model_a, model_b):
        if m not in known:
            raise ValueError(f"no rows from model {m!r}; models in this run: {known}")
    return diff_runs(
        frame.filter(pl.col("model") == model_a), frame.filter(pl.col("model") == model_b), on=on
    )


def _prediction_files(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += sorted(p.glob("predictions_*.jsonl"))
        elif any(ch in str(item) for ch in "*?["):
            files += [Path(f) for f in sorted(glob.glob(str(item)))]
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"predictions file {p} does not exist")
    if not files:
        raise FileNotFoundError(f"no predictions_*.jsonl files found in {paths}")
    return files


def load_predictions(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, store: RunStore | None = None
) -> pl.DataFrame:
    """Self-instruct prediction files (one JSON object per line: prompt, instruction, input, response,
    target) as one run-like frame of completion rows, one model per file (named from
    `predictions_<model>.jsonl`). Rows of the same prompt share a `parent_id`, so they form one card.
    With `store`, rows the run lacks are appended (ids are stable, so loading twice adds nothing)."""
    frames = []
    for path in _prediction_files(paths):
        model = path.stem.removeprefix("predictions_")
        raw = pl.read_ndjson(path, infer_schema_length=None)
        missing = {"prompt", "instruction", "response"} - set(raw.columns)
        if missing:
            raise ValueError(
                f"{path}: missing fields {sorted(missing)} (expected prompt, instruction, response)"
            )
        recs = []
        for r in raw.iter_rows(named=True):
            parent = row_id("instruction", None, r["prompt"])
            text = (r.get("response") or "").strip()
            recs.append(
                {
                    "id": row_id("completion", parent, r["prompt"], {"model": model}, None),
                    "stage": "completion",
                    "parent_id": parent,
                    "round": 0,
                    "text": text,
                    "prompt": r["prompt"],
                    "model": model,
                    "sample": 0,
                    "status": "kept" if text else "dropped",
                    "reason": None if text else "empty completion",
                    "instruction": (r.get("instruction") or "").strip(),
                    "input": r.get("input") or "",
                    "target": r.get("target"),
                    "source_file": path.name,
                }
            )
        frames.append(normalise_rows(recs))
    out = pl.concat(frames, how="diagonal_relaxed")
    if store is not None:
        have = store.ids()
        new = out.filter(~pl.col("id").is_in(list(have)))
        if new.height:
            store.append(new)
    return out


class CardPages:
    """Rows grouped into cards (one prompt with its completions; any other row is its own card),
    ordered once and cut into pages by slicing, so a page costs the same on 1k or 100k rows.

    Cards follow `sort_by` on their rows' mean value (length: mean text length; a text key such as
    model or operator: its first value in order) or, with 'none',
    the run order of their first row. Rows inside a card follow `sample`, then run order."""

    def __init__(
        self,
        frame: pl.DataFrame,
        *,
        size: int = 10,
        sort_by: str = "none",
        descending: bool = False,
        score_column: str = "score",
    ) -> None:
        page_count(0, size)
        frame = with_filter_drops(with_ifd(frame))  # IFD and filter rows annotate the rows they scored/dropped
        self.size = size
        is_child = (pl.col("stage") == "completion") & pl.col("parent_id").is_not_null()
        card = (
            pl.when(is_child).then(pl.col("parent_id")).otherwise(pl.col("id"))
            if "stage" in frame.columns
            else pl.col("id")
        )
        rows = frame.with_columns(card.alias("_card")).with_row_index("_pos")
        if sort_by == "none":
            order = rows.group_by("_card", maintain_order=True).agg(pl.len().alias("_n"))
        else:
            column = score_column if sort_by == "score" else sort_by
            if sort_by != "length":
                _need(frame, column, f"sort by {sort_by}")
            key = _length() if sort_by == "length" else pl.col(column)
            numeric = sort_by == "length" or frame.schema[column].is_numeric()
            # numbers: a card sorts by its rows' mean; text (model, operator, time): by its first value
            agg = key.mean() if numeric else key.cast(pl.Utf8).min()
            order = (
                rows.group_by("_card")
                .agg(agg.alias("_key"), pl.col("_pos").min(), pl.len().alias("_n"))
                .sort(["_key", "_pos"], descending=[descending, False], nulls_last=True)
            )
        order = order.with_row_index("_card_no")
        # the card's own prompt row first, then its completions by sample, then run order
        within = (
            ["_card_no", "_child", "sample", "_pos"]
            if "sample" in frame.columns
            else ["_card_no", "_child", "_pos"]
        )
        self.rows = (
            rows.join(order.select("_card", "_card_no"), on="_card")
            .with_columns((pl.col("id") != pl.col("_card")).alias("_child"))
            .sort(within, nulls_last=True)
        )
        self.keys: list[str] = order["_card"].to_list()
        self._offsets = np.concatenate([[0], np.cumsum(order["_n"].to_numpy())]).astype(np.int64)
        self._card_of_row: dict[str, int] | None = None

    @property
    def n_cards(self) -> int:
        return len(self.keys)

    @property
    def n_pages(self) -> int:
        return page_count(self.n_cards, self.size)

    def cards(self, first: int, count: int) -> list[tuple[str, pl.DataFrame]]:
        """Cards `first`..`first+count-1` as (card key, its rows), by slicing the pre-sorted rows."""
        first = max(0, min(first, self.n_cards))
        last = min(first + count, self.n_cards)
        chunk = self.rows.slice(int(self._offsets[first]), int(self._offsets[last] - self._offsets[first]))
        return [
            (
                self.keys[first + i],
                chunk.slice(
                    int(self._offsets[first + i] - self._offsets[first]),
                    int(self._offsets[first + i + 1] - self._offsets[first + i]),
                ),
            )
            for i in range(last - first)
        ]

    def page(self, number: int) -> list[tuple[str, pl.DataFrame]]:
        """The cards of 0-based page `number` (empty past the end)."""
        if number < 0:
            raise ValueError(f"page must be >= 0, got {number}")
        return self.cards(number * self.size, self.size)

    def card_number(self, row_id: str) -> int | None:
        """0-based index of the card holding `row_id` (or whose key it is), None if absent."""
        if self._card_of_row is None:
            ids, nos = self.rows["id"].to_list(), self.rows["_card_no"].to_list()
            self._card_of_row = {k: i for i, k in enumerate(self.keys)}
            self._card_of_row.update(zip(ids, nos, strict=True))
        return self._card_of_row.get(row_id)
