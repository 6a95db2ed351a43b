"""Metric frames (`compare_sets`, `by_attribute`, `compare_runs`) as small HTML tables.

One row per set or group, one column per metric, each cell "value [low, high]" (the interval the core
computed; a dash where there is none). The frame is pivoted in polars; only the text is made here.
"""

from __future__ import annotations

import html
import math

import polars as pl

from workbench.metrics.charts import METRIC_TITLES

__all__ = ["interval_text", "metrics_html", "wide_metrics"]

SHORT_TITLES = {
    "mean_words": "mean words",
    "mean_tokens": "mean tokens",
    "distinct_1": "distinct-1",
    "distinct_2": "distinct-2",
    "distinct_3": "distinct-3",
    "compression_ratio": "compression ratio",
    "self_bleu": "self-BLEU",
    "nn_rouge_l": "nearest ROUGE-L",
    "mean_cosine_distance": "embedding distance",
    "vendi": "Vendi score",
}


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def interval_text(value: float | None, low: float | None, high: float | None) -> str:
    """'0.412 [0.380, 0.441]', or just the value when there is no interval."""
    if low is None or high is None:
        return _num(value)
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


def wide_metrics(frame: pl.DataFrame, index: str = "set") -> pl.DataFrame:
    """`index`, `rows` and one text column per metric (in first-seen order), from a long metric frame."""
    cells = frame.with_columns(
        cell=pl.struct("value", "ci_low", "ci_high").map_elements(
            lambda s: interval_text(s["value"], s["ci_low"], s["ci_high"]), return_dtype=pl.Utf8
        )
    )
    metrics = frame["metric"].unique(maintain_order=True).to_list()
    sizes = frame.group_by(index, maintain_order=True).agg(rows=pl.col("n_rows").max())
    wide = cells.pivot(on="metric", index=index, values="cell", aggregate_function="first")
    return sizes.join(wide, on=index, how="left", maintain_order="left").select(index, "rows", *metrics)


def metrics_html(frame: pl.DataFrame, index: str = "set", *, css: str = "wb-metric-table") -> str:
    """An HTML table of `wide_metrics(frame, index)`; each header's tooltip says what the metric is."""
    if frame.height == 0:
        return ""
    wide = wide_metrics(frame, index)
    head = "".join(
        f"<th title='{html.escape(METRIC_TITLES.get(c, c), quote=True)}'>{html.escape(SHORT_TITLES.get(c, c))}</th>"
        for c in wide.columns
    )
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r) + "</tr>"
        for r in wide.iter_rows()
    )
    return (
        f"<div style='overflow-x:auto'><table class='{css}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )
