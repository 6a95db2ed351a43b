"""The same model file, in-process and through a real llama.cpp server on 127.0.0.1, resumes the same rows."""

from __future__ import annotations

import polars as pl
import pytest

from tests.helpers_server import llama_server
from workbench.engine import SamplingParams
from workbench.engine.gguf import file_sha256
from workbench.engine.http import OpenAIHTTPBackend
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.generate.seeds import default_seeds
from workbench.generate.selfinstruct import (
    DEFAULT_INSTANCE_PARAMS,
    DEFAULT_INSTRUCTION_PARAMS,
    SelfInstructConfig,
    run_self_instruct,
)
from workbench.runs import RunStore

CONFIG = SelfInstructConfig(
    num_instructions=3, rounds=1, prompts_per_round=3, seed=5,
    sampling=DEFAULT_INSTRUCTION_PARAMS.model_copy(update={"max_tokens": 16}),
    instance_sampling=DEFAULT_INSTANCE_PARAMS.model_copy(update={"max_tokens": 16}),
)  # fmt: skip
ANSWERS = CompletionConfig(k=1, params=SamplingParams(max_tokens=12, temperature=0.7))


class Counting(OpenAIHTTPBackend):
    """The HTTP backend, counting the requests it is asked to generate."""

    requests = 0

    def generate(self, requests, **kwargs):  # type: ignore[no-untyped-def]
        Counting.requests += len(requests)
        return super().generate(requests, **kwargs)


@pytest.mark.model
@pytest.mark.server
def test_in_process_then_server_with_the_files_identity_writes_nothing_twice(llama_backend, default_model_path, tmp_path):
    store = RunStore.create(tmp_path, "r")
    seeds = default_seeds().head(8)
    first = run_self_instruct(llama_backend, store, CONFIG, seeds=seeds)
    kept = first.filter((pl.col("stage") == "instruction") & (pl.col("status") == "kept"))
    prompts = kept.select("id", pl.col("text").alias("instruction")) if kept.height else seeds.select("id", "instruction")
    run_completions(llama_backend, store, prompts.head(2), ANSWERS)
    before = store.rows()
    assert set(before["model_sha"]) == {file_sha256(default_model_path)}

    with llama_server(default_model_path) as server:
        # Through the server, under the file's identity: every row is already there.
        same = Counting(server.url, model=server.model, model_identity=file_sha256(default_model_path))
        assert same.model_id == llama_backend.model_id and server.url not in same.model_id
        again = run_self_instruct(same, store, CONFIG, seeds=seeds)
        answers = run_completions(same, store, prompts.head(2), ANSWERS)
        assert Counting.requests == 0
        after = store.rows()
        assert after.height == before.height and after["id"].n_unique() == after.height
        # (how many instructions the model kept depends on its texts: count the prompts, not a constant)
        assert set(again["id"]) == set(first["id"]) and answers.height == prompts.head(2).height >= 1
        # Without the identity the endpoint is another model (its served name): it writes rows of its own.
        other = Counting(server.url, model=server.model)
        assert other.model_id == f"served:{server.model}"
        run_completions(other, store, prompts.head(1), ANSWERS)
        assert Counting.requests == 1
        new = store.rows().filter(~pl.col("id").is_in(after["id"].implode()))
        assert new.height == 1 and new["model_sha"][0] == f"served:{server.model}"
        same.close()
        other.close()
