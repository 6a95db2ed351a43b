"""Scale-out: the same recipe, its generation fanned out by Ray Data over OpenAI-compatible servers.

`RayBackend` implements the ordinary Backend protocol, so every pipeline step (completions, evolution,
self-instruct, judge) runs unchanged: the steps build the same requests, row ids and parameters as they
do in the notebook, and only `generate` differs: its requests become a Ray dataset that
`map_batches` sends through a pool of actors (`_EndpointWorker`), each calling the servers over HTTP with
`OpenAIHTTPBackend`. Request i goes to server `i % len(endpoints)`, so the work spreads evenly and the same
request always meets the same server. Rows come back as they finish and are written to the run directory
by the driver, so an interrupted run resumes like any other.

Scaling out is configuration only: more URLs in `endpoints` and a cluster in `ray_address`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..engine.params import GenerationRequest
from ..engine.protocol import ProgressCallback, ResultCallback
from ..engine.results import Generation, Progress, TokenLogprob, TokenScores

__all__ = ["RayBackend", "ScaleConfig", "generation_from_json", "generation_to_json"]


class ScaleConfig(BaseModel):
    """Where generation runs when a recipe is scaled out."""

    model_config = ConfigDict(extra="forbid")

    endpoints: list[str] = Field(min_length=1)
    """Base URLs of OpenAI-compatible servers serving the same model (llama.cpp, vLLM), e.g.
    ['http://10.0.0.5:8000', 'http://10.0.0.6:8000']."""
    model: str | None = None
    """The served model's name (vLLM's `--served-model-name`); None: the server's only model."""
    model_identity: str | None = None
    """What the endpoints serve, as row ids know it (e.g. the GGUF's sha256, or a name you choose):
    set it to the sha256 of the file an in-process run used and the rows resume across both."""
    ray_address: str | None = None
    """Ray cluster to join: None starts a local Ray on this machine; 'auto' joins the cluster this
    machine is part of; 'ray://head:10001' connects a client to a remote head."""
    actors: int | None = Field(None, ge=1)
    """Size of the actor pool calling the servers (default: one per endpoint)."""
    batch_size: int = Field(8, ge=1)
    """Requests per `map_batches` call; each actor sends a batch's requests concurrently."""
    max_concurrency: int = Field(8, ge=1)
    """Requests in flight per actor (bounded by the HTTP backend's semaphore)."""
    timeout_s: float = Field(120.0, gt=0)
    """Per-request HTTP timeout."""
    retries: int = Field(3, ge=0)
    """HTTP retries per request on connection errors and 5xx answers."""
    actor_num_cpus: float = Field(0.25, gt=0)
    """CPUs Ray reserves per actor (they wait on the network, so a fraction is enough)."""
    local_num_cpus: int | None = Field(2, ge=1)
    """CPUs of a local Ray started by the workbench (ignored when joining a cluster)."""
    client: str = "workbench.engine.http:OpenAIHTTPBackend"
    """Import path ('module:Class') of the HTTP backend each actor uses; it is constructed as
    Class(url, model=, max_concurrency=, timeout_s=, retries=) and must implement the Backend protocol."""
    runtime_env: dict[str, Any] | None = None
    """Ray runtime environment for a remote cluster whose nodes lack the workbench, e.g.
    {'pip': ['synth-workbench']} or {'py_modules': ['/path/to/workbench']}."""


def generation_to_json(gen: Generation) -> str:
    record = gen.as_record()
    record["prompt_text"] = gen.prompt_text
    record["logprobs"] = (
        None if gen.logprobs is None else [[t.token, t.logprob, [list(p) for p in t.top]] for t in gen.logprobs]
    )
    return json.dumps(record, ensure_ascii=False)


def generation_from_json(text: str) -> Generation:
    r = json.loads(text)
    lps = r.pop("logprobs", None)
    gen = Generation(**r)
    if lps is not None:
        gen.logprobs = [TokenLogprob(tok, lp, [(a, b) for a, b in top]) for tok, lp, top in lps]
    return gen


def _http_backend(url: str, config: ScaleConfig) -> Any:
    import importlib

    module, _, cls_name = config.client.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    identity = {"model_identity": config.model_identity} if config.model_identity is not None else {}
    return cls(
        url,
        model=config.model,
        max_concurrency=config.max_concurrency,
        timeout_s=config.timeout_s,
        retries=config.retries,
        **identity,
    )


