"""Compare two or more sets on every metric, with bootstrap confidence intervals.

Sets are seeds vs generated, round 1 vs round 5, temperature 0.7 vs 1.0, model A vs B: any frames
with a text column, or one frame split by a column (`by="round"`). The result is one long frame,
`set, metric, value, ci_low, ci_high, n_rows, sample_size`, ready for `charts.metric_comparison`.

`by` also names a sampled attribute (`by="persona"` or `by="attributes.persona"`): rows generated with
samplers record their values in a JSON `attributes` column (`workbench.generate.samplers`), and the
split reads the value from it. `compare_runs` puts a run with samplers beside one without on the same
budget, with intervals on the set-level metrics (distinct-n, compression ratio, Vendi) and on their
differences.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Mapping
from statistics import NormalDist

import numpy as np
import polars as pl

from ..engine.protocol import Backend
from ._ngrams import require_column, seeded_sample
from .embedding import embed_frame, embedding_matrix, vendi_score
from .lexical import distinct_n, nearest_rouge_l, self_bleu_scores, text_lengths

__all__ = [
    "COMPARE_SCHEMA",
    "bootstrap_mean_ci",
    "compare_runs",
    "compare_sets",
    "jackknife_se",
    "set_level_estimates",
    "split_sets",
]

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


_ATTRIBUTE = re.compile(r"^(?:attributes\.)?([A-Za-z_][A-Za-z0-9_]*)$")


def _split_column(df: pl.DataFrame, by: str) -> tuple[pl.DataFrame, str]:
    """`df` and the column to split on: `by` itself, or a sampled attribute read from `attributes`."""
    if by in df.columns:
        return df, by
    match = _ATTRIBUTE.match(by)
    if "attributes" in df.columns and match:
        name = match.group(1)
        values = pl.col("attributes").str.json_path_match(f"$.{name}")
        if df.select(values.is_not_null().any()).item():
            return df.with_columns(values.alias(f"__by_{name}")), f"__by_{name}"
        raise ValueError(f"no row records an attribute {name!r} in its 'attributes' column; {_attrs(df)}")
    require_column(df, by)  # raises, naming the columns
    raise AssertionError("unreachable")


def _attrs(df: pl.DataFrame) -> str:
    found: set[str] = set()
    for text in df["attributes"].drop_nulls().unique().head(1000).to_list():
        found |= set(pl.Series([text]).str.json_decode().struct.fields)
    return f"recorded attributes: {sorted(found) or 'none'}"


def split_sets(df: pl.DataFrame, by: str) -> dict[str, pl.DataFrame]:
    """One frame per distinct value of column `by` (named by the value as text), in sorted order.
    `by` may also name a sampled attribute recorded in the `attributes` column ("persona" or
    "attributes.persona"); rows that did not draw it form the "None" set."""
    df, col = _split_column(df, by)
    out: dict[str, pl.DataFrame] = {}
    for key in df[col].unique().sort(nulls_last=True).to_list():
        part = df.filter(pl.col(col).is_null()) if key is None else df.filter(pl.col(col) == key)
        out[str(key)] = part.drop(col) if col != by else part
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
    set_ci: bool = False,
    groups: int = 200,
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    n = df.height
    z = NormalDist().inv_cdf((1 + level) / 2)

    def boot(values: np.ndarray) -> tuple[float | None, float | None]:
        return bootstrap_mean_ci(values, n_boot=n_boot, seed=seed, level=level)

    lengths = text_lengths(df, column, backend=backend)
    words = lengths["words"].to_numpy().astype(np.float64)
    rows.append(_row(name, "mean_words", float(words.mean()) if n else None, boot(words), n, None))
    if "tokens" in lengths.columns:
        toks = lengths["tokens"].to_numpy().astype(np.float64)
        rows.append(_row(name, "mean_tokens", float(toks.mean()) if n else None, boot(toks), n, None))
    if set_ci:
        rows += _jackknife_rows(name, set_level_estimates(df, column, seed=seed, groups=groups), z, n)
    else:
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
        if set_ci:
            vendi = {"vendi": jackknife_se(emb, _vendi, groups=groups, seed=seed)}
            rows += _jackknife_rows(name, vendi, z, n, sample_size=m)
        else:
            rows.append(_row(name, "vendi", _vendi(emb), (None, None), n, m))
    return rows


def _vendi(emb: pl.DataFrame) -> float:
    return float(vendi_score(emb)["vendi"][0])


def _normal_ci(value: float, se: float, z: float) -> tuple[float | None, float | None]:
    """value +/- z * se, or no interval when the standard error is undefined (one row or group)."""
    if not (np.isfinite(value) and np.isfinite(se)):
        return None, None
    return value - z * se, value + z * se


def _jackknife_rows(
    name: str, est: Mapping[str, tuple[float, float]], z: float, n: int, sample_size: int | None = None
) -> list[dict[str, object]]:
    return [
        _row(name, metric, value if np.isfinite(value) else None, _normal_ci(value, se, z), n, sample_size)
        for metric, (value, se) in est.items()
    ]


def set_level_estimates(
    df: pl.DataFrame, column: str = "text", *, embeddings: bool = False, seed: int = 0, groups: int = 200
) -> dict[str, tuple[float, float]]:
    """(value, jackknife standard error) of each set-level metric of one set: distinct_1..3,
    compression_ratio (raw / gzip bytes of the texts joined by newlines; higher: more repetitive) and,
    with `embeddings=True` (needs an `embedding` column), vendi. See `jackknife_se` for why not the bootstrap."""
    stats: dict[str, Callable[[pl.DataFrame], float]] = {
        f"distinct_{k}": _distinct(column, k) for k in (1, 2, 3)
    }
    stats["compression_ratio"] = lambda d: _compression_ratio(d[column].fill_null("").cast(pl.Utf8).to_list())
    if embeddings:
        stats["vendi"] = _vendi
    return {metric: jackknife_se(df, stat, groups=groups, seed=seed) for metric, stat in stats.items()}


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
    set_ci: bool = False,
    jackknife_groups: int = 200,
) -> pl.DataFrame:
    """Every metric of every set, side by side.

    Metrics: mean_words and (with a backend) mean_tokens; distinct_1..3 (exact, no interval);
    self_bleu and nn_rouge_l (means over a seeded sample of `sample` rows); with `embeddings=True`,
    mean_cosine_distance and vendi on a seeded sample of `embed_sample` rows.
    Intervals: percentile bootstrap of the mean of the per-row values (`bootstrap_mean_ci`), at
    `level`; they capture which rows were drawn, not the choice of sample for the references.
    Vendi has no per-row decomposition and, by default, no interval; nor has distinct-n. With
    `set_ci=True` they get a normal interval from their delete-a-group jackknife standard error
    (`set_level_estimates`, `jackknife_groups` groups), and compression_ratio is added (slower: the
    statistic is recomputed once per group). `equal_size=True` first subsamples every
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
            set_ci=set_ci,
            groups=jackknife_groups,
        )
    return pl.DataFrame(rows, schema=COMPARE_SCHEMA)


