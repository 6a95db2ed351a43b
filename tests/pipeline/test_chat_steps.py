"""Recipe steps magpie and conversation: typed, run by the runner like the app's sections, resumable, planned."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.generate.conversation import ConversationConfig, extend_conversations
from workbench.generate.magpie import MagpieConfig, run_magpie
from workbench.pipeline.plan import plan_recipe
from workbench.pipeline.recipe import ConversationStep, MagpieStep, Recipe, RecipeError
from workbench.pipeline.runner import _seed_frame, run_recipe
from workbench.runs import RunStore

TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def chat_recipe(**magpie: object) -> Recipe:
    return Recipe.model_validate({
        "name": "chat", "model": {"source": "fake", "options": {"chat_template": TEMPLATE}}, "seeds": {"limit": 6},
        "steps": [
            {"kind": "magpie", "config": {"num_prompts": 6, "seed": 2, **magpie}},
            {"kind": "completions", "prompts_from": "instructions", "config": {"k": 1}},
            {"kind": "conversation", "rows_from": "completions", "config": {"turns": 2, "seed": 1}},
        ],
    })  # fmt: skip


def test_steps_are_typed_and_strict():
    recipe = chat_recipe(n_turns=2)
    assert isinstance(recipe.steps[0], MagpieStep) and recipe.steps[0].config.n_turns == 2
    assert isinstance(recipe.steps[2], ConversationStep) and recipe.steps[2].config.turns == 2
    text = recipe.dumps().replace("turns: 2\n    seed: 1", "turns: 2\n    sed: 1")
    with pytest.raises(RecipeError, match=r"line \d+: unknown key 'sed'.*did you mean 'seed'"):
        Recipe.loads(text)
    with pytest.raises(RecipeError, match="user_template"):
        Recipe.loads(recipe.dumps().replace("    turns: 2", "    turns: 2\n    user_template: '{{ nope }}'"))
    assert Recipe.loads(recipe.dumps()) == recipe


def test_runner_writes_the_rows_the_library_writes_and_resumes(tmp_path):
    recipe = chat_recipe(n_turns=2)
    report = run_recipe(recipe, runs_root=tmp_path / "runs")
    rows = report.store.rows()
    # The same library calls on their own, in another run: the very same row ids.
    backend = FakeBackend(chat_template=TEMPLATE)
    alone = RunStore.create(tmp_path / "alone", "x")
    run_magpie(backend, alone, MagpieConfig(num_prompts=6, seed=2, n_turns=2), seeds=_seed_frame(recipe))
    assert set(alone.rows()["id"]) <= set(rows["id"])
    completions = rows.filter((pl.col("stage") == "completion") & (pl.col("status") == "kept"))
    convs = rows.filter((pl.col("stage") == "conversation") & (pl.col("source") == "user_simulator"))
    assert convs.height == completions.height > 0 and set(convs["parent_id"]) == set(completions["id"])
    direct = extend_conversations(backend, completions, ConversationConfig(turns=2, seed=1))
    assert set(direct["id"]) == set(convs["id"])
    assert all(len(m) == 6 for m in convs.filter(pl.col("status") == "kept")["messages"].to_list())
    magpie_convs = rows.filter((pl.col("stage") == "conversation") & (pl.col("source") == "magpie"))
    assert magpie_convs.height > 0  # n_turns 2: each kept user turn grew into a conversation
    again = FakeBackend(chat_template=TEMPLATE)
    run_recipe(recipe, backend=again, runs_root=tmp_path / "runs", resume=True)
    assert again.calls == [] and RunStore.open(report.store.path).rows().height == rows.height


def test_a_base_model_is_refused_with_what_to_load(tmp_path):
    recipe = Recipe.model_validate(chat_recipe().model_dump() | {"model": {"source": "fake"}})
    with pytest.raises(Exception, match=r"no chat template.*chat/instruct"):
        run_recipe(recipe, runs_root=tmp_path / "runs")


def test_dry_run_counts_and_previews_chat_steps(tmp_path):
    recipe = chat_recipe(n_turns=2)
    plan = plan_recipe(recipe, runs_root=tmp_path / "runs")
    magpie, completions, conv = plan.steps
    assert (magpie.rows, completions.inputs) == (12, 6)  # 6 user turns + 6 conversations; their answers
    assert conv.inputs == 6 and conv.rows == 6 and "2 more turns per row, 4 requests each" in conv.note
    measured = plan_recipe(recipe, backend=FakeBackend(chat_template=TEMPLATE), runs_root=tmp_path / "runs",
                           sample_rows=2)  # fmt: skip
    stages = {s.label: [sub.stage for sub in s.estimate.substeps] for s in measured.steps if s.estimate}
    assert stages == {"1:magpie": ["instruction"], "2:completions": ["completion"], "3:conversation": ["conversation"]}
    conv_estimate = measured.steps[2].estimate
    assert conv_estimate is not None
    conv_sub = conv_estimate.substeps[0]
    assert conv_sub.requests == pytest.approx(6 * 4)  # every row to extend: 2 user turns and 2 answers
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("target", ["last_turn", "whole"])
def test_a_judge_step_grades_conversations_as_the_library_splits_them(tmp_path, target):
    from workbench.judge import (
        conversation_rubric,
        judgeable_conversations,
        likert_rubric,
        run_absolute_judge,
    )

    rubric = conversation_rubric(likert_rubric("helpful", "Is it helpful?", ("Answers",), {1: "no", 2: "yes"}), target)
    base = chat_recipe()
    judge = {"kind": "judge", "rows_from": "conversations", "conversation_target": target, "rubric": rubric.model_dump(),
             "sample": 3}  # fmt: skip
    recipe = Recipe.model_validate({**base.to_dict(), "steps": [*base.to_dict()["steps"], judge]})
    store = run_recipe(recipe, runs_root=tmp_path / "runs").store
    rows = store.rows()
    judged = rows.filter(pl.col("stage") == "judgment")
    convs = rows.filter((pl.col("stage") == "conversation") & (pl.col("status") == "kept"))
    assert judged.height == 3 and set(judged["parent_id"]) <= set(convs["id"])
    # the library on its own, on the same three conversations: the same judgment ids (same prompts)
    alone = RunStore.create(tmp_path / "alone", "x")
    picked = judgeable_conversations(convs.filter(pl.col("id").is_in(judged["parent_id"].to_list())), target=target)
    run_absolute_judge(FakeBackend(chat_template=TEMPLATE), alone, picked, rubric)
    assert set(alone.rows()["id"]) == set(judged["id"])
