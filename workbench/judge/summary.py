"""Small aggregations the judge panel and notebooks chart (computed in polars, never row by row in a chart)."""

from __future__ import annotations

import polars as pl

from ..filters.apply import with_filter_drops
from .absolute import score_distributions
from .rubric import Rubric
from .runner import with_judgment_schema


def judgeable_rows(rows: pl.DataFrame, *, stage: str = "completion") -> pl.DataFrame:
    """Rows of a run that can be judged: the stage's kept rows with a non-empty text. Rows a Filters Apply
    dropped are not judgeable (as for a recipe's judge step, which reads the run after its drops)."""
    if rows.height == 0 or "stage" not in rows.columns:
        return rows.clear()
    out = with_filter_drops(rows).filter((pl.col("stage") == stage) & (pl.col("status") == "kept"))
    return out.filter(pl.col("text").is_not_null() & (pl.col("text").str.strip_chars() != ""))


def sample_rows(rows: pl.DataFrame, n: int, *, seed: int = 0) -> pl.DataFrame:
    """A reproducible sample of `n` rows (all of them when there are fewer), in run order."""
    if n <= 0:
        raise ValueError(f"the sample size must be at least 1, got {n}")
    if rows.height <= n:
        return rows
    picked = rows.with_row_index("_i").sample(n, seed=seed).sort("_i").drop("_i")
    return picked


def score_histogram(judgments: pl.DataFrame, scale: tuple[int, ...] | None = None) -> pl.DataFrame:
    """Per rubric version and score: how many parsed judgments gave it (`count`, `share`) and the mean
    probability the judges put on it (`mean_probability`, from the logprob distributions). Every score
    of `scale` appears, with zeros, so versions line up in a chart."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    absolute = judgments.filter(pl.col("judge_kind") == "absolute")
    schema = {"rubric_version": pl.Utf8, "score": pl.Int64, "count": pl.UInt32, "share": pl.Float64,
              "mean_probability": pl.Float64}  # fmt: skip
    if absolute.height == 0:
        return pl.DataFrame(schema=schema)
    versions = absolute.select("rubric_version").unique(maintain_order=True)
    scores = scale or tuple(
        sorted(absolute.filter(pl.col("parse_ok"))["score"].drop_nulls().unique().to_list())
    )
    grid = versions.join(pl.DataFrame({"score": list(scores)}, schema={"score": pl.Int64}), how="cross")
    counts = (
        absolute.filter(pl.col("parse_ok")).group_by("rubric_version", "score").agg(pl.len().alias("count"))
    )
    probs = (
        score_distributions(absolute)
        .group_by("rubric_version", "score")
        .agg(pl.col("probability").mean().alias("mean_probability"))
    )
    out = (
        grid.join(counts, on=["rubric_version", "score"], how="left")
        .join(probs, on=["rubric_version", "score"], how="left")
        .with_columns(pl.col("count").fill_null(0).cast(pl.UInt32), pl.col("mean_probability").fill_null(0.0))
        .with_columns(
            (pl.col("count") / pl.col("count").sum().over("rubric_version")).fill_nan(0.0).alias("share")
        )
    )
    return out.select(list(schema)).cast(schema)  # type: ignore[arg-type]


def version_labels(judgments: pl.DataFrame, rubrics: dict[str, Rubric] | None = None) -> dict[str, str]:
    """Readable names of the rubric versions present: 'name v1 (hash)' in order of first appearance."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    out: dict[str, str] = {}
    counters: dict[str, int] = {}
    for name, version in judgments.select("rubric", "rubric_version").unique(maintain_order=True).iter_rows():
        if version in out:
            continue
        counters[name] = counters.get(name, 0) + 1
        out[version] = f"{name} v{counters[name]} ({version[:6]})"
    return out
