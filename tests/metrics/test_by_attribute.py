"""Metrics split by a sampled attribute, with exact values and intervals on a small fixed frame."""

from __future__ import annotations

import json
import threading

import numpy as np
import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.metrics import BY_ATTRIBUTE_SCHEMA, attribute_names, by_attribute, embed_frame

Z95 = 1.959963984540054


def frame() -> pl.DataFrame:
    # group "cook": 3 rows, 6 words, 4 distinct; group "pilot": 2 rows; one row drew nothing
    texts = ["a a", "a b", "c d", "fly high now", "fly low", "plain row"]
    personas = ["cook", "cook", "cook", "pilot", "pilot", None]
    attrs = [
        None if p is None else json.dumps({"persona": p, "tone": "calm"}, sort_keys=True) for p in personas
    ]
    return pl.DataFrame({"id": [f"r{i}" for i in range(6)], "text": texts, "attributes": attrs})


def get(table: pl.DataFrame, group: str, metric: str) -> dict:
    return table.filter((pl.col("group") == group) & (pl.col("metric") == metric)).row(0, named=True)


def test_attribute_names_found_in_the_run():
    assert attribute_names(frame()) == ["persona", "tone"]
    assert attribute_names(pl.DataFrame({"text": ["x"]})) == []  # no samplers: nothing to split by
    assert (
        attribute_names(pl.DataFrame({"attributes": [None, "not json"]}, schema={"attributes": pl.Utf8}))
        == []
    )


def test_groups_sizes_and_exact_values():
    table = by_attribute(frame(), "persona", n_boot=50)
    assert table.schema == pl.Schema(BY_ATTRIBUTE_SCHEMA)
    assert table["group"].unique(maintain_order=True).to_list() == ["cook", "pilot", "None"]
    assert set(table["attribute"]) == {"persona"}
    assert get(table, "cook", "mean_words")["n_rows"] == 3
    assert get(table, "pilot", "mean_words")["value"] == pytest.approx(2.5)  # (3 + 2) / 2
    assert get(table, "None", "mean_words")["value"] == pytest.approx(2.0)

    # distinct-1 of "cook": tokens a a a b c d -> 4 unique / 6. Delete-one jackknife:
    # without "a a": a b c d = 1; without "a b": a a c d = 3/4; without "c d": a a a b = 2/4.
    # se^2 = (3 - 1) / 3 * ((1 - .75)^2 + 0 + (.5 - .75)^2) = 1/12
    d1 = get(table, "cook", "distinct_1")
    se = np.sqrt(1 / 12)
    assert d1["value"] == pytest.approx(4 / 6)
    assert d1["ci_low"] == pytest.approx(4 / 6 - Z95 * se)
    assert d1["ci_high"] == pytest.approx(4 / 6 + Z95 * se)
    # distinct-2 of "pilot": bigrams (fly high) (high now) (fly low), all unique; each deletion too
    d2 = get(table, "pilot", "distinct_2")
    assert (d2["value"], d2["ci_low"], d2["ci_high"]) == pytest.approx((1.0, 1.0, 1.0))
    # one row: a value, no interval
    lone = get(table, "None", "distinct_1")
    assert lone["value"] == 1.0 and lone["ci_low"] is None and lone["ci_high"] is None
    # per-row metrics keep their bootstrap interval, which holds the value
    sb = get(table, "cook", "self_bleu")
    assert sb["ci_low"] <= sb["value"] <= sb["ci_high"] and sb["sample_size"] == 3


def test_metric_choice_and_bad_input():
    table = by_attribute(frame(), "attributes.tone", metrics=["distinct_2", "compression_ratio"], n_boot=20)
    assert sorted(table["metric"].unique()) == ["compression_ratio", "distinct_2"]
    assert table["group"].unique(maintain_order=True).to_list() == ["calm", "None"]
    assert get(table, "calm", "distinct_2")["n_rows"] == 5
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['vendi'\]; available: .*distinct_1"):
        by_attribute(frame(), "persona", metrics=["vendi"], n_boot=10)
    with pytest.raises(ValueError, match=r"no row records an attribute 'mood'.*\['persona', 'tone'\]"):
        by_attribute(frame(), "mood")
    with pytest.raises(ValueError, match="generate some first"):
        by_attribute(frame().head(0), "persona")


def test_embedding_metrics_per_group_with_intervals():
    texts = ["red", "blue", "green"] * 2 + ["tea", "tea", "tea coffee"]
    attrs = [json.dumps({"persona": "painter"})] * 6 + [json.dumps({"persona": "waiter"})] * 3
    rows = pl.DataFrame({"id": [str(i) for i in range(9)], "text": texts, "attributes": attrs})
    fake = FakeBackend()
    colours = fake.embed(["red", "blue", "green"])
    assert np.allclose(colours @ colours.T, np.eye(3))  # the fake's one-word vectors do not collide
    table = by_attribute(rows, "persona", backend=fake, embeddings=True, n_boot=20)
    vendi = get(table, "painter", "vendi")
    # six rows, three orthogonal directions twice each: K = X X^T / 6 has eigenvalues 1/3, 1/3, 1/3,
    # so VS = exp(-3 * 1/3 * log(1/3)) = 3 exactly; deleting any one row lowers it, so se > 0
    assert vendi["value"] == pytest.approx(3.0)
    assert vendi["ci_low"] < 3.0 < vendi["ci_high"]
    # mean pairwise distance: of the 15 pairs, 3 are identical (distance 0), 12 orthogonal (1)
    dist = get(table, "painter", "mean_cosine_distance")
    assert dist["value"] == pytest.approx(12 / 15) and dist["sample_size"] == 6
    assert get(table, "waiter", "vendi")["value"] < 2.0  # two near-identical texts and a third


def test_embed_frame_reports_batches_and_stops_on_cancel():
    rows = pl.DataFrame({"text": [f"text number {i}" for i in range(10)]})
    seen: list[tuple[int, int]] = []
    cancel = threading.Event()

    def on_batch(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 4:
            cancel.set()

    out = embed_frame(rows, FakeBackend(), batch_size=4, on_batch=on_batch, cancel=cancel)
    assert seen == [(4, 10)]
    assert out.height == 4 and out["text"].to_list() == rows["text"].head(4).to_list()
    full = embed_frame(rows, FakeBackend(), batch_size=4, on_batch=lambda d, t: seen.append((d, t)))
    assert full.height == 10 and seen[-2:] == [(8, 10), (10, 10)]
