"""The difference between two rubric versions with a paired bootstrap CI (beside `compare_versions`).

`compare_versions` says which rows changed score and each version's agreement with its own CI; two
overlapping CIs do not say whether the change is real. Here every metric is recomputed on the same
resampled rows for both versions, so the CI is that of the difference itself:

- `mean score`: new minus old score on every row both versions scored (no labels needed);
- with human scores: `accuracy` (exact), `within_one` and `mean_abs_error` of each version, on the
  rows both scored and a person labelled. For the error, a negative difference is an improvement.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from .calibration import VersionComparison

__all__ = ["DIFFERENCE_SCHEMA", "version_difference"]

DIFFERENCE_SCHEMA = {
    "metric": pl.Utf8,
    "old": pl.Float64,
    "new": pl.Float64,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n": pl.Int64,
}
_Stat = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (scores [boot, n], human [boot, n]) -> [boot]


def _paired(old: np.ndarray, new: np.ndarray, human: np.ndarray, stat: _Stat, n_boot: int,
            rng: np.random.Generator) -> tuple[float, float, float, float, float]:  # fmt: skip
    n = len(old)
    o, w = float(stat(old[None], human[None])[0]), float(stat(new[None], human[None])[0])
    if n < 2:
        return o, w, w - o, float("nan"), float("nan")
    idx = rng.integers(0, n, size=(n_boot, n))
    diffs = stat(new[idx], human[idx]) - stat(old[idx], human[idx])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return o, w, w - o, float(lo), float(hi)


def version_difference(comparison: VersionComparison, *, n_boot: int = 1000, seed: int = 0) -> pl.DataFrame:
    """One row per metric: old, new, difference (new - old) and its paired bootstrap 95% CI, n rows."""
    rows = comparison.rows.filter(pl.col("score_old").is_not_null() & pl.col("score_new").is_not_null())
    rng = np.random.default_rng(seed)
    old = rows["score_old"].cast(pl.Float64).to_numpy()
    new = rows["score_new"].cast(pl.Float64).to_numpy()
    records = []
    if len(old):
        est = _paired(old, new, np.zeros_like(old), lambda s, _h: s.mean(axis=1), n_boot, rng)
        records.append(("mean score", *est, len(old)))
    lab = rows.filter(pl.col("human").is_not_null())
    if lab.height:
        lo, ln = lab["score_old"].cast(pl.Float64).to_numpy(), lab["score_new"].cast(pl.Float64).to_numpy()
        hu = lab["human"].to_numpy()
        stats: dict[str, _Stat] = {
            "accuracy": lambda s, h: (s == h).mean(axis=1),
            "within_one": lambda s, h: (np.abs(s - h) <= 1).mean(axis=1),
            "mean_abs_error": lambda s, h: np.abs(s - h).mean(axis=1),
        }
        for name, fn in stats.items():
            records.append((name, *_paired(lo, ln, hu, fn, n_boot, rng), lab.height))
    return pl.DataFrame(records, schema=DIFFERENCE_SCHEMA, orient="row")
