"""The Generate tab's sampler editor headless: live preview of the rendered prompts, errors at the field,
runs that record the drawn values, and a recipe that carries the samplers and replays the same rows."""

from __future__ import annotations

import html
import json
from pathlib import Path

import polars as pl
import pytest

from widgets.sampler_editor import parse_sampler_yaml, preview_prompts
from widgets.selfinstruct import SelfInstructPanel
from workbench.engine import FakeBackend
from workbench.pipeline.recipe import ModelSpec, Recipe
from workbench.pipeline.runner import run_recipe
from workbench.session import Session


@pytest.fixture
def panel(tmp_path: Path) -> SelfInstructPanel:
    p = SelfInstructPanel(Session(FakeBackend(), runs_root=tmp_path / "runs", run="app"))
    p.num_instructions.value, p.rounds.value, p.prompts_per_round.value = 4, 1, 4
    return p


def test_samplers_are_off_until_turned_on(panel: SelfInstructPanel) -> None:
    assert panel.config().samplers is None and panel.config().template is None
    assert "off" in panel.sampler_editor.preview.value and panel.sampler_editor.spec_text.disabled


def test_the_preview_renders_the_prompts_with_the_values_a_run_draws(panel: SelfInstructPanel) -> None:
    editor = panel.sampler_editor
    editor.enabled.value = True
    config = panel.config()
    assert config.samplers is not None and config.samplers.names == ("topic", "persona")
    shown = html.unescape(editor.preview.value)
    for i in range(3):
        values = config.samplers.values(config.seed, f"0:{i}")
        assert f"topic = {values['topic']}" in shown
        assert f"tasks that {values['persona']} might ask about {values['topic']}" in shown
    panel.seed.value = 7  # another seed, other draws, shown at once
    assert html.unescape(editor.preview.value) != shown
    assert editor.error.value == ""


def test_an_unknown_name_is_shown_at_the_field_and_stops_a_run(panel: SelfInstructPanel) -> None:
    editor = panel.sampler_editor
    editor.enabled.value = True
    editor.template_text.value = "Tasks in a {{ mood }} tone:\n{% for ex in examples %}{{ ex.instruction }}\n{% endfor %}"
    assert "mood" in html.unescape(editor.error.value) and editor.preview.value == ""
    with pytest.raises(ValueError, match="mood"):
        panel.config()
    assert panel.run() is None and "mood" in html.unescape(panel.error.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("topic: [unclosed", "not valid YAML on line"),
        ("topic: {kind: colour, values: [a]}", "kind must be one of"),
        ("topic: {kind: category, values: []}", "topic"),
        ("- just a list", "must map names to samplers"),
        ("sub: {kind: subcategory, parent: nope, values: {a: [x]}}", "not a category sampler"),
    ],
)
def test_bad_specs_are_one_plain_sentence(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_sampler_yaml(text)


def test_a_run_records_the_drawn_values_and_the_recipe_replays_the_same_rows(
    panel: SelfInstructPanel, tmp_path: Path
) -> None:
    panel.sampler_editor.enabled.value = True
    job = panel.run()
    assert job is not None and job.wait(60).state == "done", job.error_text
    rows = panel.session.store.rows().filter(pl.col("stage") == "instruction")
    assert rows.height > 0 and rows["attributes"].str.contains('"persona"').all()

    config = panel.config().model_dump(mode="json")
    assert config["samplers"]["samplers"]["topic"]["kind"] == "category"
    recipe = Recipe(name="replay", model=ModelSpec(source="fake"),
                    steps=[{"kind": "self_instruct", "config": config}])  # fmt: skip
    saved = Recipe.loads(json.dumps(recipe.to_dict()))  # a saved recipe reads back with its samplers
    assert saved.steps[0].config["samplers"] == recipe.steps[0].config["samplers"]
    replayed = run_recipe(saved, runs_root=tmp_path / "replay", export=False).store.rows()
    again = replayed.filter(pl.col("stage") == "instruction")
    assert set(again["id"]) == set(rows["id"])
    assert again.sort("id")["attributes"].to_list() == rows.sort("id")["attributes"].to_list()


def test_preview_prompts_is_a_pure_function_of_the_config(panel: SelfInstructPanel) -> None:
    panel.sampler_editor.enabled.value = True
    config, seeds = panel.config(), panel.seeds_panel.seeds
    assert preview_prompts(config, seeds) == preview_prompts(config, seeds)
    assert len(preview_prompts(config, seeds, n=5)) == 5