def jackknife_se(
    rows: pl.DataFrame,
    statistic: Callable[[pl.DataFrame], float],
    *,
    groups: int = 200,
    seed: int = 0,
) -> tuple[float, float]:
    """(value, standard error) of a set-level statistic by the delete-a-group jackknife.

    Rows are dealt (seeded) into g = min(n, `groups`) groups; theta_j is the statistic without group j,
    se^2 = (g - 1) / g * sum_j (theta_j - mean theta)^2 (delete-one when g = n). Used instead of the
    bootstrap for distinct-n, compression ratio and Vendi: a resample with replacement repeats rows,
    which by itself lowers distinct-n and raises compression, so its intervals would miss the value.
    """
    n = rows.height
    value = float(statistic(rows))
    g = min(n, groups)
    if g < 2:
        return value, float("nan")
    group = np.random.default_rng(seed).permutation(n) % g
    thetas = np.array([statistic(rows.filter(pl.Series(group != j))) for j in range(g)], dtype=np.float64)
    se = float(np.sqrt((g - 1) / g * np.sum((thetas - thetas.mean()) ** 2)))
    return value, se


def _distinct(column: str, order: int) -> Callable[[pl.DataFrame], float]:
    return lambda d: float(distinct_n(d, column, orders=(order,))["distinct"][0] or 0.0)


