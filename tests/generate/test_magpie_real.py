"""Magpie on a real GGUF with a chat template (the default weights plus Gemma's own template)."""

import polars as pl
import pytest

from workbench.engine import LlamaCppBackend, SamplingParams
from workbench.generate.magpie import MagpieConfig, magpie_prefix, run_magpie
from workbench.runs import RunStore

pytestmark = pytest.mark.model


def test_magpie_writes_user_turns_from_the_template_prefix(chat_model_path, tmp_path):
    backend = LlamaCppBackend(chat_model_path, n_parallel=4, n_ctx_per_seq=256)
    try:
        prefix, marker = magpie_prefix(backend.chat_template)
        assert prefix.endswith("<start_of_turn>user\n") and marker == "<end_of_turn>"
        # The prefix's control tokens are read as special tokens, not as literal text.
        assert len(backend.model.tokenize(prefix, add_bos=False, special=True)) <= 3
        store = RunStore.create(tmp_path, "magpie")
        cfg = MagpieConfig(num_prompts=3, sampling=SamplingParams(temperature=1.0, top_p=1.0, min_p=0.0, max_tokens=24))
        rows = run_magpie(backend, store, cfg)
        assert rows.height == 3
        assert set(rows["status"]) <= {"kept", "dropped", "error"}
        assert rows.filter(pl.col("status") == "error").height == 0
        assert all("<start_of_turn>" not in t for t in rows["text"])
        assert store.rows().height >= 3
    finally:
        backend.close()
