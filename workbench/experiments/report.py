"""Seeds → confidence intervals, paired contrasts between arms, and the chart of a collapse run.

Everything aggregates in polars first; the chart gets one row per (arm, generation, metric).
Intervals are Student-t 95% intervals of a mean over seeds:

    mean ± t(0.975, n - 1) * sd / sqrt(n)          (sd with n - 1; no interval with one seed)

A contrast pairs two arms seed by seed (the same seed gives both arms the same generation 0 and
the same random draws), so its interval is that of the mean of per-seed differences.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import polars as pl

__all__ = ["change", "collapse_chart", "contrast", "summarize", "t_quantile_975"]

# t(0.975, df) for df = 1..30 (standard tables); beyond 30 a Cornish-Fisher expansion is within 1e-3.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _t_interval(frame: pl.DataFrame, by: list[str], value: str) -> pl.DataFrame:
    stats = frame.group_by(by, maintain_order=True).agg(
        mean=pl.col(value).mean(), sd=pl.col(value).std(ddof=1), n_seeds=pl.len().cast(pl.Int64)
    )
    t = pl.Series("t", [t_quantile_975(n - 1) if n > 1 else math.nan for n in stats["n_seeds"].to_list()])
    half = pl.when(pl.col("n_seeds") > 1).then(t * pl.col("sd") / pl.col("n_seeds").sqrt())
    return stats.with_columns(ci_low=pl.col("mean") - half, ci_high=pl.col("mean") + half).drop("sd")


def summarize(per_seed: pl.DataFrame) -> pl.DataFrame:
    """Per (arm, generation, metric): mean over seeds and its 95% t-interval (null with one seed)."""
    out = _t_interval(per_seed, ["arm", "generation", "metric"], "value")
    return out.select("arm", "generation", "metric", "mean", "ci_low", "ci_high", "n_seeds").sort(
        "metric", "arm", "generation"
    )


def contrast(per_seed: pl.DataFrame, a: str, b: str, *, generation: int | None = None) -> pl.DataFrame:
    """Arm `a` minus arm `b` at one generation (default: the last one both reached), per metric:
    the mean paired difference over seeds, its 95% t-interval, and whether the interval excludes 0."""
    both = per_seed.filter(pl.col("arm").is_in([a, b]))
    if generation is None:
        reached = both.group_by("arm").agg(pl.col("generation").max())
        if reached.height < 2:
            raise ValueError(f"need results of both arms {a!r} and {b!r}; have {reached['arm'].to_list()}")
        generation = int(reached["generation"].min())  # type: ignore[arg-type]
    at = both.filter(pl.col("generation") == generation)
    paired = at.pivot(on="arm", index=["seed", "metric"], values="value").drop_nulls()
    if a not in paired.columns or b not in paired.columns or paired.height == 0:
        raise ValueError(f"no seed has both {a!r} and {b!r} at generation {generation}")
    diffs = paired.with_columns(diff=pl.col(a) - pl.col(b))
    out = _t_interval(diffs, ["metric"], "diff").rename({"mean": "difference"})
    return out.select(
        pl.lit(f"{a} - {b}").alias("contrast"),
        pl.lit(generation, dtype=pl.Int64).alias("generation"),
        "metric",
        "difference",
        "ci_low",
        "ci_high",
        "n_seeds",
        excludes_zero=(pl.col("ci_low") > 0) | (pl.col("ci_high") < 0),
    ).sort("metric")


def change(per_seed: pl.DataFrame, arm: str, *, start: int = 0, end: int | None = None) -> pl.DataFrame:
    """How far one arm moved: its value at generation `end` (default: the last it reached) minus its
    value at `start`, paired by seed, per metric, with the 95% t-interval and whether it excludes 0."""
    mine = per_seed.filter(pl.col("arm") == arm)
    if mine.height == 0:
        raise ValueError(f"no results for arm {arm!r}; have {sorted(set(per_seed['arm'].to_list()))}")
    if end is None:
        end = int(mine["generation"].max())  # type: ignore[arg-type]
    at = mine.filter(pl.col("generation").is_in([start, end])).with_columns(
        which=pl.when(pl.col("generation") == end).then(pl.lit("end")).otherwise(pl.lit("start"))
    )
    paired = at.pivot(on="which", index=["seed", "metric"], values="value")
    if "start" not in paired.columns or "end" not in paired.columns:
        raise ValueError(f"arm {arm!r} has no seed with both generation {start} and {end}")
    diffs = paired.drop_nulls().with_columns(diff=pl.col("end") - pl.col("start"))
    out = _t_interval(diffs, ["metric"], "diff").rename({"mean": "difference"})
    return out.select(
        pl.lit(f"{arm}: gen {end} - gen {start}").alias("contrast"),
        pl.lit(end, dtype=pl.Int64).alias("generation"),
        "metric",
        "difference",
        "ci_low",
        "ci_high",
        "n_seeds",
        excludes_zero=(pl.col("ci_low") > 0) | (pl.col("ci_high") < 0),
    ).sort("metric")


def collapse_chart(
    summary: pl.DataFrame,
    reference: pl.DataFrame | None = None,
    *,
    metrics: list[str] | None = None,
    columns: int = 4,
) -> alt.FacetChart:
    """One panel per metric: mean over seeds per generation, one line per arm, the 95% interval
    as a band. With `reference` (metric, value), the held-out human text's value of the sample
    metrics is drawn as a grey line labelled 'human (held-out)'."""
    data = summary if metrics is None else summary.filter(pl.col("metric").is_in(metrics))
    data = data.select("arm", "generation", "metric", "mean", "ci_low", "ci_high")
    if reference is not None and reference.height:
        gens = data.select("generation").unique()
        ref = reference.filter(pl.col("metric").is_in(data["metric"].unique().to_list())).join(
            gens, how="cross"
        )
        data = pl.concat(
            [
                data,
                ref.select(
                    pl.lit("human (held-out)").alias("arm"),
                    "generation",
                    "metric",
                    pl.col("value").alias("mean"),
                    pl.col("value").alias("ci_low"),
                    pl.col("value").alias("ci_high"),
                ),
            ]
        )
    arms = data["arm"].unique(maintain_order=True).to_list()
    palette = {"replace": "#d62728", "accumulate": "#1f77b4", "mix": "#2ca02c", "human (held-out)": "#7f7f7f"}
    color = alt.Color(
        "arm:N",
        title="arm",
        scale=alt.Scale(domain=arms, range=[palette.get(a, "#9467bd") for a in arms]),
    )
    base = alt.Chart().encode(
        x=alt.X("generation:Q", title="generation", axis=alt.Axis(tickMinStep=1)), color=color
    )
    layers: list[Any] = [
        base.mark_area(opacity=0.2).encode(y=alt.Y("ci_low:Q", title=None, scale=alt.Scale(zero=False)), y2="ci_high:Q"),
        base.mark_line(point=True).encode(
            y="mean:Q",
            tooltip=["arm:N", "generation:Q", "metric:N", alt.Tooltip("mean:Q", format=".4g"),
                     alt.Tooltip("ci_low:Q", format=".4g"), alt.Tooltip("ci_high:Q", format=".4g")],
        ),
    ]  # fmt: skip
    return (
        alt.layer(*layers, data=data.sort("arm", "metric", "generation"))
        .properties(width=170, height=130)
        .facet(facet=alt.Facet("metric:N", title=None), columns=columns)
        .resolve_scale(y="independent")
    )
