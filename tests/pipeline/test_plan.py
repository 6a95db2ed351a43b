"""The dry run: every generating step previewed on --sample-rows rows and priced sub-step by sub-step,
previews chained through the steps, and a said-so bound where a step cannot be previewed."""

from __future__ import annotations

import re

import pytest

from workbench.engine import FakeBackend
from workbench.pipeline.cli import main
from workbench.pipeline.plan import plan_recipe
from workbench.pipeline.recipe import Recipe

CHAIN = {
    "name": "chain", "model": "fake", "seeds": {"limit": 10},
    "steps": [
        {"kind": "self_instruct", "config": {"num_instructions": 6, "rounds": 2, "prompts_per_round": 4}},
        {"kind": "completions", "prompts_from": "instructions", "config": {"k": 2}},
        {"kind": "judge", "rubric": {"name": "h", "levels": {1: "bad", 2: "ok", 3: "good"}}, "sample": 3},
        {"kind": "ifd", "rows_from": "completions"},
    ],
}  # fmt: skip


def test_each_step_is_previewed_on_what_the_previous_preview_made(tmp_path):
    backend = FakeBackend()
    plan = plan_recipe(Recipe.model_validate(CHAIN), backend=backend, runs_root=tmp_path, sample_rows=2)
    si, comp, judge, ifd = plan.steps
    assert si.estimate is not None and [s.stage for s in si.estimate.substeps] == ["instruction", "instance"]
    assert comp.estimate is not None and comp.estimate.substeps[0].stage == "completion"
    # the answers' full run: every planned instruction (8 generations at most) answered twice
    assert comp.inputs == 8 and comp.estimate.substeps[0].requests == pytest.approx(8 * 2)
    assert judge.estimate is not None and judge.estimate.substeps[0].requests == pytest.approx(3)  # the sample
    assert ifd.estimate is None and ifd.max_tokens == 0  # scoring only: nothing to price
    assert plan.estimated_seconds == pytest.approx(si.estimate.seconds + comp.estimate.seconds + judge.estimate.seconds)
    assert "preview: " in comp.preview and plan.unestimated == []
    assert not (tmp_path / "chain").exists()


def test_a_step_without_inputs_falls_back_on_the_bound_and_says_so(tmp_path):
    silent = FakeBackend(responder=lambda _req: "")  # the self-instruct preview keeps no instruction
    plan = plan_recipe(Recipe.model_validate(CHAIN), backend=silent, runs_root=tmp_path, sample_rows=2)
    comp = plan.steps[1]
    assert comp.estimate is None and comp.bound_seconds is not None
    assert comp.preview.startswith("not previewed (no inputs to preview it on") and "every row at max_tokens" in comp.preview
    assert plan.rates is not None and comp.token_budget is not None and comp.rows is not None
    assert comp.bound_seconds == pytest.approx(comp.token_budget / plan.rates.decode_at(comp.rows))


def test_cli_prints_substeps_and_the_total_and_names_what_it_could_not_price(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    data = dict(CHAIN, steps=[{"kind": "magpie", "config": {"num_prompts": 4}}, *CHAIN["steps"]])
    recipe.write_text(Recipe.model_validate(data).dumps())
    assert main(["run", str(recipe), "--dry-run", "--runs-root", str(tmp_path / "runs"), "--sample-rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "estimate, each step previewed on 2 rows:" in out
    for stage in ("instruction", "instance", "completion", "judgment"):
        assert re.search(rf"^    {stage}: \d+ requests × \d+ prompt \+ \d+ answer tokens ≈ ", out, re.M), stage
    assert re.search(r"^  1:magpie: \? \(its preview failed, so the run will fail here too: NoChatTemplateError", out, re.M)
    assert re.search(r"^estimated time: ≈ \S+ in total \(not counting 1:magpie: see above\)$", out, re.M)
    assert main(["run", str(recipe), "--dry-run", "--runs-root", str(tmp_path / "runs"), "--sample-rows", "0"]) == 0
    assert "estimated time: not measured (--sample-rows 0)" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_a_pairwise_judge_is_previewed_on_pairs_and_priced_per_pair_and_order(tmp_path):
    chain = {**CHAIN, "steps": [*CHAIN["steps"][:2], {**CHAIN["steps"][2], "mode": "pairwise", "sample": 6}]}
    plan = plan_recipe(Recipe.model_validate(chain), backend=FakeBackend(), runs_root=tmp_path, sample_rows=2)
    judge = plan.steps[-1]
    assert judge.rows == 6 and judge.estimate is not None, judge.preview
    (sub,) = judge.estimate.substeps
    # 6 answers, two per prompt: 3 pairs, each judged in both orders
    assert sub.stage == "judgment" and sub.requests == pytest.approx(3 * 2)
