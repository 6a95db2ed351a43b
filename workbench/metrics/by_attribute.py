"""Every metric split by a sampled attribute, with an interval per group.

Rows generated with samplers record the values they drew in a JSON `attributes` column
(`workbench.generate.samplers`). `by_attribute(rows, "persona")` groups the rows by that value and
measures each group like a set of its own (`compare_sets` with `set_ci=True`): per-row metrics get
bootstrap intervals, set-level ones (distinct-n, compression ratio, Vendi) jackknife intervals. A run
with samplers against one without, on the same budget, is `compare_runs`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl

from ..engine.protocol import Backend
from ._ngrams import require_column
from .compare import compare_sets, split_sets

__all__ = ["BY_ATTRIBUTE_SCHEMA", "attribute_names", "by_attribute"]

BY_ATTRIBUTE_SCHEMA = {
    "attribute": pl.Utf8,
    "group": pl.Utf8,
    "metric": pl.Utf8,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n_rows": pl.Int64,
    "sample_size": pl.Int64,
}


def attribute_names(rows: pl.DataFrame, *, scan: int = 5000) -> list[str]:
    """Sorted names of the attributes recorded in `rows`' `attributes` column ([] without samplers).
    Reads the distinct JSON values of at most `scan` rows (a run's attributes repeat a lot)."""
    if "attributes" not in rows.columns:
        return []
    found: set[str] = set()
    for text in rows["attributes"].head(scan).drop_nulls().unique().to_list():
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            continue  # a hand-edited row; the split itself reports what it can read
        if isinstance(value, dict):
            found |= {str(k) for k in value}
    return sorted(found)


def by_attribute(
    rows: pl.DataFrame,
    attribute: str,
    column: str = "text",
    *,
    metrics: Sequence[str] | None = None,
    backend: Backend | None = None,
    embeddings: bool = False,
    sample: int | None = 1000,
    embed_sample: int | None = 300,
    n_boot: int = 1000,
    jackknife_groups: int = 200,
    seed: int = 0,
    level: float = 0.95,
    rouge: bool = True,
) -> pl.DataFrame:
    """Each metric of each group of rows sharing a value of `attribute` (`BY_ATTRIBUTE_SCHEMA`).

    `attribute` is a sampled attribute ("persona" or "attributes.persona") or a plain column. Groups
    follow `split_sets` (sorted values; rows that did not draw the attribute form the "None" group).
    Metrics and intervals are those of `compare_sets(..., set_ci=True)`: mean_words (and mean_tokens
    with a backend), self_bleu, nn_rouge_l with percentile-bootstrap intervals of their per-row mean;
    distinct_1..3, compression_ratio (and with `embeddings=True` vendi, mean_cosine_distance) with
    normal intervals from a delete-a-group jackknife. A group of one row has no interval. `metrics`
    keeps only the named ones (an unknown name is refused, listing those available).
    """
    require_column(rows, column)
    if rows.height == 0:
        raise ValueError("no rows to split: generate some first (or pick another stage)")
    groups = split_sets(rows, attribute)
    table = compare_sets(
        groups, column, backend=backend, embeddings=embeddings, sample=sample, embed_sample=embed_sample,
        n_boot=n_boot, seed=seed, level=level, rouge=rouge, set_ci=True, jackknife_groups=jackknife_groups,
    )  # fmt: skip
    if metrics is not None:
        known = table["metric"].unique(maintain_order=True).to_list()
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; available: {known}")
        table = table.filter(pl.col("metric").is_in(list(metrics)))
    name = attribute.removeprefix("attributes.")
    return (
        table.rename({"set": "group"})
        .select(pl.lit(name).alias("attribute"), *[c for c in BY_ATTRIBUTE_SCHEMA if c != "attribute"])
        .cast(pl.Schema(BY_ATTRIBUTE_SCHEMA))
    )
