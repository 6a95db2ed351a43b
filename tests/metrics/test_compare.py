from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.metrics import bootstrap_mean_ci, compare_sets, split_sets


def test_bootstrap_ci_covers_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small, big = rng.normal(5, 1, 30), rng.normal(5, 1, 3000)
    lo_s, hi_s = bootstrap_mean_ci(small, n_boot=500)
    lo_b, hi_b = bootstrap_mean_ci(big, n_boot=500)
    assert lo_s < small.mean() < hi_s and lo_b < big.mean() < hi_b
    assert (hi_b - lo_b) < (hi_s - lo_s) / 5
    assert bootstrap_mean_ci(np.array([1.0])) == (None, None)
    assert bootstrap_mean_ci(small, seed=3) == bootstrap_mean_ci(small, seed=3)


def test_compare_sets_ranks_repetitive_below_varied(seed_frame):
    varied = seed_frame.head(60)
    repetitive = pl.DataFrame(
        {
            "id": [str(i) for i in range(60)],
            "text": [f"write a short poem about the sea number {i % 3}" for i in range(60)],
        }
    )
    out = compare_sets(
        {"seeds": varied, "loop": repetitive}, backend=FakeBackend(), embeddings=True, n_boot=200
    )
    assert set(out["metric"]) == {
        "mean_words",
        "mean_tokens",
        "distinct_1",
        "distinct_2",
        "distinct_3",
        "self_bleu",
        "nn_rouge_l",
        "mean_cosine_distance",
        "vendi",
    }

    def val(s, m):
        return out.filter((pl.col("set") == s) & (pl.col("metric") == m))["value"][0]

    assert val("loop", "self_bleu") > val("seeds", "self_bleu")
    assert val("loop", "nn_rouge_l") == pytest.approx(1.0)
    assert val("loop", "distinct_2") < val("seeds", "distinct_2")
    assert val("loop", "vendi") < val("seeds", "vendi")
    sampled = out.filter(pl.col("metric").is_in(["self_bleu", "nn_rouge_l", "mean_cosine_distance"]))
    assert (sampled["ci_low"] <= sampled["value"] + 1e-12).all() and (
        sampled["value"] <= sampled["ci_high"] + 1e-12
    ).all()
    assert out.filter(pl.col("metric") == "distinct_1")["ci_low"].null_count() == 2


def test_compare_sets_split_by_column_and_equal_size(seed_frame):
    df = seed_frame.with_columns(round=pl.int_range(pl.len()) % 3)
    parts = split_sets(df, "round")
    assert list(parts) == ["0", "1", "2"] and sum(p.height for p in parts.values()) == 175
    lopsided = {"big": seed_frame, "small": seed_frame.head(20)}
    out = compare_sets(lopsided, equal_size=True, rouge=False, n_boot=50)
    assert out["n_rows"].unique().to_list() == [20]
    with pytest.raises(ValueError, match="empty"):
        compare_sets({"a": seed_frame, "b": seed_frame.head(0)})
    with pytest.raises(ValueError, match="by="):
        compare_sets(seed_frame)
