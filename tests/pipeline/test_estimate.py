"""The time estimator: rates, the pricing of sub-steps, and scaling a preview's requests to a full run."""

from __future__ import annotations

import tempfile

import polars as pl
import pytest

from tests.generate.selfinstruct.test_pipeline import scripted
from workbench.engine import FakeBackend
from workbench.generate.completions import CompletionConfig
from workbench.generate.seeds import default_seeds
from workbench.generate.selfinstruct import SelfInstructConfig
from workbench.pipeline.estimate import (
    Estimate,
    Rates,
    RecordingBackend,
    SubStep,
    measure_rates,
    substeps_from_preview,
)
from workbench.pipeline.preview import preview_completions, preview_self_instruct
from workbench.runs import RunStore

RATES = Rates(prefill_tok_s=100.0, decode_tok_s_single=10.0, decode_tok_s_batched=40.0, width=4)


def test_decode_rate_runs_from_one_sequence_to_the_batch_width() -> None:
    assert RATES.decode_at(1) == 10.0
    assert RATES.decode_at(4) == 40.0 and RATES.decode_at(64) == 40.0
    assert RATES.decode_at(2) == pytest.approx(20.0)


def test_a_substep_costs_its_prefill_plus_its_decode() -> None:
    step = SubStep("completion", requests=8, prompt_tokens=50, completion_tokens=20)
    assert step.seconds(RATES) == pytest.approx(8 * 50 / 100 + 8 * 20 / 40)
    lone = SubStep("judgment", requests=1, prompt_tokens=100, completion_tokens=10)
    assert lone.seconds(RATES) == pytest.approx(1.0 + 1.0)  # one sequence decodes at the single rate
    est = Estimate((step, lone), RATES)
    assert est.seconds == pytest.approx(8.0 + 2.0)
    assert "completion: 8 requests" in est.describe() and "a full run ≈ 10 s" in est.describe()


def test_substeps_group_requests_by_the_stage_of_their_row_and_scale_them() -> None:
    rec = RecordingBackend(FakeBackend())
    from workbench.engine import GenerationRequest, SamplingParams

    reqs = [GenerationRequest(prompt="p" * n, params=SamplingParams(max_tokens=4), key=k)
            for n, k in ((10, "a"), (20, "b"), (30, "c"))]  # fmt: skip
    gens = rec.generate(reqs)
    rows = pl.DataFrame({"id": ["a", "b", "c"], "stage": ["instruction", "instruction", "instance"]})
    steps = {s.stage: s for s in substeps_from_preview(rec, rows, {"instruction": 5.0, "instance": 2.0})}
    assert steps["instruction"].requests == 10 and steps["instance"].requests == 2
    mean = (gens[0].prompt_tokens + gens[1].prompt_tokens) / 2
    assert steps["instruction"].prompt_tokens == pytest.approx(mean)
    assert substeps_from_preview(rec, rows, {"instruction": 1.0}) == (steps["instruction"].__class__(
        "instruction", 2, steps["instruction"].prompt_tokens, steps["instruction"].completion_tokens),)  # fmt: skip


def test_measure_rates_gives_positive_rates_at_the_backends_width() -> None:
    rates = measure_rates(FakeBackend(), ["Write a poem about the sea."], width=3, decode_tokens=8)
    assert rates.width == 3
    assert rates.prefill_tok_s > 0 and 0 < rates.decode_tok_s_single <= rates.decode_tok_s_batched
    with pytest.raises(ValueError, match="at least one prompt"):
        measure_rates(FakeBackend(), [])


def test_a_self_instruct_preview_counts_instances_and_writes_nothing(tmp_path) -> None:
    config = SelfInstructConfig(rounds=5, prompts_per_round=8, num_instructions=20, generate_instances=True)
    store = RunStore.create(tmp_path, "user-run")
    preview = preview_self_instruct(FakeBackend(responder=scripted), config, default_seeds(), prompts=2, rates=RATES)
    stages = {s.stage: s for s in preview.estimate.substeps}
    assert set(stages) == {"instruction", "instance"}
    kept = preview.rows.filter((pl.col("stage") == "instruction") & (pl.col("status") == "kept")).height
    assert kept > 0
    per_prompt = kept / 2
    rounds = min(5, -(-20 // int(per_prompt * 8))) if per_prompt * 8 >= 1 else 5
    assert stages["instruction"].requests == pytest.approx(rounds * 8)
    assert stages["instance"].requests > 0 and preview.estimate.seconds > 0
    assert store.rows().height == 0  # the preview ran in a scratch directory


def test_a_completions_preview_scales_to_every_prompt(tmp_path) -> None:
    prompts = pl.DataFrame({"id": [f"p{i}" for i in range(10)], "instruction": [f"Say {i}." for i in range(10)]})
    preview = preview_completions(FakeBackend(), prompts, CompletionConfig(k=2), rows=2, rates=RATES)
    (step,) = preview.estimate.substeps
    assert step.stage == "completion" and step.requests == pytest.approx(20)
    assert preview.rows.height == 4
    with pytest.raises(ValueError, match="no prompts"):
        preview_completions(FakeBackend(), prompts.head(0), CompletionConfig(), rates=RATES)
    assert tempfile.gettempdir()  # scratch directories are gone after the preview
