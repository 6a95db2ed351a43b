"""The paired-bootstrap CI of a rubric version change (mean score, and agreement with human scores)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.judge import VersionComparison, version_difference


def _comparison(old, new, human) -> VersionComparison:
    rows = pl.DataFrame(
        {"parent_id": [f"r{i}" for i in range(len(old))], "score_old": old, "score_new": new, "human": human},
        schema={"parent_id": pl.Utf8, "score_old": pl.Int64, "score_new": pl.Int64, "human": pl.Float64},
    ).with_columns((pl.col("score_new") - pl.col("score_old")).alias("delta"))
    rows = rows.with_columns((pl.col("delta").fill_null(1) != 0).alias("changed"))
    return VersionComparison(rows, pl.DataFrame(), int(rows["changed"].sum()), rows.height)


def test_a_uniform_shift_has_a_zero_width_ci_and_agreement_moves_with_labels():
    old, human = [1, 2, 3, 4, 2, 3], [2, 3, 4, 5, 3, None]
    diff = version_difference(_comparison(old, [s + 1 for s in old], human), n_boot=300)
    by = {r["metric"]: r for r in diff.iter_rows(named=True)}
    assert list(by) == ["mean score", "accuracy", "within_one", "mean_abs_error"]
    m = by["mean score"]
    assert m["difference"] == 1.0 and m["ci_low"] == pytest.approx(1.0) and m["ci_high"] == pytest.approx(1.0)
    assert (
        by["mean score"]["n"] == 6 and by["accuracy"]["n"] == 5
    )  # the unlabelled row only counts for the mean
    assert (by["accuracy"]["old"], by["accuracy"]["new"], by["accuracy"]["difference"]) == (0.0, 1.0, 1.0)
    assert by["mean_abs_error"]["difference"] == -1.0  # closer to the person


def test_the_ci_is_of_the_paired_difference_and_covers_it():
    rng = np.random.default_rng(0)
    old = rng.integers(1, 6, 40).tolist()
    new = [min(5, s + int(rng.random() < 0.5)) for s in old]
    diff = version_difference(_comparison(old, new, [None] * 40), n_boot=500)
    row = diff.row(0, named=True)
    assert row["difference"] == pytest.approx(np.mean(np.array(new) - np.array(old)))
    assert row["ci_low"] < row["difference"] < row["ci_high"] and row["ci_low"] > 0
    assert diff.height == 1  # no labels: only the mean score


def test_no_common_rows_is_an_empty_table():
    assert version_difference(_comparison([None], [3], [None])).height == 0
