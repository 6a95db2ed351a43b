"""Decontamination: flag rows that share a word n-gram (13 by default) with a benchmark's test items.

This is the test the GPT-3 paper and lm-evaluation-harness's decontamination use: normalise both sides
(lower-case, every run of characters that are not letters or digits becomes a word break), split into
words, and call a row contaminated when one of its n-word windows also occurs in a benchmark item. It is
done by hashing, not pairwise: every n-gram of every benchmark item is hashed once into a sorted table,
and each row's n-grams are looked up in it (numpy `searchsorted`), so 1M rows against 100k items costs
a few passes over the tokens instead of 10^11 comparisons. A 64-bit hash match is then checked on the
words themselves before a row is flagged, so a hash collision can never flag a row.

Each flagged row names the benchmark (`contamination_benchmark`), the item (`contaminated_by`, the item
sharing most n-grams with it) and the overlapping span (`contamination_span`: the longest run of
consecutive shared n-grams, as normalised words). Flagged rows keep their place with `status="dropped"`
and `reason="contamination:<benchmark>"`, like every other filter's drops.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ._mix import mix64

__all__ = ["Benchmark", "DecontamConfig", "decontaminate", "load_benchmark"]

_WORD_RE = r"[\p{L}\p{N}]+"  # letters and digits of any script; punctuation, '_' and spaces break words
_ROW_CHUNK = 200_000  # rows hashed per pass: bounds the n-gram arrays (a few hundred MB for long rows)


class DecontamConfig(BaseModel):
    """How rows are matched against benchmark items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(13, ge=1, le=64)
    """Words per n-gram. 13 is GPT-3's and lm-evaluation-harness's choice; smaller flags more."""
    short_items: Literal["skip", "whole"] = "skip"
    """Benchmark items with fewer than `n` words: 'skip' them (lm-evaluation-harness) or match the 'whole'
    item as one shorter n-gram (if it has at least `min_words` words)."""
    min_words: int = Field(8, ge=1)
    """With short_items='whole', items shorter than this are still skipped (too generic to mean a leak)."""
    text_column: str = "text"
    """Column of the rows that is checked."""


