"""The export panel driven headless: pick a format and target, Export, never overwrite unasked, save recipes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.widgets.test_judge_panel import length_judge
from widgets.export_panel import ExportPanel
from widgets.judge import DEFAULT_RUBRIC
from workbench.engine import FakeBackend
from workbench.export import load_export
from workbench.generate.seeds import default_seeds
from workbench.judge import run_absolute_judge
from workbench.pipeline.recipe import CompletionsStep, Recipe, load_recipe
from workbench.pipeline.runner import run_recipe
from workbench.runs import row_id
from workbench.session import Session


def _completions() -> list[dict]:
    rows = []
    for i in range(4):
        for j, text in enumerate(
            (f"A short answer {i}.", f"A much longer and more complete answer number {i}.")
        ):
            rows.append({"id": row_id("completion", f"p{i}", text), "stage": "completion", "parent_id": f"p{i}",
                         "instruction": f"Task {i}", "input": "", "text": text, "status": "kept", "seed": j})  # fmt: skip
    rows.append({"id": "dropped", "stage": "completion", "parent_id": "p0", "instruction": "Task 0",
                 "input": "", "text": "x", "status": "dropped"})  # fmt: skip
    return rows


@pytest.fixture
def session(tmp_path):
    s = Session(FakeBackend(responder=length_judge), runs_root=tmp_path / "runs", run="exp")
    s.store.append(_completions())
    kept = s.store.rows().filter(pl.col("status") == "kept")
    run_absolute_judge(s.backend, s.store, kept, DEFAULT_RUBRIC)  # the real judge, scores by answer length
    s.errors = []
    s.subscribe(lambda what: s.errors.append(s.last_error) if what == "error" else None)
    return s


def _export(panel: ExportPanel) -> str | None:
    """Click Export and wait; the job's state (None when the panel refused to start one)."""
    before = panel.job
    panel.export_button.click()
    if panel.job is None or panel.job is before:
        return None
    panel.job.wait(60)
    return panel.job.state


@pytest.mark.parametrize("target", ["parquet", "jsonl", "disk"])
def test_sft_export_to_each_target_loads_back(session, target):
    panel = ExportPanel(session)
    assert {"wb-export"} <= set(panel._dom_classes) and "wb-export-run" in panel.export_button._dom_classes
    panel.target.value = target
    assert panel.path.value == str(session.runs_root / "exports" / f"exp-sft-{target}")  # follows the choice
    _export(panel)
    assert panel.job.state == "done", panel.job.error_text
    ds = load_export(panel.path.value)
    assert len(ds) == 8 and ds[0]["messages"][0] == {"role": "user", "content": "Task 0"}
    assert "Wrote 8 sft rows" in panel.result.value and session.errors == []


def test_dpo_export_pairs_the_best_and_worst_judged_answers(session):
    panel = ExportPanel(session)
    panel.format.value = "dpo"
    assert _export(panel) == "done", panel.job.error_text
    ds = load_export(panel.path.value)
    assert len(ds) == 4 and all("much longer" in r["chosen"] for r in ds)  # chosen = higher judge score


def test_prompt_completion_with_a_score_filter(session):
    panel = ExportPanel(session)
    panel.format.value, panel.min_score.value = "prompt_completion", 3.0
    assert _export(panel) == "done", panel.job.error_text
    ds = load_export(panel.path.value)
    assert len(ds) == 4 and all("much longer" in r["completion"] for r in ds)
    assert set(ds.column_names) >= {"prompt", "completion", "score", "rubric_version"}


def test_never_overwrites_without_the_checkbox(session):
    panel = ExportPanel(session)
    _export(panel)
    first = sorted(p.stat().st_mtime_ns for p in (session.runs_root / "exports").rglob("*") if p.is_file())
    panel.min_score.value = 3.0
    _export(panel)
    assert panel.job.state == "done"  # the first job: the second never started
    assert "already exists" in panel.error.value and "overwrite" in session.errors[-1]
    assert (
        sorted(p.stat().st_mtime_ns for p in (session.runs_root / "exports").rglob("*") if p.is_file())
        == first
    )
    panel.overwrite.value = True
    _export(panel)
    assert panel.job.state == "done" and len(load_export(panel.path.value)) == 4
    # A folder that is not an export is never replaced, even with the box ticked.
    foreign = session.runs_root / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    panel.path.value = str(foreign)
    _export(panel)
    assert panel.job.state == "failed" and "not a workbench export" in session.errors[-1]
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_bad_requests_say_what_to_fix(session):
    empty = Session(FakeBackend(), runs_root=session.runs_root, run="empty")
    panel = ExportPanel(empty)
    panel.format.value = "dpo"
    _export(panel)
    assert panel.job.state == "failed" and "needs parsed judgments" in panel.error.value
    panel.path.value = "  "
    panel.export_button.click()
    assert "give a path" in empty.last_error