class _EndpointWorker:
    """A Ray Data actor: holds one HTTP client per endpoint and completes a batch of requests."""

    def __init__(self, config_json: str) -> None:
        self.config = ScaleConfig.model_validate_json(config_json)
        self.backends: dict[int, Any] = {}

    def _backend(self, endpoint: int) -> Any:
        if endpoint not in self.backends:
            self.backends[endpoint] = _http_backend(self.config.endpoints[endpoint], self.config)
        return self.backends[endpoint]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        indices = [int(i) for i in batch["index"]]
        endpoints = [int(e) for e in batch["endpoint"]]
        requests = [GenerationRequest.model_validate_json(str(r)) for r in batch["request"]]
        results: dict[int, Generation] = {}
        groups: dict[int, list[int]] = {}
        for pos, ep in enumerate(endpoints):
            groups.setdefault(ep, []).append(pos)
        threads = []

        def run(ep: int, positions: list[int]) -> None:
            try:
                gens = self._backend(ep).generate([requests[p] for p in positions])
            except Exception as exc:  # a dead server makes error rows, never a lost batch
                gens = [Generation(requests[p].key, "", "error", error=f"{type(exc).__name__}: {exc}") for p in positions]
            for p, g in zip(positions, gens, strict=True):
                results[p] = g

        for ep, positions in groups.items():  # different servers are called in parallel
            t = threading.Thread(target=run, args=(ep, positions))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        return {
            "index": indices,
            "generation": [generation_to_json(results[p]) for p in range(len(indices))],
        }


class RayBackend:
    """The Backend protocol over Ray Data and a list of OpenAI-compatible endpoints."""

    def __init__(self, config: ScaleConfig) -> None:
        self.config = config
        self._driver: Any = None
        self._started_ray = False

    # -- metadata (from the first endpoint; every endpoint must serve the same model) ----------
    @property
    def driver_backend(self) -> Any:
        if self._driver is None:
            self._driver = _http_backend(self.config.endpoints[0], self.config)
        return self._driver

    @property
    def name(self) -> str:
        n = len(self.config.endpoints)
        return f"ray[{n} endpoint{'s' if n > 1 else ''}]:{self.driver_backend.name}"

    @property
    def model_id(self) -> str:
        # The first endpoint's id: the same rows get the same ids with or without Ray.
        return str(self.driver_backend.model_id)

    @property
    def chat_template(self) -> str | None:
        return self.driver_backend.chat_template

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        return self.driver_backend.score(prompts, continuations)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.driver_backend.embed(texts)

    def count_tokens(self, text: str) -> int:
        return int(self.driver_backend.count_tokens(text))

    # -- Ray -----------------------------------------------------------------------------------
    def ensure_ray(self) -> None:
        import ray

        if ray.is_initialized():
            return
        cfg = self.config
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if cfg.runtime_env:
            kwargs["runtime_env"] = cfg.runtime_env
        if cfg.ray_address is None:
            kwargs["num_cpus"] = cfg.local_num_cpus
            kwargs["object_store_memory"] = 256 * 1024**2
            ray.init(**kwargs)
        else:
            ray.init(address=cfg.ray_address, **kwargs)
        self._started_ray = True

    def close(self) -> None:
        if self._driver is not None and hasattr(self._driver, "close"):
            self._driver.close()
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        if not requests:
            return []
        self.ensure_ray()
        import ray

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        cfg = self.config
        n_endpoints = len(cfg.endpoints)
        items = [
            {"index": i, "endpoint": i % n_endpoints, "request": req.model_dump_json()}
            for i, req in enumerate(requests)
        ]
        actors = cfg.actors or n_endpoints
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items) // cfg.batch_size, 4 * actors)))
        results = ds.map_batches(
            _EndpointWorker,
            fn_constructor_kwargs={"config_json": cfg.model_dump_json()},
            batch_size=cfg.batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cfg.actor_num_cpus,
            batch_format="numpy",
        )
        t0 = time.perf_counter()
        tokens = errors = 0
        for done, row in enumerate(results.iter_rows(), start=1):
            if cancel is not None and cancel.is_set():
                break
            index = int(row["index"])
            gen = generation_from_json(str(row["generation"]))
            out[index] = gen
            tokens += gen.completion_tokens
            errors += 0 if gen.ok else 1
            if on_result is not None:
                on_result(index, gen)
            if on_progress is not None:
                on_progress(Progress(done, len(requests), tokens, time.perf_counter() - t0, errors))
        return [
            g if g is not None else Generation(requests[i].key, "", "cancelled") for i, g in enumerate(out)
        ]
