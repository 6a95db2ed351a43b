"""Compare two or more sets on every metric, with bootstrap confidence intervals.

Sets are seeds vs generated, round 1 vs round 5, temperature 0.7 vs 1.0, model A vs B: any frames
with a text column, or one frame split by a column (`by="round"`). The result is one long frame,
`set, metric, value, ci_low, ci_high, n_rows, sample_size`, ready for `charts.metric_comparison`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from ..engine.protocol import Backend
from ._ngrams import require_column, seeded_sample
from .embedding import embed_frame, embedding_matrix, vendi_score
from .lexical import distinct_n, nearest_rouge_l, self_bleu_scores, text_lengths

__all__ = ["COMPARE_SCHEMA", "bootstrap_mean_ci", "compare_sets", "split_sets"]

COMPARE_SCHEMA = {
    "set": pl.Utf8,
    "metric": pl.Utf8,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n_rows": pl.Int64,
    "sample_size": pl.Int64,
}


def bootstrap_mean_ci(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of a mean.

    Draw B resamples of the n values with replacement, m_b = mean of resample b; the interval is the
    ((1 - level) / 2, (1 + level) / 2) quantiles of {m_b}. (None, None) with fewer than 2 values.
    """
    vals = np.asarray(values, dtype=np.float64)
    vals = vals[~np.isnan(vals)]
    n = vals.shape[0]
    if n < 2 or n_boot < 1:
        return None, None
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)  # bound memory: chunk * n indices at a time
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = vals[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def split_sets(df: pl.DataFrame, by: str) -> dict[str, pl.DataFrame]:
    """One frame per distinct value of column `by` (named by the value as text), in sorted order."""
    require_column(df, by)
    out: dict[str, pl.DataFrame] = {}
    for key in df[by].unique().sort(nulls_last=True).to_list():
        part = df.filter(pl.col(by).is_null()) if key is None else df.filter(pl.col(by) == key)
        out[str(key)] = part
    return out


def _row(
    name: str,
    metric: str,
    value: float | None,
    ci: tuple[float | None, float | None],
    n_rows: int,
    sample_size: int | None,
) -> dict[str, object]:
    return {
        "set": name,
        "metric": metric,
        "value": value,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "n_rows": n_rows,
        "sample_size": sample_size,
    }


def _set_metrics(
    name: str,
    df: pl.DataFrame,
    column: str,
    *,
    backend: Backend | None,
    embeddings: bool,
    sample: int | None,
    embed_sample: int | None,
    n_boot: int,
    seed: int,
    level: float,
    rouge: bool,
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    n = df.height

    def boot(values: np.ndarray) -> tuple[float | None, float | None]:
        return bootstrap_mean_ci(values, n_boot=n_boot, seed=seed, level=level)

    lengths = text_lengths(df, column, backend=backend)
    words = lengths["words"].to_numpy().astype(np.float64)
    rows.append(_row(name, "mean_words", float(words.mean()) if n else None, boot(words), n, None))
    if "tokens" in lengths.columns:
        toks = lengths["tokens"].to_numpy().astype(np.float64)
        rows.append(_row(name, "mean_tokens", float(toks.mean()) if n else None, boot(toks), n, None))
    for r in distinct_n(df, column).iter_rows(named=True):
        rows.append(_row(name, f"distinct_{r['n']}", r["distinct"], (None, None), n, None))
    if n >= 2:
        sb = self_bleu_scores(df, column, sample=sample, seed=seed)["self_bleu"].to_numpy()
        rows.append(_row(name, "self_bleu", float(sb.mean()), boot(sb), n, sb.shape[0]))
        if rouge:
            nn = nearest_rouge_l(df, column, sample=sample, seed=seed)["nn_rouge_l"].to_numpy()
            rows.append(_row(name, "nn_rouge_l", float(nn.mean()), boot(nn), n, nn.shape[0]))
    if embeddings and n >= 2:
        if "embedding" in df.columns:
            emb = seeded_sample(df, embed_sample, seed)
        elif backend is None:
            raise ValueError("embeddings=True needs backend= (or an 'embedding' column in every set)")
        else:
            emb = embed_frame(df, backend, column, sample=embed_sample, seed=seed)
        x = embedding_matrix(emb)
        m = x.shape[0]
        # per-row mean distance to the others; their mean is exactly the mean pairwise distance
        per_row = 1.0 - (x @ x.sum(axis=0) - 1.0) / (m - 1)
        rows.append(_row(name, "mean_cosine_distance", float(per_row.mean()), boot(per_row), n, m))
        rows.append(_row(name, "vendi", float(vendi_score(emb)["vendi"][0]), (None, None), n, m))
    return rows


def compare_sets(
    sets: Mapping[str, pl.DataFrame] | pl.DataFrame,
    column: str = "text",
    *,
    by: str | None = None,
    backend: Backend | None = None,
    embeddings: bool = False,
    sample: int | None = 1000,
    embed_sample: int | None = 300,
    equal_size: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    rouge: bool = True,
) -> pl.DataFrame:
    """Every metric of every set, side by side.

    Metrics: mean_words and (with a backend) mean_tokens; distinct_1..3 (exact, no interval);
    self_bleu and nn_rouge_l (means over a seeded sample of `sample` rows); with `embeddings=True`,
    mean_cosine_distance and vendi on a seeded sample of `embed_sample` rows.
    Intervals: percentile bootstrap of the mean of the per-row values (`bootstrap_mean_ci`), at
    `level`; they capture which rows were drawn, not the choice of sample for the references.
    Vendi has no per-row decomposition and no interval. `equal_size=True` first subsamples every
    set (seeded) to the smallest set's size, because distinct-n and Vendi depend on set size.
    """
    named = split_sets(sets, by) if isinstance(sets, pl.DataFrame) and by is not None else sets
    if isinstance(named, pl.DataFrame):
        raise ValueError("pass a mapping {name: frame}, or one frame with by=<column to split on>")
    if len(named) < 1:
        raise ValueError("compare_sets needs at least one set")
    for name, df in named.items():
        require_column(df, column)
        if df.height == 0:
            raise ValueError(f"set {name!r} is empty; drop it or choose another split")
    smallest = min(df.height for df in named.values())
    rows: list[dict[str, object]] = []
    for name, df in named.items():
        part = seeded_sample(df, smallest, seed) if equal_size else df
        rows += _set_metrics(
            str(name),
            part,
            column,
            backend=backend,
            embeddings=embeddings,
            sample=sample,
            embed_sample=embed_sample,
            n_boot=n_boot,
            seed=seed,
            level=level,
            rouge=rouge,
        )
    return pl.DataFrame(rows, schema=COMPARE_SCHEMA)
