"""A recipe's seeds from a dataset with its own column names (a save_to_disk folder here; hf:// names go
through the same `load_seeds`, tested against a Hub stand-in in tests/generate/test_hub_seeds.py)."""

from __future__ import annotations

import datasets
import polars as pl
import pytest

from workbench.pipeline.recipe import Recipe, RecipeError
from workbench.pipeline.runner import run_recipe


def test_a_recipe_maps_a_datasets_columns_onto_the_seed_fields(tmp_path) -> None:
    rows = {"question": ["What is 2+2?", "Spell 'cat'.", "Name a planet."], "answer": ["4", "c-a-t", "Mars"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "qa"))
    recipe = Recipe.loads(
        f"name: mapped\nmodel: fake\n"
        f"seeds: {{source: '{tmp_path / 'qa'}', limit: 2, columns: {{instruction: question, output: answer}}}}\n"
        "steps: [{kind: completions, prompts_from: seeds}]\n"
    )
    store = run_recipe(recipe, runs_root=tmp_path / "runs", export=False).store
    answers = store.rows().filter(pl.col("stage") == "completion")
    assert answers["parent_id"].n_unique() == 2  # two seeds answered (k answers each)
    assert Recipe.loads(recipe.dumps()).seeds.columns == {"instruction": "question", "output": "answer"}


def test_an_unknown_seed_field_in_columns_is_refused_at_load(tmp_path) -> None:
    with pytest.raises(RecipeError, match="columns"):
        Recipe.loads("name: bad\nmodel: fake\nseeds: {source: x.jsonl, columns: {prompt: q}}\nsteps: []\n")
