"""Altair chart builders: polars frame in, chart out.

Every builder aggregates in polars first (counts per bin, per set, per round; a capped, seeded
sample of points for the cluster map), so no chart carries more than `MAX_CHART_ROWS` rows and
Altair's 5,000-row limit is never hit. Builders that accept `select=True` add a point selection
named `pick` over the fields that identify a bar or cluster; `select_ids` maps a selection back to
row ids, which is how the dashboard filters the inspector.

Offline: call `enable_offline()` once in a notebook (JupyterLab has no CDN here); `save_chart` writes
PNG or SVG with vl-convert, no browser or network needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import altair as alt
import polars as pl

__all__ = [
    "MAX_CHART_ROWS",
    "METRIC_TITLES",
    "SELECTION",
    "acceptance_over_rounds",
    "acceptance_table",
    "bin_rows",
    "cluster_map",
    "cluster_sizes",
    "enable_offline",
    "histogram",
    "metric_comparison",
    "metric_trend",
    "save_chart",
    "select_ids",
    "shape_chart",
]

MAX_CHART_ROWS = 5000
SELECTION = "pick"  # the name of every builder's point selection
METRIC_TITLES = {
    "mean_words": "mean words per row",
    "mean_tokens": "mean tokens per row",
    "distinct_1": "distinct-1: unique words / all words",
    "distinct_2": "distinct-2: unique word pairs / all pairs",
    "distinct_3": "distinct-3: unique word triples / all triples",
    "self_bleu": "self-BLEU: overlap with the other rows (lower = varied)",
    "nn_rouge_l": "nearest-row ROUGE-L (near 1 = near-duplicates)",
    "mean_cosine_distance": "mean embedding distance (higher = varied)",
    "vendi": "Vendi score: effective number of distinct rows",
}
"""Panel titles of `metric_comparison`, in words (metrics of `workbench.metrics.compare_sets`)."""


def enable_offline() -> None:
    """Render charts in JupyterLab without a CDN: the offline jupyter renderer, and offline
    `alt.JupyterChart` widgets (their JavaScript bundled by vl-convert)."""
    alt.renderers.enable("jupyter", offline=True)
    alt.JupyterChart.enable_offline(True)


def save_chart(
    chart: alt.TopLevelMixin, path: str | Path, *, scale: float = 2.0, overwrite: bool = False
) -> Path:
    """Write `chart` as PNG or SVG (by the file suffix) with vl-convert, offline.

    Refuses to replace an existing file unless `overwrite=True`.
    """
    import vl_convert as vlc

    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"save_chart writes .png or .svg, not {suffix or 'a file without suffix'!r}: {out}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    spec = chart.to_dict()
    if suffix == ".png":
        out.write_bytes(vlc.vegalite_to_png(spec, scale=scale))
    else:
        out.write_text(vlc.vegalite_to_svg(spec))
    return out


def _check(df: pl.DataFrame, what: str) -> pl.DataFrame:
    if df.height > MAX_CHART_ROWS:  # a builder bug, not user error: builders aggregate first
        raise ValueError(f"{what}: {df.height} rows would exceed the {MAX_CHART_ROWS}-row chart limit")
    return df


def _require(df: pl.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"chart needs column(s) {missing}; the frame has {df.columns}")


def _pick(fields: Sequence[str]) -> Any:
    return alt.selection_point(name=SELECTION, fields=list(fields), on="click", clear="dblclick")


def bin_rows(
    df: pl.DataFrame, field: str, *, bins: int = 30, extent: tuple[float, float] | None = None
) -> pl.DataFrame:
    """Add `bin_start, bin_end` to every row: equal-width bins over `extent` (default: the data's
    min..max). Integer columns get whole-number widths so a bar never straddles two lengths.

    width = (hi - lo) / bins  (integers: max(1, ceil((hi - lo + 1) / bins)))
    bin_start = lo + floor((v - lo) / width) * width, the top edge folded into the last bin.
    """
    _require(df, field)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    values = df[field].drop_nulls()
    if values.len() == 0:
        return df.with_columns(bin_start=pl.lit(None, pl.Float64), bin_end=pl.lit(None, pl.Float64))
    lo, hi = (float(values.min()), float(values.max())) if extent is None else extent  # type: ignore[arg-type]
    if df[field].dtype.is_integer():
        width = float(max(1, math.ceil((hi - lo + 1) / bins)))
        last = math.inf
    else:
        width = (hi - lo) / bins if hi > lo else 1.0
        last = lo + (bins - 1) * width
    start = (lo + ((pl.col(field).cast(pl.Float64) - lo) / width).floor() * width).clip(upper_bound=last)
    return df.with_columns(bin_start=start).with_columns(bin_end=pl.col("bin_start") + width)


def histogram(
    df: pl.DataFrame,
    field: str,
    *,
    color: str | None = None,
    bins: int = 30,
    extent: tuple[float, float] | None = None,
    title: str | None = None,
    normalize: bool = False,
    select: bool = False,
) -> alt.Chart:
    """Histogram of `field`, optionally one overlaid series per value of `color` (share of each
    series with `normalize=True`, so sets of different sizes compare). Selecting a bar picks its bin."""
    _require(df, field, *([color] if color else []))
    keys = [color] if color else []
    binned = bin_rows(df, field, bins=bins, extent=extent).drop_nulls("bin_start")
    agg = (
        binned.group_by([*keys, "bin_start", "bin_end"]).agg(count=pl.len().cast(pl.Int64)).sort("bin_start")
    )
    total = pl.col("count").sum().over(keys) if keys else pl.col("count").sum()
    agg = _check(agg.with_columns(share=pl.col("count") / total), "histogram")
    y = "share:Q" if normalize else "count:Q"
    chart = (
        alt.Chart(agg, title=title or f"{field} distribution")
        .mark_bar(opacity=0.6 if color else 0.9, binSpacing=0)
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title=field),
            x2="bin_end:Q",
            y=alt.Y(y, stack=None, title="share of rows" if normalize else "rows"),
            tooltip=[*keys, "bin_start:Q", "bin_end:Q", "count:Q", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    if color:
        chart = chart.encode(color=alt.Color(f"{color}:N", title=color))
    if select:
        pick = _pick(["bin_start", *keys])
        chart = chart.add_params(pick).encode(opacity=alt.condition(pick, alt.value(0.9), alt.value(0.3)))
    return chart


def metric_comparison(
    compare: pl.DataFrame, *, metrics: Sequence[str] | None = None, columns: int = 3, select: bool = False
) -> alt.FacetChart:
    """One small panel per metric: a bar per set with its bootstrap interval (from
    `workbench.metrics.compare_sets`). Each panel has its own y scale. Selecting a bar picks a set."""
    _require(compare, "set", "metric", "value", "ci_low", "ci_high")
    data = compare if metrics is None else compare.filter(pl.col("metric").is_in(list(metrics)))
    data = _check(data.drop_nulls("value"), "metric comparison").with_columns(
        title=pl.col("metric").replace_strict(METRIC_TITLES, default=pl.col("metric"), return_dtype=pl.Utf8)
    )
    axis = alt.Axis(labelLimit=110, labelAngle=-30)  # a long run name must not push the panels apart
    base = alt.Chart().encode(x=alt.X("set:N", title=None, sort=None, axis=axis))
    bars = base.mark_bar().encode(
        y=alt.Y("value:Q", title=None),
        color=alt.Color("set:N", legend=None),
        tooltip=[
            "set:N",
            "metric:N",
            alt.Tooltip("value:Q", format=".3f"),
            "ci_low:Q",
            "ci_high:Q",
            "sample_size:Q",
        ],
    )
    if select:
        pick = _pick(["set"])
        bars = bars.add_params(pick).encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)))
    errs = base.mark_rule(color="black").encode(y="ci_low:Q", y2="ci_high:Q")
    return (
        alt.layer(bars, errs, data=data)
        .properties(width=180, height=120)
        .facet(facet=alt.Facet("title:N", title=None, header=alt.Header(labelLimit=260)), columns=columns)
        .resolve_scale(y="independent")
    )


def metric_trend(
    df: pl.DataFrame, *, x: str = "generation", color: str = "arm", metrics: Sequence[str] | None = None
) -> alt.FacetChart:
    """Each metric over `x` (generation, round, temperature), one line per `color`, with the
    bootstrap interval as a band where the frame has `ci_low`/`ci_high` (long format as produced by
    `compare_sets`, plus the `x` and `color` columns)."""
    _require(df, x, color, "metric", "value")
    data = df if metrics is None else df.filter(pl.col("metric").is_in(list(metrics)))
    data = _check(data, "metric trend")
    base = alt.Chart().encode(x=alt.X(f"{x}:O", title=x), color=alt.Color(f"{color}:N", title=color))
    layers: list[Any] = [
        base.mark_line(point=True).encode(
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            tooltip=[f"{color}:N", f"{x}:O", "metric:N", alt.Tooltip("value:Q", format=".3f")],
        )
    ]
    if "ci_low" in data.columns and "ci_high" in data.columns:
        layers.insert(0, base.mark_errorband(opacity=0.2).encode(y="ci_low:Q", y2="ci_high:Q"))
    return (
        alt.layer(*layers, data=data)
        .properties(width=170, height=130)
        .facet(facet=alt.Facet("metric:N", title=None), columns=4)
        .resolve_scale(y="independent")
    )


def cluster_map(
    clusters: pl.DataFrame,
    keywords: pl.DataFrame | None = None,
    *,
    text: str = "text",
    max_points: int = 2000,
    seed: int = 0,
    select: bool = False,
) -> alt.LayerChart:
    """Rows on the 2-D map of `workbench.metrics.kmeans_clusters`, coloured by cluster, with each
    cluster's top words (from `cluster_keywords`) at its centre. Above `max_points` rows a seeded
    sample keeps at most max_points points (every cluster keeps at least one). Selecting a point picks
    its cluster."""
    _require(clusters, "cluster", "x", "y")
    max_points = min(max_points, MAX_CHART_ROWS - 500)
    pts = clusters
    if pts.height > max_points:
        frac = max_points / pts.height
        pts = (
            pts.with_columns(_r=pl.int_range(pl.len()).shuffle(seed=seed).over("cluster"))
            .filter(pl.col("_r") < (pl.len().over("cluster") * frac).ceil().clip(lower_bound=1))
            .drop("_r")
        )
    cols = ["cluster", "x", "y", *([text] if text in pts.columns else [])]
    pts = pts.select(cols)
    if text in pts.columns:
        pts = pts.with_columns(pl.col(text).fill_null("").str.slice(0, 120))
    pts = _check(pts, "cluster map")
    points = (
        alt.Chart(pts)
        .mark_circle(size=40)
        .encode(
            x=alt.X("x:Q", title="PC 1", axis=alt.Axis(labels=False)),
            y=alt.Y("y:Q", title="PC 2", axis=alt.Axis(labels=False)),
            color=alt.Color("cluster:N"),
            tooltip=["cluster:N", *([f"{text}:N"] if text in pts.columns else [])],
        )
    )
    if select:
        pick = _pick(["cluster"])
        points = points.add_params(pick).encode(opacity=alt.condition(pick, alt.value(0.85), alt.value(0.15)))
    centres = clusters.group_by("cluster").agg(x=pl.col("x").mean(), y=pl.col("y").mean())
    if keywords is not None:
        _require(keywords, "cluster", "label")
        centres = centres.join(keywords.select("cluster", "label"), on="cluster", how="left")
    else:
        centres = centres.with_columns(label=pl.col("cluster").cast(pl.Utf8))
    labels = (
        alt.Chart(centres)
        .mark_text(fontWeight="bold", fontSize=11, dy=-8)
        .encode(x="x:Q", y="y:Q", text="label:N")
    )
    return cast(alt.LayerChart, alt.layer(points, labels)).properties(
        width=420, height=320, title="clusters (k-means on embeddings)"
    )


def cluster_sizes(keywords: pl.DataFrame, *, select: bool = False) -> alt.Chart:
    """Rows per cluster with its top words as the bar label (from `cluster_keywords`). Selecting a
    bar picks its cluster."""
    _require(keywords, "cluster", "size", "label")
    data = _check(keywords.select("cluster", "size", "label"), "cluster sizes")
    chart = (
        alt.Chart(data, title="cluster sizes and most telling words (c-TF-IDF)")
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort="-x", title=None),
            x=alt.X("size:Q", title="rows"),
            color=alt.Color("cluster:N", legend=None),
            tooltip=["cluster:N", "size:Q", "label:N"],
        )
    )
    if select:
        pick = _pick(["cluster"])
        chart = chart.add_params(pick).encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)))
    return chart


def acceptance_table(
    df: pl.DataFrame, *, round_col: str = "round", status_col: str = "status", by: str | None = None
) -> pl.DataFrame:
    """Per round (and `by` group): `candidates, kept, dropped, errors, rate`, with the one acceptance
    definition the whole workbench uses (`workbench.generate.selfinstruct.stats.acceptance_by_round`:
    kept / (kept + dropped) over instruction candidates; errors counted apart)."""
    from workbench.generate.selfinstruct.stats import (
        acceptance_by_round,  # the definition lives with self-instruct
    )

    _require(df, round_col, status_col, *([by] if by else []))
    renamed = df.rename({c: n for c, n in ((round_col, "round"), (status_col, "status")) if c != n})
    return acceptance_by_round(renamed, by=by)


def acceptance_over_rounds(
    df: pl.DataFrame,
    *,
    round_col: str = "round",
    status_col: str = "status",
    by: str | None = None,
    select: bool = False,
) -> alt.Chart:
    """Acceptance rate kept / (kept + dropped) of self-instruct candidates per round, one line per
    `by` group (see `acceptance_table`). Selecting a point picks that round."""
    table = _check(acceptance_table(df, round_col=round_col, status_col=status_col, by=by), "acceptance")
    chart = (
        alt.Chart(table, title="acceptance over rounds (kept / decided candidates)")
        .mark_line(point=alt.OverlayMarkDef(size=80))
        .encode(
            x=alt.X("round:O", title="round"),
            y=alt.Y("rate:Q", title="acceptance", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            tooltip=["round:O", "kept:Q", "dropped:Q", "errors:Q", alt.Tooltip("rate:Q", format=".1%")],
        )
    )
    if by:
        chart = chart.encode(color=alt.Color(f"{by}:N", title=by))
    if select:
        chart = chart.add_params(_pick(["round"]))
    return chart


def shape_chart(shapes: pl.DataFrame, *, select: bool = False) -> alt.LayerChart:
    """The instruction-shape view (from `workbench.metrics.shape_counts`): a bar per root verb,
    split into its most common objects. Selecting a segment picks that verb and object."""
    _require(shapes, "verb", "object", "count", "verb_count")
    data = _check(shapes, "shape chart")
    y = alt.Y(
        "verb:N", sort=alt.EncodingSortField(field="verb_count", op="max", order="descending"), title=None
    )
    x = alt.X("count:Q", title="rows", stack="zero")
    order = alt.Order("count:Q", sort="descending")
    bars = (
        alt.Chart()
        .mark_bar(stroke="white")
        .encode(
            y=y,
            x=x,
            order=order,
            color=alt.Color("object:N", legend=None),
            tooltip=["verb:N", "object:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    if select:
        pick = _pick(["verb", "object"])
        bars = bars.add_params(pick).encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)))
    text = (
        alt.Chart()
        .mark_text(align="right", dx=-3, color="white", fontSize=10)
        .encode(
            y=y,
            x=x,
            order=order,
            text="object:N",
            opacity=alt.condition(
                "datum.count >= 2", alt.value(1.0), alt.value(0.0)
            ),  # 1-row segments are too narrow
        )
    )
    return cast(alt.LayerChart, alt.layer(bars, text, data=data)).properties(
        title="instruction shape: root verb and its object", width=420
    )


def select_ids(rows: pl.DataFrame, picks: Sequence[Mapping[str, Any]], *, id_column: str = "id") -> list[str]:
    """Ids of the rows a point selection picked.

    `picks` is the selection value Altair reports (`PointSelection.value`): a list of
    {field: value} dicts; a row matches a pick when every field equals the pick's value (floats
    compared with a 1e-9 tolerance, as they round-trip through JSON). An empty selection picks no rows.
    """
    _require(rows, id_column)
    if not picks:
        return []
    conds = []
    for pick in picks:
        parts = []
        for field, value in pick.items():
            if field not in rows.columns:
                continue  # fields the chart adds (e.g. vega's own) do not filter rows
            col = pl.col(field)
            if value is None:
                parts.append(col.is_null())
            elif isinstance(value, float) and rows[field].dtype.is_numeric():
                parts.append((col.cast(pl.Float64) - value).abs() < 1e-9)
            else:
                parts.append(
                    col.cast(pl.Utf8) == str(value) if rows[field].dtype == pl.Utf8 else col == value
                )
        if parts:
            conds.append(pl.all_horizontal(parts))
    if not conds:
        return []
    return rows.filter(pl.any_horizontal(conds))[id_column].cast(pl.Utf8).to_list()