def _compression_ratio(texts: list[str]) -> float:
    raw = "\n".join(texts).encode()
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0)) if raw else float("nan")


def compare_runs(
    with_samplers: pl.DataFrame,
    without: pl.DataFrame,
    column: str = "text",
    *,
    budget: int | None = None,
    names: tuple[str, str] = ("samplers", "no samplers"),
    backend: Backend | None = None,
    embeddings: bool = False,
    seed: int = 0,
    level: float = 0.95,
    n_boot: int = 1000,
    rouge: bool = True,
) -> pl.DataFrame:
    """A run with samplers beside one without, on the same budget, with intervals (`COMPARE_SCHEMA`).

    Both sets are cut (seeded) to `budget` rows (default: the smaller set), since distinct-n and Vendi
    depend on set size. Rows: every `compare_sets` metric of both sets (per-row metrics keep their
    bootstrap intervals); distinct_1..3, compression_ratio (raw / gzip bytes of the texts joined by
    newlines; higher: more repetitive) and, with `embeddings=True`, vendi, each with a normal interval
    from its `jackknife_se` standard error; and for those set-level metrics a third set
    "<a> - <b>" holding the difference with interval value +/- z * sqrt(se_a^2 + se_b^2) (the runs
    are independent). Intervals reflect which rows were generated, not seed-to-seed variation of a run.
    """
    for name, df in zip(names, (with_samplers, without), strict=True):
        require_column(df, column)
        if df.height < 2:
            raise ValueError(f"set {name!r} has {df.height} rows; compare_runs needs at least 2 per set")
    size = budget if budget is not None else min(with_samplers.height, without.height)
    short = [n for n, df in zip(names, (with_samplers, without), strict=True) if df.height < size]
    if size < 2 or short:
        raise ValueError(f"budget {size} must be >= 2 and at most every set's size (too small: {short})")
    sets = {
        name: seeded_sample(df, size, seed) for name, df in zip(names, (with_samplers, without), strict=True)
    }
    if embeddings:
        if backend is None and not all("embedding" in df.columns for df in sets.values()):
            raise ValueError("embeddings=True needs backend= (or an 'embedding' column in both sets)")
        for key, part in sets.items():
            if "embedding" not in part.columns:
                assert backend is not None
                sets[key] = embed_frame(part, backend, column)
    base = compare_sets(
        sets, column, backend=backend, embeddings=embeddings, sample=None, embed_sample=None,
        n_boot=n_boot, seed=seed, level=level, rouge=rouge,
    )  # fmt: skip
    base = base.filter(~pl.col("metric").str.starts_with("distinct_") & (pl.col("metric") != "vendi"))
    z = NormalDist().inv_cdf((1 + level) / 2)
    est = {
        name: set_level_estimates(df, column, embeddings=embeddings, seed=seed) for name, df in sets.items()
    }
    rows: list[dict[str, object]] = []
    for name in names:
        rows += _jackknife_rows(name, est[name], z, size, sample_size=size)
    for metric in est[names[0]]:
        (va, sa), (vb, sb) = est[names[0]][metric], est[names[1]][metric]
        diff, se = va - vb, float(np.hypot(sa, sb))
        rows.append(_row(f"{names[0]} - {names[1]}", metric, diff, _normal_ci(diff, se, z), size, size))
    return pl.concat([base, pl.DataFrame(rows, schema=COMPARE_SCHEMA)])
