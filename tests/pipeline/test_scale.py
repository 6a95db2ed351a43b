"""Scale-out for real: local Ray Data driving a llama.cpp server process on 127.0.0.1.

The same recipe runs twice against one server: once as written (the endpoint in `model`), once with a
`scale:` section added (Ray Data actor pool). Both runs must hold the same row ids, prompts, parameters
and texts.

Determinism condition (measured, see README "Scale-out"): llama-cpp-python's server keeps one KV cache and
reuses the longest prefix shared with the previous request, and llama.cpp's CPU matmuls give slightly
different floats for different batch shapes, so with the default `--n_batch` the same seeded request
can produce a different text depending on which request ran before it. With `--n_batch 1 --n_ubatch 1`
every token is evaluated alone, the prefix reuse no longer changes the numbers, and seeded sampling is
reproducible whatever the order or concurrency of requests. The server here runs in that mode.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.engine import Generation, GenerationRequest, SamplingParams
from workbench.engine.results import TokenLogprob
from workbench.pipeline.recipe import Recipe
from workbench.pipeline.runner import run_recipe
from workbench.pipeline.scale import ScaleConfig, generation_from_json, generation_to_json

DETERMINISTIC_SERVER = ("--n_batch", "1", "--n_ubatch", "1")


def test_generation_survives_the_trip_through_ray_rows():
    gen = Generation("k1", "héllo", "stop", 3, 2, 0.5, None, [TokenLogprob("h", -0.1, [("h", -0.1), ("x", -3.0)])], "p")
    assert generation_from_json(generation_to_json(gen)) == gen
    err = Generation("k2", "", "error", error="boom")
    assert generation_from_json(generation_to_json(err)) == err


def test_scale_config_is_strict():
    with pytest.raises(ValueError, match="endpoints"):
        ScaleConfig(endpoints=[])
    with pytest.raises(ValueError, match="extra"):
        ScaleConfig.model_validate({"endpoints": ["http://127.0.0.1:1"], "nodes": 3})


@pytest.fixture(scope="module")
def server():
    from tests.helpers_server import llama_server

    with llama_server(extra_args=DETERMINISTIC_SERVER) as running:
        yield running


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=256 * 1024**2)
    yield ray
    ray.shutdown()


def _recipe(url: str, **extra) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "scale-check",
            "model": url,
            "seeds": {"limit": 3},
            "steps": [{"kind": "completions", "config": {"k": 2, "seed": 11, "params": {"max_tokens": 12, "temperature": 0.8}}}],
            **extra,
        }
    )


@pytest.mark.server
def test_seeded_sampling_on_one_server_is_order_independent(server):
    """The premise of the Ray comparison, checked directly: the same requests in two orders, 3 at a time."""
    from workbench.engine.http import OpenAIHTTPBackend

    backend = OpenAIHTTPBackend(server.url, max_concurrency=3)
    params = SamplingParams(max_tokens=12, temperature=0.8, seed=3)
    prompts = ["Instruction: Name a river.\nResponse:", "Instruction: Describe a cat.\nResponse:",
               "Instruction: Explain gravity.\nResponse:", "Instruction: List two fruits.\nResponse:"]  # fmt: skip
    reqs = [GenerationRequest(prompt=p, params=params, key=str(i)) for i, p in enumerate(prompts)]
    forward = {g.key: g.text for g in backend.generate(reqs)}
    backward = {g.key: g.text for g in backend.generate(list(reversed(reqs)))}
    assert forward == backward
    assert all(forward.values())


@pytest.mark.ray
@pytest.mark.server
def test_ray_run_matches_a_plain_run_of_the_same_recipe(server, local_ray, tmp_path):
    plain = run_recipe(_recipe(server.url), runs_root=tmp_path / "plain")
    scaled_recipe = _recipe(server.url, scale={"endpoints": [server.url], "actors": 2, "batch_size": 2})
    assert scaled_recipe.work_hash() == plain.store.manifest["recipe_hash"]  # only configuration changed
    scaled = run_recipe(scaled_recipe, runs_root=tmp_path / "ray")

    cols = ["id", "parent_id", "prompt", "params", "seed", "model_sha", "text", "status"]
    a = plain.store.rows().select(cols).sort("id")
    b = scaled.store.rows().select(cols).sort("id")
    assert a.height == 6 and a["id"].n_unique() == 6
    assert a.select("id", "prompt", "params", "seed").equals(b.select("id", "prompt", "params", "seed"))
    assert a["text"].to_list() == b["text"].to_list()
    assert all(json.loads(p)["max_tokens"] == 12 for p in b["params"])
    assert b.filter(pl.col("status") == "error").height == 0
    assert scaled.store.manifest["model"].startswith("ray[1 endpoint]")
