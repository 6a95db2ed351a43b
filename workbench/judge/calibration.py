"""Calibration: how well a judge agrees with a human on a labelled set, with bootstrap intervals.

Human labels live in the run (`store.set_label(row_id, "human_score", 4)` on the judged row for
absolute grading, `store.set_label(pair_id, "human_pref", "A"|"B"|"tie")` for pairwise), so the
agreement can always be recomputed from the run directory. Metrics:

- Cohen's kappa, quadratic-weighted for ordinal scores (a 4 vs 5 disagreement costs less than 1 vs 5),
  unweighted for pairwise preferences;
- Spearman's rank correlation (ordinal scores only);
- accuracy (exact agreement), and within-one accuracy for scores.

Each comes with a percentile bootstrap 95% interval over the labelled rows (resampled with
replacement; resamples where a metric is undefined, e.g. constant ratings, are skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from ..runs import RunStore
from .pairwise import pair_outcomes
from .runner import with_judgment_schema

Metric = Callable[[np.ndarray, np.ndarray], float]
AGREEMENT_SCHEMA = {
    "rubric": pl.Utf8,
    "rubric_version": pl.Utf8,
    "metric": pl.Utf8,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n": pl.Int64,
}


def cohens_kappa(
    a: Sequence[Any] | np.ndarray,
    b: Sequence[Any] | np.ndarray,
    *,
    weights: Literal["none", "linear", "quadratic"] = "none",
    categories: Sequence[Any] | None = None,
) -> float:
    """Cohen's kappa between two raters. Weighted kappas need ordered (numeric) categories.
    Returns nan when chance agreement is total (both raters constant on the same value)."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"raters have different numbers of ratings ({len(a)} vs {len(b)})")
    if not a:
        return float("nan")
    cats = list(categories) if categories is not None else sorted(set(a) | set(b), key=_sort_key)
    index = {c: i for i, c in enumerate(cats)}
    missing = {x for x in a + b if x not in index}
    if missing:
        raise ValueError(f"ratings {sorted(missing, key=_sort_key)} are not among the categories {cats}")
    k = len(cats)
    observed = np.zeros((k, k))
    np.add.at(observed, ([index[x] for x in a], [index[x] for x in b]), 1.0)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    i, j = np.indices((k, k))
    if weights == "none":
        w = (i != j).astype(float)
    else:
        dist = np.abs(i - j) / max(k - 1, 1)
        w = dist if weights == "linear" else dist**2
    denom = float((w * expected).sum())
    if denom == 0:
        return float("nan")
    return 1.0 - float((w * observed).sum()) / denom


