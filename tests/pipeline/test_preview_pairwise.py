"""The pairwise judge's preview: a few pairs in both orders, priced for every pair, nothing written to the run."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.judge import JudgeConfig, likert_rubric, pairs_within_groups
from workbench.pipeline.estimate import Rates
from workbench.pipeline.preview import preview_pairwise_judge
from workbench.runs import RunStore

RATES = Rates(prefill_tok_s=100.0, decode_tok_s_single=10.0, decode_tok_s_batched=40.0, width=4)
RUBRIC = likert_rubric("helpfulness", "Grade the answer.", ("Is correct",), {1: "wrong", 2: "right"})


def _pairs(n: int) -> pl.DataFrame:
    """`n` prompts with two answers each, paired by prompt as the Judge tab pairs them."""
    rows = pl.DataFrame({
        "id": [f"c{i}{k}" for i in range(n) for k in "ab"],
        "parent_id": [f"p{i}" for i in range(n) for _ in "ab"],
        "instruction": [f"Name {i + 2} rivers." for i in range(n) for _ in "ab"],
        "text": [t for _ in range(n) for t in ("Nile.", "The Nile and the Amazon, two long rivers.")],
    })  # fmt: skip
    return pairs_within_groups(rows)


@pytest.mark.parametrize("both_orders", [True, False])
def test_a_pairwise_preview_judges_a_few_pairs_and_prices_every_pair(tmp_path, both_orders) -> None:
    store = RunStore.create(tmp_path, "user-run")
    config = JudgeConfig(max_tokens=24, both_orders=both_orders)
    backend = FakeBackend(responder=lambda _req: "The second is fuller.\nWinner: B")
    preview = preview_pairwise_judge(backend, _pairs(6), RUBRIC, config, sample=2, rates=RATES)
    orders = 2 if both_orders else 1
    assert preview.rows.height == 2 * orders and set(preview.rows["stage"]) == {"judgment"}
    assert set(preview.rows["judge_kind"]) == {"pairwise"} and set(preview.rows["verdict"]) == {"B"}
    (step,) = preview.estimate.substeps
    assert step.stage == "judgment" and step.requests == pytest.approx(6 * orders)
    assert "6 pairs" in step.note and preview.estimate.seconds > 0
    assert "judgment:" in preview.describe()
    assert store.rows().height == 0  # the preview ran in a scratch directory


def test_a_pairwise_preview_without_pairs_says_so() -> None:
    with pytest.raises(ValueError, match="no pairs"):
        preview_pairwise_judge(FakeBackend(), _pairs(1).head(0), RUBRIC, JudgeConfig(), rates=RATES)
