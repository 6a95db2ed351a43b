"""Splitting metrics by a sampled attribute, and a run with samplers against one without on one budget."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from workbench.metrics import compare_sets, split_sets
from workbench.metrics.compare import compare_runs, jackknife_se

VARIED = [
    "Explain how tides follow the moon.",
    "List five spices used in Indian cooking.",
    "Write a limerick about a sleepy cat.",
    "Describe the rules of chess for a child.",
    "Suggest three ways to save water at home.",
    "Summarise the plot of a heist film.",
    "Convert twelve miles into kilometres.",
    "Name the planets that have rings.",
    "Draft a polite note declining a meeting.",
    "Compare trains and ferries for island travel.",
    "Give a recipe for a quick lentil soup.",
    "Outline a beginner's weekly running plan.",
]
SAME = ["Write a short poem about the sea."] * 6 + ["Write a short poem about the sea at night."] * 6


def rows_with_attributes() -> pl.DataFrame:
    topics = ["food", "travel", "food", None] * 3
    attrs = [None if t is None else json.dumps({"persona": "a cook", "topic": t}) for t in topics]
    return pl.DataFrame({"id": [str(i) for i in range(12)], "text": VARIED, "attributes": attrs})


def test_split_by_a_sampled_attribute():
    rows = rows_with_attributes()
    sets = split_sets(rows, "topic")
    assert list(sets) == ["food", "travel", "None"]
    assert [s.height for s in sets.values()] == [6, 3, 3]
    assert sets["food"].columns == rows.columns  # the helper column does not leak
    assert split_sets(rows, "attributes.topic")["travel"]["text"].to_list() == [
        VARIED[1],
        VARIED[5],
        VARIED[9],
    ]
    table = compare_sets(rows, by="topic", n_boot=50)
    assert set(table["set"]) == {"food", "travel", "None"}
    food = table.filter((pl.col("set") == "food") & (pl.col("metric") == "mean_words"))
    assert food["n_rows"][0] == 6
    assert compare_sets(rows, by="id", n_boot=10)["set"].n_unique() == 12  # a plain column still splits


def test_unknown_attribute_names_what_was_recorded():
    with pytest.raises(ValueError, match=r"no row records an attribute 'mood'.*\['persona', 'topic'\]"):
        split_sets(rows_with_attributes(), "mood")
    with pytest.raises(ValueError, match="not in frame"):
        split_sets(pl.DataFrame({"text": ["a"]}), "topic")


def test_jackknife_of_a_mean_is_the_standard_error():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    frame = pl.DataFrame({"x": x})
    value, se = jackknife_se(frame, lambda d: float(d["x"].mean()))  # type: ignore[arg-type]
    assert value == pytest.approx(x.mean())
    assert se == pytest.approx(x.std(ddof=1) / np.sqrt(40))  # delete-one jackknife of a mean is exact
    _, grouped = jackknife_se(frame, lambda d: float(d["x"].mean()), groups=10)  # type: ignore[arg-type]
    assert 0.5 * se < grouped < 2 * se


def test_compare_runs_on_one_budget_with_intervals():
    varied = pl.DataFrame({"text": VARIED + VARIED[:4]})  # 16 rows: cut to the other run's 12
    same = pl.DataFrame({"text": SAME})
    table = compare_runs(varied, same, names=("with", "without"), n_boot=100)
    assert set(table["set"]) == {"with", "without", "with - without"}
    assert (table.filter(pl.col("set") != "with - without")["n_rows"] == 12).all()

    def get(s: str, m: str) -> dict:
        return table.filter((pl.col("set") == s) & (pl.col("metric") == m)).row(0, named=True)

    d2 = get("with - without", "distinct_2")
    assert d2["value"] == pytest.approx(
        get("with", "distinct_2")["value"] - get("without", "distinct_2")["value"]
    )
    assert d2["ci_low"] > 0  # a varied set really is more diverse than a repeated one
    cr = get("with - without", "compression_ratio")
    assert cr["value"] < 0 and cr["ci_high"] < 0  # and compresses worse
    for metric in ("distinct_1", "distinct_2", "distinct_3", "compression_ratio"):
        row = get("with", metric)
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert {"self_bleu", "nn_rouge_l", "mean_words"} <= set(table["metric"])  # compare_sets' metrics too
    assert table.filter(pl.col("metric") == "distinct_2").height == 3  # not duplicated from compare_sets


def test_compare_runs_vendi_from_given_embeddings_and_budget_checks():
    rng = np.random.default_rng(1)
    spread = rng.normal(size=(12, 8))
    spread /= np.linalg.norm(spread, axis=1, keepdims=True)
    tight = np.tile(spread[:1], (12, 1)) + 0.05 * rng.normal(size=(12, 8))
    tight /= np.linalg.norm(tight, axis=1, keepdims=True)

    def frame(texts: list[str], emb: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"text": texts}).with_columns(
            pl.Series("embedding", emb.astype(np.float32), dtype=pl.Array(pl.Float32, 8))
        )

    table = compare_runs(frame(VARIED, spread), frame(SAME, tight), embeddings=True, n_boot=50)
    vendi = table.filter((pl.col("metric") == "vendi") & (pl.col("set") == "samplers - no samplers"))
    assert vendi.height == 1 and vendi["ci_low"][0] > 0
    with pytest.raises(ValueError, match="budget 20"):
        compare_runs(pl.DataFrame({"text": VARIED}), pl.DataFrame({"text": SAME}), budget=20)
    with pytest.raises(ValueError, match="needs backend"):
        compare_runs(pl.DataFrame({"text": VARIED}), pl.DataFrame({"text": SAME}), embeddings=True)
