"""Recipes: YAML/JSON round trips, and errors that name the file, line and key at fault."""

from __future__ import annotations

import pytest

from workbench.pipeline.recipe import CompletionsStep, JudgeStep, Recipe, RecipeError, load_recipe
from workbench.pipeline.scale import ScaleConfig

GOOD = """\
name: tiny
description: a small distillation recipe
model: default
seeds: {limit: 4}
steps:
  - kind: completions
    prompts_from: seeds
    config:
      k: 2
      params: {max_tokens: 24, temperature: 0.7}
  - kind: evolve
    limit: 2
    config: {operators: [deepen], generations: 1}
exports:
  - {format: sft, path: exports/sft}
"""

RUBRIC = {
    "name": "helpful",
    "task_description": "Is the answer helpful?",
    "levels": {1: "useless", 2: "weak", 3: "ok", 4: "good", 5: "excellent"},
}


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_loads_into_typed_steps(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    assert recipe.model.source == "default"
    assert recipe.seeds.limit == 4 and recipe.seeds.source == "default"
    step = recipe.steps[0]
    assert isinstance(step, CompletionsStep)
    assert step.config.k == 2 and step.config.params.max_tokens == 24
    assert recipe.steps[1].kind == "evolve" and recipe.steps[1].config.operators == ("deepen",)
    assert recipe.run_name == "tiny"
    assert recipe.step_labels() == ["1:completions", "2:evolve"]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_and_load_round_trip(tmp_path, suffix):
    recipe = load_recipe(write(tmp_path, GOOD))
    path = recipe.save(tmp_path / f"copy{suffix}")
    again = load_recipe(path)
    assert again == recipe
    assert again.work_hash() == recipe.work_hash()


def test_save_refuses_to_overwrite(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    path = recipe.save(tmp_path / "a.yaml")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        recipe.save(path)
    recipe.save(path, overwrite=True)


def test_unknown_key_names_line_and_suggests(tmp_path):
    text = GOOD.replace("      k: 2\n", "      kk: 2\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, text))
    msg = str(err.value)
    assert "unknown key 'kk'" in msg
    assert "line 9" in msg  # the line of `kk:`
    assert "did you mean 'k'" in msg
    assert "r.yaml" in msg


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(RecipeError, match=r"line 1: unknown key 'modle' at top level \(did you mean 'model'\?\)"):
        load_recipe(write(tmp_path, "modle: default\n" + GOOD))


def test_bad_value_names_path_line_and_value(tmp_path):
    text = GOOD.replace("temperature: 0.7", "temperature: 9")
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, text))
    msg = str(err.value)
    assert "steps[0].completions.config.params.temperature" in msg
    assert "line 10" in msg and "(got 9)" in msg


def test_bad_literal_and_unknown_step_kind(tmp_path):
    with pytest.raises(RecipeError, match="prompts_from"):
        load_recipe(write(tmp_path, GOOD.replace("prompts_from: seeds", "prompts_from: elsewhere")))
    with pytest.raises(RecipeError, match=r"line 6.*'distill'"):
        load_recipe(write(tmp_path, GOOD.replace("kind: completions", "kind: distill")))


def test_invalid_yaml_and_wrong_suffix(tmp_path):
    with pytest.raises(RecipeError, match="line 3: not valid YAML"):
        load_recipe(write(tmp_path, "name: x\nsteps: [\n  - : :\n"))
    with pytest.raises(RecipeError, match=r"\.yaml, \.yml or \.json"):
        load_recipe(write(tmp_path, GOOD, name="r.txt"))
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")


def test_list_prompts_need_prompts():
    with pytest.raises(ValueError, match="`prompts` is empty"):
        Recipe.model_validate({"name": "x", "steps": [{"kind": "completions", "prompts_from": "list"}]})
    with pytest.raises(ValueError, match="set prompts_from: list"):
        Recipe.model_validate({"name": "x", "steps": [{"kind": "completions", "prompts": ["hi"]}]})


def test_judge_step_checks_rubric_version():
    step = {"kind": "judge", "rubric": RUBRIC, "config": {"max_tokens": 48}}
    recipe = Recipe.model_validate({"name": "j", "steps": [step]})
    judge = recipe.steps[0]
    assert isinstance(judge, JudgeStep)
    pinned = {**step, "rubric_version": judge.rubric.version}
    Recipe.model_validate({"name": "j", "steps": [pinned]})  # the right hash passes
    with pytest.raises(ValueError, match="hashes to version"):
        Recipe.model_validate({"name": "j", "steps": [{**step, "rubric_version": "000000000000"}]})
    with pytest.raises(ValueError, match="max_tokenz"):
        Recipe.model_validate({"name": "j", "steps": [{**step, "config": {"max_tokenz": 3}}]})


def test_self_instruct_config_is_validated_at_load():
    ok = Recipe.model_validate({"name": "s", "steps": [{"kind": "self_instruct", "config": {"num_instructions": 5}}]})
    assert ok.steps[0].config["num_instructions"] == 5
    with pytest.raises(ValueError, match="num_instructionz"):
        Recipe.model_validate({"name": "s", "steps": [{"kind": "self_instruct", "config": {"num_instructionz": 5}}]})


def test_work_hash_ignores_where_and_how_it_runs():
    base = Recipe.model_validate({"name": "h", "steps": [{"kind": "completions"}]})
    scaled = base.model_copy(
        update={"scale": ScaleConfig(endpoints=["http://127.0.0.1:1"]), "runs_root": "elsewhere", "run": "r2"}
    )
    assert scaled.work_hash() == base.work_hash()
    changed = Recipe.model_validate({"name": "h", "steps": [{"kind": "completions", "config": {"k": 3}}]})
    assert changed.work_hash() != base.work_hash()


def test_string_shorthand_and_endpoint_spec():
    r = Recipe.model_validate(
        {"name": "e", "model": {"source": "http://127.0.0.1:8000", "model": "gemma"}, "seeds": "seeds.jsonl",
         "steps": [{"kind": "completions"}]}
    )  # fmt: skip
    assert r.model.is_endpoint and r.model.model == "gemma"
    assert r.seeds.source == "seeds.jsonl"
    with pytest.raises(ValueError, match="plain folder name"):
        Recipe.model_validate({"name": "e", "run": "../x", "steps": [{"kind": "completions"}]})


def test_manifest_form_reloads_with_the_same_hash(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    data = recipe.to_dict()
    assert [s["kind"] for s in data["steps"]] == ["completions", "evolve"]
    again = Recipe.model_validate(data)
    assert again == recipe and again.work_hash() == recipe.work_hash()
