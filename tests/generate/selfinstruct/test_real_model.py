"""A tiny self-instruct run on the real default model (Gemma 3 270M base)."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.engine import NoChatTemplateError
from workbench.generate import (
    DEFAULT_INSTANCE_PARAMS,
    DEFAULT_INSTRUCTION_PARAMS,
    MagpieConfig,
    SelfInstructConfig,
    run_magpie,
    run_self_instruct,
)
from workbench.generate.seeds import default_seeds
from workbench.runs import RunStore

pytestmark = pytest.mark.model


def test_tiny_run_on_default_model(llama_backend, tmp_path):
    cfg = SelfInstructConfig(
        num_instructions=3,
        rounds=1,
        prompts_per_round=4,
        seed=1,
        sampling=DEFAULT_INSTRUCTION_PARAMS.model_copy(update={"max_tokens": 32}),
        instance_sampling=DEFAULT_INSTANCE_PARAMS.model_copy(update={"max_tokens": 32}),
    )
    store = RunStore.create(tmp_path, "real")
    progress = []
    rows = run_self_instruct(llama_backend, store, cfg, seeds=default_seeds(), on_progress=progress.append)
    inst = rows.filter(pl.col("stage") == "instruction")
    assert inst.height == 4 and store.rows().height == rows.height
    assert (inst["model_sha"].str.len_chars() == 64).all()  # the GGUF's sha256
    assert inst.filter(pl.col("status") == "kept").height >= 1  # the base model does continue the list
    assert all("\nTask" not in t for t in inst["text"])  # parsing stopped at the next task marker
    assert progress and progress[-1].tokens_generated > 0
    # Resuming the finished run generates nothing new.
    again = run_self_instruct(llama_backend, RunStore.open(store.path), cfg, seeds=default_seeds())
    assert store.rows().height == rows.height and set(again["id"]) == set(rows["id"])


def test_magpie_refuses_the_base_model(llama_backend, tmp_path):
    with pytest.raises(NoChatTemplateError, match="no chat template"):
        run_magpie(llama_backend, RunStore.create(tmp_path, "m"), MagpieConfig(num_prompts=1))
