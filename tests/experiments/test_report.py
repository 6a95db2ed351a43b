"""Intervals over seeds, paired contrasts and the chart of a collapse run."""

from __future__ import annotations

import math
import statistics

import polars as pl
import pytest

from workbench.experiments import collapse_chart, contrast, summarize, t_quantile_975


def test_t_quantiles():
    assert t_quantile_975(1) == pytest.approx(12.706)
    assert t_quantile_975(4) == pytest.approx(2.776)
    assert t_quantile_975(60) == pytest.approx(2.000, abs=1e-3)
    assert t_quantile_975(10_000) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError, match=">= 1"):
        t_quantile_975(0)


def _frame(values: dict[tuple[str, int], list[float]]) -> pl.DataFrame:
    rows = [
        {"arm": arm, "seed": s, "generation": g, "metric": "m", "value": v}
        for (arm, g), vs in values.items()
        for s, v in enumerate(vs)
    ]
    return pl.DataFrame(rows)


def test_summary_is_a_t_interval_over_seeds():
    vals = [1.0, 2.0, 4.0, 7.0]
    out = summarize(_frame({("a", 0): vals, ("b", 0): [5.0]})).sort("arm")
    a = out.row(0, named=True)
    half = 3.182 * statistics.stdev(vals) / math.sqrt(4)
    assert a["mean"] == pytest.approx(3.5) and a["n_seeds"] == 4
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((3.5 - half, 3.5 + half))
    b = out.row(1, named=True)
    assert b["ci_low"] is None and b["ci_high"] is None  # one seed: no interval


def test_contrast_pairs_seeds():
    # arm a is b + 1 on every seed, with large between-seed spread: paired, the difference is exact
    per_seed = _frame(
        {("a", 3): [11.0, 21.0, 31.0], ("b", 3): [10.0, 20.0, 30.0], ("a", 0): [0, 0, 0], ("b", 0): [0, 0, 0]}
    )
    out = contrast(per_seed, "a", "b").row(0, named=True)
    assert out["generation"] == 3 and out["difference"] == pytest.approx(1.0)
    assert (
        out["ci_low"] == pytest.approx(1.0) and out["ci_high"] == pytest.approx(1.0) and out["excludes_zero"]
    )
    noisy = contrast(_frame({("a", 1): [1.0, -1.0, 2.0], ("b", 1): [0.0, 0.0, 0.0]}), "a", "b").row(
        0, named=True
    )
    assert noisy["ci_low"] < 0 < noisy["ci_high"] and not noisy["excludes_zero"]
    with pytest.raises(ValueError, match="both arms"):
        contrast(per_seed, "a", "zzz")


def test_chart_has_a_band_and_a_line_per_metric_and_the_human_reference():
    per_seed = pl.concat(
        [
            _frame({("replace", g): [g + 0.1, g + 0.2], ("accumulate", g): [0.1, 0.3]}).with_columns(
                metric=pl.lit(m)
            )
            for g in range(3)
            for m in ("perplexity", "distinct_1")
        ]
    )
    reference = pl.DataFrame({"metric": ["distinct_1"], "value": [0.5]})
    spec = collapse_chart(summarize(per_seed), reference).to_dict()
    assert spec["facet"]["field"] == "metric"
    marks = [
        layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
        for layer in spec["spec"]["layer"]
    ]
    assert marks == ["area", "line"]
    data = pl.DataFrame(next(iter(spec["datasets"].values())))
    assert data.height == 2 * 3 * 2 + 3  # arms x generations x metrics, + the reference per generation
    ref = data.filter(pl.col("arm") == "human (held-out)")
    assert set(ref["metric"]) == {"distinct_1"} and (ref["mean"] == 0.5).all()
