"""Instance generation: one input/output pair for each accepted instruction.

Non-classification tasks are input-first (the model writes an input, then the output for it).
Classification tasks are output-first, as in the paper: the model picks a class label, then writes an
input with that label, which keeps labels from collapsing onto one class.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import polars as pl

from ...engine.params import GenerationRequest
from ...engine.protocol import Backend
from ...engine.results import Generation
from ...runs import RowWriter, row_id
from .candidates import ProgressTracker, generate_in_order, generation_fields
from .config import SelfInstructConfig
from .parsing import parse_instance
from .prompts import build_instance_prompt, request_seed

__all__ = ["run_instances"]


def _examples_with_instances(seeds: pl.DataFrame, is_classification: bool) -> list[dict[str, Any]]:
    pool = seeds.filter(
        (pl.col("instances").list.len() > 0) & (pl.col("is_classification") == is_classification)
    )
    if pool.height == 0:  # no seed of this kind has an instance: fall back to any seed that has one
        pool = seeds.filter(pl.col("instances").list.len() > 0)
    return pool.to_dicts()


def run_instances(
    backend: Backend,
    writer: RowWriter,
    config: SelfInstructConfig,
    seeds: pl.DataFrame,
    instructions: list[dict[str, Any]],
    stored: dict[str, dict[str, Any]],
    tracker: ProgressTracker,
    cancel: threading.Event | None,
    base: dict[str, Any],
) -> list[dict[str, Any]]:
    """Generate (or replay from `stored`) one instance row per instruction row; returns the rows."""
    base = {k: v for k, v in base.items() if k != "pool_id"}  # pools hold instructions only
    params_json = config.instance_sampling.as_json()
    examples_by_kind = {k: _examples_with_instances(seeds, k) for k in (False, True)}
    out: list[dict[str, Any]] = []
    metas: list[dict[str, Any]] = []
    for inst in instructions:
        is_cls = bool(inst.get("is_classification"))
        rng = np.random.default_rng([config.seed, 7, int(inst["id"][:8], 16)])
        ex_pool = examples_by_kind[is_cls]
        n = min(config.instance_examples, len(ex_pool))
        examples = [ex_pool[i] for i in rng.choice(len(ex_pool), size=n, replace=False)] if n else []
        prompt = build_instance_prompt(inst["text"], is_cls, examples)
        seed = request_seed(config.seed, "instance", inst["id"])
        rid = row_id("instance", inst["id"], prompt, {"params": params_json, "model": backend.model_id}, seed)
        metas.append(
            {
                "id": rid,
                "parent_id": inst["id"],
                "prompt": prompt,
                "seed": seed,
                "round": inst["round"],
                "is_classification": is_cls,
                "instruction": inst["text"],
                "example_ids": [str(e["id"]) for e in examples],
            }
        )

    def handle(i: int, gen: Generation) -> None:
        meta = metas[i]
        row: dict[str, Any] = {
            **base,
            **meta,
            "stage": "instance",
            "params": params_json,
            **generation_fields(gen),
        }
        if not gen.ok:
            row.update(
                status="error", reason=gen.error or gen.finish_reason, text="", input=None, output=None
            )
        else:
            parsed = parse_instance(gen.text, meta["is_classification"], gen.finish_reason)
            row.update(
                text=parsed.output,
                input=parsed.input,
                output=parsed.output,
                status="kept" if parsed.reason is None else "dropped",
                reason=parsed.reason,
            )
        writer.add(row)
        out.append(row)
        tracker.row_done(error=row["status"] == "error")

    todo = []
    for i, meta in enumerate(metas):
        if meta["id"] in stored:
            out.append(stored[meta["id"]])
            tracker.row_done()
        else:
            todo.append(i)
    requests = [
        GenerationRequest(
            prompt=metas[i]["prompt"],
            params=config.instance_sampling.with_seed(metas[i]["seed"]),
            key=metas[i]["id"],
        )
        for i in todo
    ]
    generate_in_order(backend, requests, lambda j, gen: handle(todo[j], gen), tracker, cancel)
    writer.flush()
    return out
