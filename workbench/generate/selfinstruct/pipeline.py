"""The self-instruct bootstrap loop: prompts → generations → parse → filters → pool, round after round.

Every candidate, kept or dropped, is written to the run directory as soon as it is decided (through a
RowWriter and the shared `CandidateLoop`, so a killed kernel loses at most the rows in flight). Row ids
hash the prompt, parameters, model identity and seed; the prompts of a round depend only on the seeds,
the config and the decisions already stored, so re-running with the same store and model replays the
stored rows, generates only what is missing, and never writes a row twice. Another model gets its own
rows (its ids differ). With `config.samplers`, each prompt's drawn values (keyed by round and prompt
index) go to the template, the row's `attributes` column and its id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from ...engine.params import GenerationRequest
from ...engine.protocol import Backend
from ...engine.results import Generation, Progress
from ...runs import RowWriter, RunStore, row_id
from ..samplers import attributes_json
from ..seeds import load_seeds
from .candidates import CandidateLoop, ProgressTracker, next_order, pool_id
from .config import SelfInstructConfig
from .decide import PoolFilter
from .instances import run_instances
from .parsing import parse_instruction
from .prompts import Variant, build_instruction_prompt, request_seed, sample_examples

__all__ = ["ProgressTracker", "next_order", "run_self_instruct"]


def _seed_records(seeds: pl.DataFrame) -> list[dict[str, Any]]:
    return seeds.select("id", "instruction", "category", "is_classification").to_dicts()


def _machine_example(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "instruction": row["text"],
        "is_classification": bool(row.get("is_classification")),
        "category": row.get("variant"),
    }


def _parse(gen: Generation) -> tuple[str, str | None]:
    return parse_instruction(gen.text, gen.finish_reason)


def run_self_instruct(
    backend: Backend,
    store: RunStore,
    config: SelfInstructConfig,
    *,
    seeds: pl.DataFrame,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Grow an instruction pool from `seeds` until `config.num_instructions` are accepted or
    `config.rounds` rounds have run; then (optionally) generate one instance per accepted instruction.

    Returns this run's rows (replayed and new; stages "instruction" and "instance") in decision order.
    """
    seeds = load_seeds(seeds)  # validates and normalises any frame the caller built
    human = _seed_records(seeds)
    human_cls = [h for h in human if h["is_classification"]]
    existing = store.rows()
    stored: dict[str, dict[str, Any]] = {}
    if existing.height:
        inst_rows = existing.filter(pl.col("stage").is_in(["instruction", "instance"]))
        stored = {r["id"]: r for r in inst_rows.to_dicts()}

    pool = PoolFilter(
        seeds["instruction"].to_list(),
        seeds["id"].to_list(),
        threshold=config.similarity_threshold,
        text_config=config.text_filters,
    )
    machine: list[dict[str, Any]] = []
    params_json = config.sampling.as_json()
    model = backend.model_id
    n_cls = round(config.prompts_per_round * config.classification_fraction) if human_cls else 0
    expected = config.rounds * config.prompts_per_round
    tracker = ProgressTracker(
        expected + (config.num_instructions if config.generate_instances else 0), on_progress
    )
    base = {
        "model": backend.name,
        "model_sha": model,
        "params": params_json,
        "run_seed": config.seed,
        "pool_id": pool_id("self_instruct", model, config.seed, seeds["id"].to_list()),
        "stage": "instruction",
        "parent_id": None,
        "source": "self_instruct",
    }

    def request(meta: dict[str, Any]) -> GenerationRequest:
        return GenerationRequest(
            prompt=meta["prompt"], params=config.sampling.with_seed(meta["seed"]), key=meta["id"]
        )

    with RowWriter(store) as writer:
        loop = CandidateLoop(
            backend, writer, pool, tracker, cancel, first_order=next_order(existing),
            on_kept=lambda row: machine.append(_machine_example(row)),
        )  # fmt: skip
        for rnd in range(1, config.rounds + 1):
            if pool.accepted >= config.num_instructions or (cancel is not None and cancel.is_set()):
                break
            batch: list[dict[str, Any]] = []
            for i in range(config.prompts_per_round):
                variant: Variant = "classification" if i < n_cls else "generation"
                rng = np.random.default_rng([config.seed, rnd, i])
                source = human_cls if variant == "classification" else human
                mach = (
                    [x for x in machine if x["is_classification"]] if variant == "classification" else machine
                )
                examples = sample_examples(source, mach, config.k_human, config.m_machine, rng)
                values = config.samplers.values(config.seed, f"{rnd}:{i}") if config.samplers else None
                prompt = build_instruction_prompt(examples, variant, config.template, values)
                seed = request_seed(config.seed, "instruction", rnd, i)
                identity: dict[str, Any] = {"params": params_json, "model": model}
                if values is not None:  # the draw is part of what made the row
                    identity["attributes"] = values
                rid = row_id("instruction", None, prompt, identity, seed)
                batch.append(
                    {
                        **({"attributes": attributes_json(values)} if values is not None else {}),
                        "id": rid,
                        "prompt": prompt,
                        "seed": seed,
                        "round": rnd,
                        "variant": variant,
                        "is_classification": variant == "classification",
                        "prompt_index": i,
                        "example_ids": [str(e["id"]) for e in examples],
                    }
                )
            loop.run(batch, stored, request, _parse, base)

        out = loop.rows
        if config.generate_instances and not (cancel is not None and cancel.is_set()):
            kept = [r for r in out if r["status"] == "kept"]
            out = out + run_instances(backend, writer, config, seeds, kept, stored, tracker, cancel, base)
    return store.rows_by_id(r["id"] for r in out)
