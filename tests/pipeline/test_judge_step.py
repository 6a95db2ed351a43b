"""A judge step judges every row, exactly the rows the app judged (`row_ids`), or a sample; it says which."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.pipeline.cli import main
from workbench.pipeline.judge_step import JudgeStep, select_rows
from workbench.pipeline.recipe import Recipe
from workbench.runs import RunStore

RUBRIC = {"name": "h", "levels": {1: "bad", 2: "ok", 3: "good"}}


def rows(n: int) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"r{i:02d}" for i in range(n)], "text": [f"answer {i}" for i in range(n)]})


def test_row_ids_select_exactly_those_and_say_how_many_of_how_many():
    step = JudgeStep(rubric=RUBRIC, row_ids=["r03", "r07", "gone"])
    picked, note = select_rows(step, rows(10))
    assert picked["id"].to_list() == ["r03", "r07"]
    assert note == "judging 2 of 10 rows as in the app (delete row_ids to judge all); 1 of the ids are not in this run"
    with pytest.raises(ValueError, match=r"none of its 1 row_ids.*delete row_ids"):
        select_rows(JudgeStep(rubric=RUBRIC, row_ids=["elsewhere"]), rows(4))
    everything, note = select_rows(JudgeStep(rubric=RUBRIC), rows(4))
    assert everything.height == 4 and note == "judging all 4 rows"
    with pytest.raises(ValueError, match="not both"):
        JudgeStep(rubric=RUBRIC, row_ids=["r01"], sample=3)


def test_sample_does_not_depend_on_the_order_rows_were_written():
    step = JudgeStep(rubric=RUBRIC, sample=4, sample_seed=7)
    a, note = select_rows(step, rows(30))
    b, _ = select_rows(step, rows(30).sample(fraction=1.0, shuffle=True, seed=1))
    assert a.height == 4 and set(a["id"]) == set(b["id"])
    assert note == "judging a sample of 4 of 30 rows (set sample: null to judge all)"
    assert set(select_rows(step.model_copy(update={"sample_seed": 8}), rows(30))[0]["id"]) != set(a["id"])


def test_saved_yaml_says_the_app_judged_only_those_rows():
    recipe = Recipe(name="r", steps=[{"kind": "completions"}, JudgeStep(rubric=RUBRIC, row_ids=["a1", "b2"])])
    text = recipe.dumps()
    assert "  # the app judged only these 2 rows: delete row_ids to judge every row\n  row_ids:\n  - a1\n" in text
    assert Recipe.loads(text) == recipe  # the comment is only a comment
    assert "#" not in recipe.dumps("json") and json.loads(recipe.dumps("json"))["steps"][1]["row_ids"] == ["a1", "b2"]
    deleted = Recipe.loads(text.replace("  row_ids:\n  - a1\n  - b2\n", ""))
    assert isinstance(deleted.steps[1], JudgeStep) and deleted.steps[1].row_ids is None  # judges every row


def test_cli_judges_the_recorded_rows_and_says_so(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    base = "name: j\nmodel: fake\nseeds: {limit: 4}\nsteps:\n  - kind: completions\n    config: {k: 2}\n"
    recipe.write_text(base)
    assert main(["run", str(recipe), "--runs-root", str(tmp_path / "a"), "--no-export"]) == 0
    done = RunStore.open(tmp_path / "a" / "j").rows()
    kept = done.filter(pl.col("status") == "kept")["id"].to_list()
    judge = f"  - kind: judge\n    rubric: {json.dumps(RUBRIC)}\n    row_ids: {json.dumps(kept[1:4])}\n"
    recipe.write_text(base + judge)
    capsys.readouterr()
    assert main(["run", str(recipe), "--runs-root", str(tmp_path / "b"), "--no-export"]) == 0
    err = capsys.readouterr().err
    assert f"judging 3 of {len(kept)} rows as in the app (delete row_ids to judge all)" in err
    judged = RunStore.open(tmp_path / "b" / "j").rows().filter(pl.col("stage") == "judgment")
    assert sorted(judged["parent_id"]) == sorted(kept[1:4])
    assert main(["run", str(recipe), "--runs-root", str(tmp_path / "c"), "--dry-run"]) == 0
    assert "judging the 3 rows the app judged" in capsys.readouterr().out
