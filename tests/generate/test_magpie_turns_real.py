"""Magpie conversations on a real chat model (SmolLM2-135M-Instruct): n_turns=2, few rows, short turns."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.engine import SamplingParams
from workbench.generate import MagpieConfig, run_magpie
from workbench.runs import RunStore

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smollm2():
    from workbench.engine import load_backend

    backend = load_backend("smollm2", n_parallel=4, n_ctx_per_seq=512)
    yield backend
    backend.close()  # type: ignore[attr-defined]


def test_smollm2_writes_two_turn_conversations(smollm2, tmp_path):
    store = RunStore.create(tmp_path, "magpie")
    short = SamplingParams(temperature=1.0, top_p=1.0, min_p=0.0, max_tokens=32)
    cfg = MagpieConfig(num_prompts=3, n_turns=2, sampling=short, answer_sampling=short.model_copy(
        update={"temperature": 0.7}), drop_truncated=False, min_words=2, seed=3)  # fmt: skip
    convs = run_magpie(smollm2, store, cfg)
    kept_instr = store.rows().filter((pl.col("stage") == "instruction") & (pl.col("status") == "kept"))
    assert convs.height == kept_instr.height >= 1
    assert convs.filter(pl.col("status") == "error").height == 0
    full = [m for m in convs["messages"].to_list() if len(m) == 4]
    assert full, "no conversation reached two user turns"
    for msgs in full:
        assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
        # the template's control tokens never leak into a turn (the model's next user turn stops at them)
        assert all(m["content"].strip() and "<|im_" not in m["content"] for m in msgs)
    assert set(convs["parent_id"]) == set(kept_instr["id"])
    before = store.rows().height
    again = run_magpie(smollm2, store, cfg)
    assert again["id"].to_list() == convs["id"].to_list() and store.rows().height == before
