import json

import polars as pl
import pytest
from judge_fakes import LogprobFake, length_judge

from workbench.engine import FakeBackend
from workbench.judge import (
    judgeable_rows,
    load_rubrics,
    run_absolute_judge,
    sample_rows,
    score_histogram,
    version_labels,
)


def test_rubric_versions_are_recorded_in_the_run(store, rows, rubric):
    run_absolute_judge(FakeBackend(responder=length_judge), store, rows, rubric)
    v2 = rubric.edit(task_description="Stricter.")
    run_absolute_judge(FakeBackend(responder=length_judge), store, rows, v2)
    saved = load_rubrics(store)
    assert set(saved) == {rubric.version, v2.version}
    assert saved[v2.version] == v2 and saved[v2.version].parent_version == rubric.version
    assert (
        json.loads((store.path / "manifest.json").read_text())["rubrics"][rubric.version]["name"] == "helpful"
    )


def test_score_histogram_lines_up_versions(store, rows, rubric):
    a = run_absolute_judge(LogprobFake(responder=length_judge), store, rows, rubric)  # 1, 4, 1, 1
    b = run_absolute_judge(
        FakeBackend(responder=lambda r: "x\nScore: 5"), store, rows, rubric.edit(name="easy")
    )
    hist = score_histogram(pl.concat([a, b]), rubric.scale)
    assert hist.height == 10
    first = hist.filter(pl.col("rubric_version") == rubric.version)
    assert first["count"].to_list() == [3, 0, 0, 1, 0]
    assert first["share"].sum() == pytest.approx(1.0)
    assert first["mean_probability"].sum() == pytest.approx(1.0)  # mean of distributions summing to 1
    second = hist.filter(pl.col("rubric_version") != rubric.version)
    assert second["count"].to_list() == [0, 0, 0, 0, 4] and second["mean_probability"].sum() == 0.0
    names = version_labels(pl.concat([a, b]))
    assert names[rubric.version].startswith("helpful v1")


def test_judgeable_rows_and_sample():
    rows = pl.DataFrame(
        {
            "id": list("abcde"),
            "stage": ["completion"] * 4 + ["instruction"],
            "status": ["kept", "kept", "dropped", "kept", "kept"],
            "text": ["x", "y", "z", " ", "w"],
        }
    )
    ok = judgeable_rows(rows)
    assert ok["id"].to_list() == ["a", "b"]
    assert sample_rows(ok, 5)["id"].to_list() == ["a", "b"]
    big = pl.DataFrame({"id": [str(i) for i in range(50)]})
    s1, s2 = sample_rows(big, 8, seed=3), sample_rows(big, 8, seed=3)
    assert s1.height == 8 and s1.equals(s2)
    assert s1["id"].to_list() == sorted(s1["id"].to_list(), key=int)
    with pytest.raises(ValueError, match="at least 1"):
        sample_rows(big, 0)
