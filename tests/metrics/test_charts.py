from __future__ import annotations

import json

import altair as alt
import numpy as np
import polars as pl
import pytest

from workbench.metrics import charts, cluster_keywords, compare_sets, shape_counts


def chart_rows(chart: alt.TopLevelMixin) -> int:
    """Largest inline dataset a chart sends to the browser."""
    spec = chart.to_dict()
    sizes = [len(v) for v in spec.get("datasets", {}).values()]
    return max(sizes, default=0)


@pytest.fixture(scope="module")
def big() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 100_000
    return pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "words": rng.integers(1, 80, n),
            "sim": rng.random(n),
            "set": rng.choice(["a", "b"], n),
            "round": rng.integers(1, 6, n),
            "status": rng.choice(["kept", "dropped", "error"], n, p=[0.6, 0.35, 0.05]),
            "cluster": rng.integers(0, 8, n),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "text": ["some text"] * n,
        }
    )


def test_bin_rows_integer_and_float_bins():
    df = pl.DataFrame({"w": [1, 2, 3, 10], "f": [0.0, 0.5, 0.99, 1.0]})
    ints = charts.bin_rows(df, "w", bins=5)
    assert ints["bin_start"].to_list() == [1.0, 1.0, 3.0, 9.0]
    assert (ints["bin_end"] - ints["bin_start"]).unique().to_list() == [2.0]
    floats = charts.bin_rows(df, "f", bins=4, extent=(0.0, 1.0))
    assert floats["bin_start"].to_list() == [0.0, 0.5, 0.75, 0.75]  # the top edge folds into the last bin
    with pytest.raises(ValueError, match="bins"):
        charts.bin_rows(df, "w", bins=0)


def test_builders_aggregate_before_charting(big):
    built = [
        charts.histogram(big, "words", select=True),
        charts.histogram(big, "sim", color="set", extent=(0, 1), normalize=True),
        charts.acceptance_over_rounds(big, by="set", select=True),
        charts.cluster_map(big, select=True),
    ]
    for chart in built:
        assert 0 < chart_rows(chart) <= charts.MAX_CHART_ROWS
    hist = built[0].to_dict()
    data = next(iter(hist["datasets"].values()))
    assert sum(r["count"] for r in data) == big.height  # every row counted once


def test_histogram_counts_and_shares():
    df = pl.DataFrame({"w": [1, 1, 2, 5], "set": ["a", "a", "b", "b"]})
    data = next(
        iter(charts.histogram(df, "w", color="set", bins=5, normalize=True).to_dict()["datasets"].values())
    )
    shares = {(r["set"], r["bin_start"]): r["share"] for r in data}
    assert shares[("a", 1.0)] == 1.0 and shares[("b", 2.0)] == 0.5


def test_acceptance_table():
    df = pl.DataFrame({"round": [1, 1, 1, 2, 2], "status": ["kept", "dropped", "error", "kept", "kept"]})
    out = charts.acceptance_table(df)
    assert out["rate"].to_list() == [0.5, 1.0]  # kept / (kept + dropped): an error is no decision
    assert out["errors"].to_list() == [1, 0] and out["candidates"].to_list() == [2, 2]
    # Answers and judge outputs share the round and a "kept" status: they are not candidates.
    mixed = df.with_columns(stage=pl.lit("instruction")).vstack(
        pl.DataFrame({"round": [1, 1], "status": ["kept", "kept"], "stage": ["completion", "judgment"]})
    )
    assert charts.acceptance_table(mixed)["rate"].to_list() == [0.5, 1.0]


def test_comparison_trend_shape_and_clusters(seed_frame_small):
    cmp = compare_sets(seed_frame_small, by="half", n_boot=50)
    facet = charts.metric_comparison(cmp, select=True)
    assert "pick" in alt.JupyterChart(facet)._vl_selections
    trend = charts.metric_trend(cmp.with_columns(generation=pl.lit(1), arm=pl.col("set")))
    assert chart_rows(trend) == cmp.height
    shape = charts.shape_chart(shape_counts(seed_frame_small), select=True)
    assert "pick" in alt.JupyterChart(shape)._vl_selections
    clusters = seed_frame_small.with_columns(cluster=pl.int_range(pl.len()) % 3, x=pl.lit(0.0), y=pl.lit(1.0))
    kw = cluster_keywords(clusters)
    spec = json.dumps(charts.cluster_map(clusters, kw).to_dict())
    assert kw["label"][0] in spec
    assert "pick" in alt.JupyterChart(charts.cluster_sizes(kw, select=True))._vl_selections


@pytest.fixture
def seed_frame_small() -> pl.DataFrame:
    texts = [
        "Write a poem about cats",
        "Give me three tips for sleep",
        "Explain how tides work",
        "Write a story about a dragon",
        "List five rivers in Europe",
        "Translate hello into Spanish",
    ] * 3
    return pl.DataFrame(
        {"id": [str(i) for i in range(len(texts))], "text": texts, "half": [i % 2 for i in range(len(texts))]}
    )


def test_select_ids_matches_fields_and_ignores_foreign_keys():
    rows = pl.DataFrame(
        {"id": ["a", "b", "c"], "cluster": [0, 1, 1], "bin_start": [1.0, 2.0, 2.0], "set": ["x", "x", "y"]}
    )
    assert charts.select_ids(rows, [{"cluster": 1}]) == ["b", "c"]
    assert charts.select_ids(rows, [{"bin_start": 2.0, "set": "y"}]) == ["c"]
    assert charts.select_ids(rows, [{"cluster": 0}, {"set": "y"}]) == ["a", "c"]
    assert charts.select_ids(rows, [{"_vgsid_": 3}]) == []
    assert charts.select_ids(rows, []) == []


def test_save_chart_png_svg_offline(tmp_path, seed_frame_small):
    chart = charts.histogram(seed_frame_small, "half")
    png = charts.save_chart(chart, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = charts.save_chart(chart, tmp_path / "h.svg")
    assert svg.read_text().lstrip().startswith("<svg")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        charts.save_chart(chart, png)
    charts.save_chart(chart, png, overwrite=True)
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        charts.save_chart(chart, tmp_path / "h.pdf")


def test_enable_offline_sets_renderer():
    charts.enable_offline()
    assert alt.renderers.active == "jupyter"
    assert alt.renderers.options.get("offline") is True
    assert alt.JupyterChart._is_offline


def test_missing_column_error_says_what_to_fix():
    with pytest.raises(ValueError, match=r"needs column\(s\) \['words'\]"):
        charts.histogram(pl.DataFrame({"x": [1]}), "words")


def test_metric_panels_are_titled_in_plain_words():
    """Issue 18.7: `distinct_n` and friends were the panel titles, unexplained."""
    cmp = pl.DataFrame({"set": ["a", "a"], "metric": ["distinct_2", "self_bleu"], "value": [0.5, 0.2],
                        "ci_low": [None, 0.1], "ci_high": [None, 0.3], "sample_size": [4, 4]})  # fmt: skip
    spec = json.dumps(charts.metric_comparison(cmp).to_dict())
    assert charts.METRIC_TITLES["distinct_2"] in spec and "distinct-2" in charts.METRIC_TITLES["distinct_2"]
    assert charts.METRIC_TITLES["self_bleu"] in spec
