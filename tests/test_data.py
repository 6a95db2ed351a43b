"""Shipped data: present with its license, loadable without anything outside the repository."""

from __future__ import annotations

import hashlib

import pytest

from workbench.data import data_path
from workbench.generate.seeds import self_instruct_seeds
from workbench.pipeline.recipe import Recipe
from workbench.pipeline.runner import step_inputs


def test_self_instruct_seed_tasks_ship_with_their_license():
    path = data_path("self_instruct", "seed_tasks.jsonl")
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith("7779004fa198")
    assert "Apache License" in data_path("self_instruct", "LICENSE").read_text()
    seeds = self_instruct_seeds()
    assert seeds.height == 175 and seeds["id"][0] == "seed_task_0"
    assert seeds["is_classification"].sum() > 0 and seeds["instances"].list.len().min() >= 1


def test_same_as_the_shared_copy_when_present(shared_data):
    assert data_path("self_instruct", "seed_tasks.jsonl").read_bytes() == (shared_data / "seed_tasks.jsonl").read_bytes()


def test_a_recipe_can_start_from_them_and_a_missing_file_says_what_there_is():
    recipe = Recipe(name="r", seeds={"source": "self_instruct", "limit": 5}, steps=[{"kind": "completions"}])
    assert step_inputs(recipe.steps[0], recipe, None).height == 5
    with pytest.raises(FileNotFoundError, match=r"seed_tasks\.jsonl"):
        data_path("self_instruct", "nope.jsonl")