class Benchmark(BaseModel):
    """A benchmark's test items: a name (shown in reasons), item ids and their text."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    """Shown in `contamination_benchmark` and the reason, e.g. 'gsm8k-test'."""
    items: pl.DataFrame
    """Columns `id` (str) and `text` (str): one row per test item."""


def load_benchmark(
    source: pl.DataFrame | Sequence[str] | str | os.PathLike[str] | Any,
    *,
    text_column: str | Sequence[str] = "text",
    id_column: str | None = None,
    name: str | None = None,
    sep: str = "\n",
) -> Benchmark:
    """A benchmark from a polars frame, a list of texts, a file (.jsonl/.json/.parquet/.csv) or a
    `datasets.Dataset` the user loaded (no download here: `hf://` names must be loaded by the caller).

    `text_column`: the column holding an item's text, or several joined with `sep` (question + choices +
    answer). `id_column`: the column naming items (default: the item's row number as a string).
    """
    label = name
    if isinstance(source, str | os.PathLike) and not isinstance(source, pl.DataFrame):
        spec = os.fspath(source)
        if spec.startswith("hf://"):
            raise ValueError(
                f"{spec}: no network access here: load it with datasets.load_dataset(...)[split] and pass "
                "the Dataset to load_benchmark (with text_column=/id_column= naming its columns)"
            )
        frame = _read_file(Path(spec))
        label = label or Path(spec).stem
    elif isinstance(source, pl.DataFrame):
        frame = source
    elif hasattr(source, "to_polars") and hasattr(source, "column_names"):  # a datasets.Dataset
        frame = source.to_polars()
        label = label or getattr(getattr(source, "info", None), "dataset_name", None)
    elif isinstance(source, Sequence):
        texts = list(source)
        if any(not isinstance(t, str) for t in texts):
            raise ValueError("a benchmark list must hold str items; pass a frame for structured items")
        frame = pl.DataFrame({"text": texts}, schema={"text": pl.Utf8})
    else:
        raise ValueError(
            f"cannot read a benchmark from {type(source).__name__}: pass a frame, texts, file or Dataset"
        )
    cols = [text_column] if isinstance(text_column, str) else list(text_column)
    if not cols:
        raise ValueError("text_column names no column: give the column(s) holding the item text")
    missing = [c for c in [*cols, *([id_column] if id_column else [])] if c not in frame.columns]
    if missing:
        raise ValueError(
            f"benchmark {label or ''} has no column(s) {missing} (columns: {frame.columns}): set text_column=/id_column="
        )
    joined = pl.concat_str([pl.col(c).cast(pl.Utf8).fill_null("") for c in cols], separator=sep)
    ids = pl.col(id_column).cast(pl.Utf8) if id_column else pl.int_range(pl.len()).cast(pl.Utf8)
    items = frame.select(ids.alias("id"), joined.alias("text"))
    if items["id"].is_duplicated().any():
        raise ValueError(
            f"benchmark ids in column {id_column!r} repeat: a flag must name one item, pick a unique column"
        )
    return Benchmark(name=label or "benchmark", items=items)


def _read_file(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise ValueError(f"benchmark file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return pl.read_ndjson(path)
    if suffix == ".json":
        return pl.read_json(path)
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".csv":
        return pl.read_csv(path)
    raise ValueError(
        f"{path}: benchmark files must be .jsonl, .json, .parquet or .csv (got {suffix or 'none'!r})"
    )


# -- hashing ------------------------------------------------------------------------------------------
def _words(texts: pl.Series) -> pl.Series:
    return texts.fill_null("").str.to_lowercase().str.extract_all(_WORD_RE)


_COEF = np.random.default_rng(0xDEC0).integers(1, 2**63, 64, dtype=np.uint64) | np.uint64(1)


def _grams(words: pl.Series, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hash of each n-word window, its text index, its first word's position) over all texts."""
    lens = words.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = words.explode().drop_nulls()
    total = flat.len()
    if total < n:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    tok = flat.hash(seed=0x5EED).to_numpy()  # a word's hash is the same in every chunk and every call
    h = np.zeros(total - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):  # position-weighted sum over shifted slices (no gather): 'a b' and 'b a' differ
            h += tok[k : k + h.size] * _COEF[k]
    # keep the windows that start and end inside one text
    doc = np.repeat(np.arange(lens.size), lens)[: h.size]
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    pos = np.arange(h.size) - starts[doc]
    ok = pos <= lens[doc] - n
    return mix64(h[ok]), doc[ok], pos[ok]


def _gram_table(
    items: pl.DataFrame, cfg: DecontamConfig
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per n-gram length: sorted unique hashes, and for each the first item and position holding it."""
    words = _words(items["text"])
    lens = words.list.len().fill_null(0).to_numpy()
    lengths = {cfg.n: np.flatnonzero(lens >= cfg.n)}
    if cfg.short_items == "whole":
        for L in np.unique(lens[(lens < cfg.n) & (lens >= cfg.min_words)]).tolist():
            lengths[int(L)] = np.flatnonzero(lens == L)
    table = {}
    for L, which in lengths.items():
        h, doc, pos = _grams(words.gather(which), L)
        doc = which[doc]
        order = np.lexsort((pos, doc, h))  # per hash: lowest item first, then earliest position
        h, doc, pos = h[order], doc[order], pos[order]
        first = np.ones(h.size, dtype=bool)
        first[1:] = h[1:] != h[:-1]
        table[L] = (h[first], doc[first], pos[first])
    return table


# -- the API --------------------------------------------------------------------------------------------
def decontaminate(
    frame: pl.DataFrame,
    benchmarks: Benchmark | Sequence[Benchmark] | pl.DataFrame | Sequence[str],
    config: DecontamConfig | None = None,
) -> pl.DataFrame:
    """Flag rows of `frame` sharing an n-gram with a benchmark item (see the module doc for the columns).

    `benchmarks`: one or more `Benchmark`s (`load_benchmark`), or a frame (id, text) / list of texts taken
    as one benchmark named 'benchmark'. Rows already dropped by another filter are left as they are.
    """
    cfg = config or DecontamConfig()
    if cfg.text_column not in frame.columns:
        raise ValueError(
            f"frame has no {cfg.text_column!r} column (columns: {frame.columns}): set DecontamConfig(text_column=...)"
        )
    if frame[cfg.text_column].dtype not in (pl.Utf8, pl.Null):
        raise ValueError(f"column {cfg.text_column!r} must hold strings, not {frame[cfg.text_column].dtype}")
    if isinstance(benchmarks, Benchmark):
        benches = [benchmarks]
    elif isinstance(benchmarks, pl.DataFrame):
        id_col = "id" if "id" in benchmarks.columns else None
        benches = [load_benchmark(benchmarks, id_column=id_col)]
    elif benchmarks and all(isinstance(b, Benchmark) for b in benchmarks):
        benches = list(benchmarks)  # type: ignore[arg-type]
    else:
        benches = [load_benchmark(benchmarks)]
    if not benches:
        raise ValueError("no benchmark given: pass load_benchmark(...) results")
    n_rows = frame.height
    by = np.full(n_rows, None, dtype=object)  # item id, span, benchmark name of each flagged row
    span = np.full(n_rows, None, dtype=object)
    bench_name = np.full(n_rows, None, dtype=object)
    eligible = np.ones(n_rows, dtype=bool)
    if "status" in frame.columns:
        eligible = frame["status"].fill_null("kept").eq("kept").to_numpy()
    texts = frame[cfg.text_column].cast(pl.Utf8)
    done = np.zeros(n_rows, dtype=bool)
    for bench in benches:
        table = _gram_table(bench.items, cfg)
        bench_words = _words(bench.items["text"])  # turned into Python lists only for items that hit
        item_ids = bench.items["id"].to_list()
        for lo in range(0, n_rows, _ROW_CHUNK):
            # a row flagged by an earlier benchmark keeps that flag
            todo = np.flatnonzero(eligible[lo : lo + _ROW_CHUNK] & ~done[lo : lo + _ROW_CHUNK])
            if todo.size == 0:
                continue
            words = _words(texts.slice(lo, _ROW_CHUNK).gather(todo))
            row, pos, item, ipos, width = (
                np.concatenate(a) for a in zip(*(_matches(words, L, *table[L]) for L in table), strict=True)
            )
            order = np.argsort(row, kind="stable")
            row, pos, item, ipos, width = row[order], pos[order], item[order], ipos[order], width[order]
            bounds = (
                np.flatnonzero(np.r_[True, row[1:] != row[:-1], True]) if row.size else np.zeros(1, np.int64)
            )
            hit_words = words.gather(row[bounds[:-1]]).to_list() if row.size else []
            uniq = np.unique(item)
            item_words = dict(zip(uniq.tolist(), bench_words.gather(uniq).to_list(), strict=True))
            for a, b, row_words in zip(bounds[:-1].tolist(), bounds[1:].tolist(), hit_words, strict=True):
                r = int(row[a])
                flag = _describe(row_words, pos[a:b], item[a:b], ipos[a:b], width[a:b], item_words)
                if flag is not None:
                    k = lo + int(todo[r])
                    by[k], span[k], bench_name[k], done[k] = item_ids[flag[0]], flag[1], bench.name, True
    flagged = pl.Series(done)
    status = pl.col("status") if "status" in frame.columns else pl.lit("kept")
    reason = pl.col("reason") if "reason" in frame.columns else pl.lit(None, dtype=pl.Utf8)
    names = pl.Series("contamination_benchmark", bench_name.tolist(), dtype=pl.Utf8)
    return frame.with_columns(
        pl.Series("contaminated_by", by.tolist(), dtype=pl.Utf8),
        pl.Series("contamination_span", span.tolist(), dtype=pl.Utf8),
        names,
        pl.when(flagged).then(pl.lit("dropped")).otherwise(status).alias("status"),
        pl.when(flagged).then(pl.lit("contamination:") + names).otherwise(reason).alias("reason"),
    )


def _matches(
    words: pl.Series, L: int, keys: np.ndarray, item: np.ndarray, item_pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, row position, item, item position, width) of every row window whose hash is in the table."""
    h, doc, pos = _grams(words, L)
    if keys.size == 0 or h.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, empty
    # hash-set membership first (polars, parallel); the binary search runs only on the few hits
    hit = pl.Series(h).is_in(pl.Series(keys)).to_numpy()
    at = np.searchsorted(keys, h[hit])
    return doc[hit], pos[hit], item[at], item_pos[at], np.full(at.size, L, dtype=np.int64)


def _describe(
    row_words: list[str],
    pos: np.ndarray,
    item: np.ndarray,
    ipos: np.ndarray,
    width: np.ndarray,
    bench_words: dict[int, list[str]],
) -> tuple[int, str] | None:
    """For one row: (item sharing most verified n-grams, longest run of shared words), or None if every
    hash hit was a collision. Runs in Python, but only for rows that hit."""
    best: dict[int, list[tuple[int, int]]] = {}
    for p, it, q, L in zip(pos.tolist(), item.tolist(), ipos.tolist(), width.tolist(), strict=True):
        if row_words[p : p + L] == bench_words[it][q : q + L]:  # the words, not just the hash
            best.setdefault(it, []).append((p, p + L))
    if not best:
        return None
    it = min(best, key=lambda k: (-len(best[k]), k))
    spans = sorted(best[it])
    s0, e0 = spans[0]
    longest = (s0, e0)
    for s, e in spans[1:]:
        if s <= e0:  # overlapping windows: one longer shared span
            e0 = max(e0, e)
        else:
            s0, e0 = s, e
        if e0 - s0 > longest[1] - longest[0]:
            longest = (s0, e0)
    return it, " ".join(row_words[longest[0] : longest[1]])
