"""The run's step log: what the app ran, in order, read back as recipe steps."""

from __future__ import annotations

import json

import pytest

from workbench.generate.completions import CompletionConfig
from workbench.pipeline.filter_step import FiltersStep
from workbench.pipeline.recipe import CompletionsStep, EvolveStep, Recipe
from workbench.pipeline.step_log import LOG_KEY, logged_steps, record_step
from workbench.runs import RunStore


def _store(tmp_path):
    return RunStore.create(tmp_path, "run")


def test_steps_come_back_in_the_order_they_ran_with_their_settings(tmp_path):
    store = _store(tmp_path)
    answers = CompletionsStep(prompts_from="instructions", config=CompletionConfig(k=3, seed=7))
    filters = FiltersStep.model_validate({"settings": {"stage": "completion", "max_words": 9, "near_dup": None}})
    evolve = EvolveStep(prompts_from="seeds", limit=2)
    for step in (answers, filters, evolve, answers):
        assert record_step(store, step)
    steps = logged_steps(store)
    assert [s.kind for s in steps] == ["completions", "filters", "evolve", "completions"]
    assert steps[0] == answers and steps[1] == filters and steps[0].config.k == 3
    # the log lives in the run directory: a fresh store object of the same folder reads the same steps
    assert logged_steps(RunStore.open(store.path)) == steps
    # and the steps make a valid recipe that round-trips through YAML
    recipe = Recipe(name="r", steps=steps)
    assert Recipe.loads(recipe.dumps()).steps == steps


def test_a_repeated_step_is_logged_once_and_a_resumed_stop_replaces_the_stopped_entry(tmp_path):
    store = _store(tmp_path)
    step = CompletionsStep(prompts_from="instructions")
    assert record_step(store, step, stopped=True)
    (stopped,) = logged_steps(store)
    assert stopped.label is not None and "stopped early" in stopped.label
    assert record_step(store, step)  # the same settings, run to the end: one finished step
    assert logged_steps(store) == [step]
    assert not record_step(store, step)  # running it again adds no rows, and no step
    assert logged_steps(store) == [step]


def test_a_run_without_a_log_has_no_steps_and_a_bad_entry_names_itself(tmp_path):
    store = _store(tmp_path)
    assert logged_steps(store) == []
    store.update_manifest(**{LOG_KEY: [{"kind": "completions", "prompts_from": "nowhere"}]})
    with pytest.raises(ValueError, match=r"app_steps\[0\], a 'completions' step.*Fix or delete that entry"):
        logged_steps(store)
    assert json.loads((store.path / "manifest.json").read_text())[LOG_KEY]  # nothing was thrown away
