"""The recipe's `filters` step (the Filters tab's Apply): the same decisions and filter rows as calling the
filter functions directly, read by later steps, idempotent on resume, clear about a missing reference."""

from __future__ import annotations

import polars as pl
import pytest

from tests.pipeline.test_near_dup_decontam_steps import ANSWERS, responder, write_benchmark
from workbench.engine import FakeBackend
from workbench.filters.apply import FILTER_STAGE, FilterSettings, apply_filters, record_filter_drops
from workbench.filters.decontam import load_benchmark
from workbench.generate.completions import CompletionConfig
from workbench.judge import likert_rubric
from workbench.pipeline.filter_step import FiltersStep, filter_frame, run_filters_step
from workbench.pipeline.plan import plan_recipe
from workbench.pipeline.recipe import CompletionsStep, JudgeStep, Recipe
from workbench.pipeline.runner import run_recipe, step_inputs

PROMPTS = [f"question {k}" for k in ANSWERS]
ONE = CompletionConfig(k=1)
BLOCKED = "blacklist:sailing"
RUBRIC = likert_rubric("helpful", "Is it helpful?", ("Answers the question",), {1: "No", 2: "Yes"})


def _recipe(tmp_path, filters: FiltersStep, *after: object) -> Recipe:
    return Recipe(name="filtered", model="fake", runs_root=str(tmp_path / "runs"),
                  steps=[CompletionsStep(prompts_from="list", prompts=PROMPTS, config=ONE), filters, *after])  # type: ignore[list-item]  # fmt: skip


def test_the_step_records_the_same_filter_rows_as_the_filters_tab_functions(tmp_path):
    bench = write_benchmark(tmp_path)
    settings = FilterSettings(stage="completion", min_words=4, max_words=150, blocklist=("sailing",), near_dup=0.7)
    step = FiltersStep.model_validate({"settings": settings.model_dump(),
                                       "benchmark": {"source": str(bench), "text_columns": ["question"]}})  # fmt: skip
    store = run_recipe(_recipe(tmp_path, step), backend=FakeBackend(responder=responder)).store
    rows = store.rows()
    drops = rows.filter(pl.col("stage") == FILTER_STAGE)
    text_of = dict(zip(rows["id"], rows["text"], strict=True))
    reasons = {text_of[p]: r for p, r in zip(drops["parent_id"], drops["reason"], strict=True)}
    assert reasons == {ANSWERS["beta"]: "near_duplicate", ANSWERS["gamma"]: "contamination:gsm8k_test",
                       ANSWERS["epsilon"]: BLOCKED}  # fmt: skip
    # Typed columns say what matched: the row a near duplicate repeats, the benchmark item and span.
    by_text = {text_of[r["parent_id"]]: r for r in drops.iter_rows(named=True)}
    id_of = {t: i for i, t in text_of.items()}
    beta, gamma, eps = by_text[ANSWERS["beta"]], by_text[ANSWERS["gamma"]], by_text[ANSWERS["epsilon"]]
    assert (beta["filter_name"], beta["matched_id"]) == ("near_dup", id_of[ANSWERS["alpha"]])
    assert 0.7 <= beta["matched_score"] < 1.0
    assert gamma["filter_name"] == "decontam" and gamma["matched_id"] == "0" and "sixteen eggs" in gamma["matched_span"]
    assert eps["filter_name"] == "keywords" and eps["matched_id"] is None and eps["matched_score"] is None
    # What the Filters tab does by hand, on a run with the same answers: the very same filter rows.
    by_hand = run_recipe(
        Recipe(name="by-hand", model="fake", runs_root=str(tmp_path / "runs"),
               steps=[CompletionsStep(prompts_from="list", prompts=PROMPTS, config=ONE)]),
        backend=FakeBackend(responder=responder),
    ).store  # fmt: skip
    result = apply_filters(filter_frame(by_hand.rows(), "completion"), settings,
                           benchmark=load_benchmark(bench, text_column="question"))  # fmt: skip
    assert record_filter_drops(by_hand, result) == drops.height == 3
    assert set(by_hand.rows().filter(pl.col("stage") == FILTER_STAGE)["id"]) == set(drops["id"])
    # A later step reads the run after the drops: only alpha and delta are still kept answers.
    later = step_inputs(JudgeStep(rubric=RUBRIC), _recipe(tmp_path, step), store)
    assert sorted(later["text"]) == sorted([ANSWERS["alpha"], ANSWERS["delta"]])


def test_resuming_applies_nothing_twice(tmp_path):
    step = FiltersStep.model_validate({"settings": {"stage": "completion", "min_words": 12, "near_dup": None}})
    recipe = _recipe(tmp_path, step)
    first = run_recipe(recipe, backend=FakeBackend(responder=responder)).store.rows().height
    again = run_recipe(recipe, backend=FakeBackend(responder=responder), resume=True)
    assert again.store.rows().height == first
    assert [s.new_rows for s in again.steps] == [0, 0]


def test_rouge_l_without_references_is_a_clear_error(tmp_path):
    step = FiltersStep.model_validate({"settings": {"stage": "completion", "rouge_l_max": 0.5}})
    store = run_recipe(_recipe(tmp_path, FiltersStep()), backend=FakeBackend(responder=responder)).store
    with pytest.raises(ValueError, match="write rouge_l_to: seeds"):
        run_filters_step(step, store, pl.DataFrame())


def test_the_dry_run_lists_it_without_a_model_call(tmp_path):
    plan = plan_recipe(_recipe(tmp_path, FiltersStep(settings=FilterSettings(stage="completion"))))
    assert [s.kind for s in plan.steps] == ["completions", "filters"]
    assert plan.steps[1].rows == 0 and "no model call" in plan.steps[1].note
    assert plan.steps[1].inputs == len(PROMPTS)  # the answers the first step will make