def test_save_recipe_from_app_state_with_edited_seeds(session, tmp_path):
    seeds = default_seeds().head(3)
    step = CompletionsStep(prompts_from="seeds")
    panel = ExportPanel(session, steps=lambda: [step], seeds=lambda: seeds, model=lambda: "fake")
    panel.recipe_path.value = str(tmp_path / "my.recipe.yaml")
    saved = panel.save_recipe()
    recipe = load_recipe(saved)
    assert recipe.model.source == "fake" and [s.kind for s in recipe.steps] == ["completions"]
    assert recipe.seeds.source == str(tmp_path / "my.seeds.jsonl")  # the edited pool, saved beside it
    assert recipe.exports[0].format == "sft" and recipe.exports[0].overwrite is False
    assert "wb-recipe-done" in panel.result.value
    report = run_recipe(recipe, backend=FakeBackend(), runs_root=tmp_path / "replay", export=False)
    assert report.store.rows().filter(pl.col("stage") == "completion").height == 3 * step.config.k
    # Saving again refuses to replace the file unless asked.
    recipe_text = saved.read_text()
    assert panel.save_recipe() is None and "already exists" in session.errors[-1]
    panel.overwrite.value = True
    assert panel.save_recipe() == saved and saved.read_text() == recipe_text


def test_save_recipe_without_steps(session, tmp_path):
    panel = ExportPanel(session, steps=lambda: [])
    assert panel.save_recipe() is None and "nothing to save yet" in session.errors[-1]
    panel = ExportPanel(session)  # standalone, on a run no recipe made
    assert panel.save_recipe() is None and "not made by a recipe" in session.errors[-1]
    # A run a recipe made: Save recipe reuses the recipe recorded in its manifest.
    made = Recipe(name="made", model="fake", seeds={"source": "default", "limit": 2},
                  steps=[CompletionsStep()], runs_root=str(tmp_path / "runs"))  # fmt: skip
    run_recipe(made, backend=FakeBackend(), export=False)
    other = Session(FakeBackend(), runs_root=tmp_path / "runs", run="made")
    panel = ExportPanel(other)
    panel.recipe_path.value = str(tmp_path / "again.yaml")
    again = load_recipe(panel.save_recipe())
    assert again.work_hash() == made.work_hash() and again.seeds.limit == 2


def test_the_version_picker_lists_each_rubric_version_and_exports_the_chosen_one(session):
    kept = session.store.rows().filter((pl.col("stage") == "completion") & (pl.col("status") == "kept"))
    v1 = DEFAULT_RUBRIC
    v2 = v1.edit(task_description="A stricter reading of the same task.")
    run_absolute_judge(session.backend, session.store, kept.head(4), v2)  # the edited rubric judges half
    panel = ExportPanel(session)
    labels = [label for label, _ in panel.rubric_version.options]
    assert panel.rubric_version.value == "" and labels[0].startswith("latest")
    assert any(v1.version[:8] in lab and "first version" in lab and "8 judgments" in lab for lab in labels)
    assert any(v2.version[:8] in lab and f"edited from {v1.version[:8]}" in lab and "4 judgments" in lab
               and lab.endswith("latest") for lab in labels)  # fmt: skip
    panel.format.value = "dpo"
    assert _export(panel) == "done", panel.job.error_text
    assert set(load_export(panel.path.value)["rubric_version"]) == {v2.version}  # the latest by default
    card = (Path(panel.path.value) / "README.md").read_text()
    assert f"version `{v2.version}` (the latest of 2" in card
    panel.rubric_version.value = v1.version
    panel.overwrite.value = True
    assert _export(panel) == "done", panel.job.error_text
    ds = load_export(panel.path.value)
    assert set(ds["rubric_version"]) == {v1.version} and len(ds) == 4
    panel.format.value, panel.best_of.value = "sft", 1
    assert _export(panel) == "done", panel.job.error_text
    assert len(load_export(panel.path.value)) == 4  # the best answer of each of the 4 prompts