def _sort_key(x: Any) -> tuple[int, Any]:
    return (0, x) if isinstance(x, int | float) else (1, str(x))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        mask = x == v
        if mask.sum() > 1:
            ranks[mask] = ranks[mask].mean()
    return ranks


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho (Pearson correlation of average ranks); nan if either side is constant."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"different lengths ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def pearson(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def accuracy(a: Sequence[Any] | np.ndarray, b: Sequence[Any] | np.ndarray) -> float:
    x, y = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return float(np.mean(x == y)) if len(x) else float("nan")


def within_one(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.mean(np.abs(x - y) <= 1)) if len(x) else float("nan")


@dataclass(frozen=True)
class Estimate:
    """A statistic with its percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap(
    metric: Metric,
    a: Sequence[Any],
    b: Sequence[Any],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """`metric(a, b)` and its percentile bootstrap CI over paired resamples of the rows."""
    x, y = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    n = len(x)
    value = metric(x, y) if n else float("nan")
    if n < 2:
        return Estimate(value, float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    stats = np.array([metric(x[idx], y[idx]) for idx in rng.integers(0, n, size=(n_boot, n))], dtype=float)
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return Estimate(value, float("nan"), float("nan"), n)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return Estimate(value, float(lo), float(hi), n)


def _labels(labels: RunStore | Mapping[str, Any], kind: str) -> dict[str, Any]:
    return labels.label_values(kind) if isinstance(labels, RunStore) else dict(labels)


def score_agreement(
    judgments: pl.DataFrame,
    labels: RunStore | Mapping[str, Any],
    *,
    kind: str = "human_score",
    scale: Sequence[int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pl.DataFrame:
    """Agreement of absolute judgments (parsed rows) with human scores keyed by judged row id:
    one row per (rubric version, metric) with value, 95% CI and n."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    human = _labels(labels, kind)
    absolute = judgments.filter((pl.col("judge_kind") == "absolute") & pl.col("parse_ok"))
    records: list[dict[str, Any]] = []
    for (name, version), grp in absolute.group_by(["rubric", "rubric_version"], maintain_order=True):
        pairs = [
            (int(s), int(human[p])) for p, s in zip(grp["parent_id"], grp["score"], strict=True) if p in human
        ]
        judge = [p[0] for p in pairs]
        person = [p[1] for p in pairs]
        cats = list(scale) if scale is not None else sorted(set(judge) | set(person))

        def kappa_q(x: np.ndarray, y: np.ndarray, cats: list[int] = cats) -> float:
            return cohens_kappa(list(x), list(y), weights="quadratic", categories=cats)

        metrics: dict[str, Metric] = {
            "kappa_quadratic": kappa_q,
            "spearman": spearman,
            "accuracy": accuracy,
            "within_one": within_one,
        }
        for metric, fn in metrics.items():
            est = bootstrap(fn, judge, person, n_boot=n_boot, seed=seed)
            records.append({"rubric": name, "rubric_version": version, "metric": metric, **est.__dict__})
    return pl.DataFrame(records, schema=AGREEMENT_SCHEMA)


def preference_agreement(
    judgments: pl.DataFrame,
    labels: RunStore | Mapping[str, Any],
    *,
    kind: str = "human_pref",
    n_boot: int = 1000,
    seed: int = 0,
) -> pl.DataFrame:
    """Agreement of pairwise judgments with human preferences ('A' = the pair's a, 'B', 'tie') keyed
    by pair_id. A pair whose two orders disagree (a position flip) counts as the judge saying 'tie';
    pairs with an unparsed verdict are left out (see `parse_counts`)."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    human = _labels(labels, kind)
    outcomes = pair_outcomes(judgments)
    records: list[dict[str, Any]] = []
    for (name, version), grp in outcomes.group_by(["rubric", "rubric_version"], maintain_order=True):
        judge, person = [], []
        for rec in grp.iter_rows(named=True):
            if rec["pair_id"] not in human or (rec["winner"] is None and not rec["both_parsed"]):
                continue
            w = rec["winner"]
            judge.append("A" if w == rec["a_id"] else "B" if w == rec["b_id"] else "tie")
            person.append(str(human[rec["pair_id"]]))
        kappa: Metric = lambda x, y: cohens_kappa(list(x), list(y), categories=["A", "B", "tie"])  # noqa: E731
        for metric, fn in (("kappa", kappa), ("accuracy", accuracy)):
            est = bootstrap(fn, judge, person, n_boot=n_boot, seed=seed)
            records.append({"rubric": name, "rubric_version": version, "metric": metric, **est.__dict__})
    return pl.DataFrame(records, schema=AGREEMENT_SCHEMA)


@dataclass
class VersionComparison:
    """Two rubric versions judged on the same rows."""

    rows: pl.DataFrame
    """parent_id, score_old, score_new, delta, expected_old, expected_new, human, changed."""
    agreement: pl.DataFrame
    """metric, old, new, change (new - old), with each side's CI."""
    changed: int
    n: int


def compare_versions(
    judgments: pl.DataFrame,
    old_version: str,
    new_version: str,
    labels: RunStore | Mapping[str, Any] | None = None,
    *,
    kind: str = "human_score",
    scale: Sequence[int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> VersionComparison:
    """Which rows changed score between two absolute rubric versions, and how agreement moved."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    cols = ["parent_id", "score", "expected_score"]
    absolute = judgments.filter(pl.col("judge_kind") == "absolute")
    versions = set(absolute["rubric_version"].to_list())
    for v in (old_version, new_version):
        if v not in versions:
            raise ValueError(
                f"no absolute judgments of rubric version {v!r}; versions present: {sorted(versions)}"
            )
    old = (
        absolute.filter(pl.col("rubric_version") == old_version)
        .select(cols)
        .unique("parent_id", keep="first", maintain_order=True)
    )
    new = (
        absolute.filter(pl.col("rubric_version") == new_version)
        .select(cols)
        .unique("parent_id", keep="first")
    )
    both = old.join(new, on="parent_id", suffix="_new", maintain_order="left").rename(
        {"score": "score_old", "expected_score": "expected_old"}
    )
    both = both.rename({"expected_score_new": "expected_new"})
    human = _labels(labels, kind) if labels is not None else {}
    both = both.with_columns(
        (pl.col("score_new") - pl.col("score_old")).alias("delta"),
        pl.Series("human", [human.get(p) for p in both["parent_id"]], dtype=pl.Float64),
    ).with_columns((pl.col("delta").fill_null(1) != 0).alias("changed"))
    if human:
        sub = judgments.filter(pl.col("parent_id").is_in(both["parent_id"].to_list()))
        agr = score_agreement(sub, human, scale=scale, n_boot=n_boot, seed=seed)
        a_old = agr.filter(pl.col("rubric_version") == old_version).select(
            "metric", "value", "ci_low", "ci_high"
        )
        a_new = agr.filter(pl.col("rubric_version") == new_version).select(
            "metric", "value", "ci_low", "ci_high"
        )
        agreement = (
            a_old.rename({"value": "old", "ci_low": "old_ci_low", "ci_high": "old_ci_high"})
            .join(
                a_new.rename({"value": "new", "ci_low": "new_ci_low", "ci_high": "new_ci_high"}), on="metric"
            )
            .with_columns((pl.col("new") - pl.col("old")).alias("change"))
        )
    else:
        agreement = pl.DataFrame(
            schema={"metric": pl.Utf8, "old": pl.Float64, "new": pl.Float64, "change": pl.Float64}
        )
    return VersionComparison(both, agreement, int(both["changed"].sum()), both.height)
