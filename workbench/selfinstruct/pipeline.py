"""The self-instruct bootstrap loop: prompts → generations → parse → filters → pool, round after round.

Every candidate, kept or dropped, is written to the run directory as soon as it is decided (through a
RowWriter, so a killed kernel loses at most the rows in flight). Row ids hash the prompt, parameters and
seed; the prompts of a round depend only on the seeds, the config and the decisions already stored, so
re-running with the same store replays the stored rows, generates only what is missing, and never
writes a row twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from ..engine.params import GenerationRequest
from ..engine.protocol import Backend
from ..engine.results import Generation, Progress
from ..runs import RowWriter, RunStore, row_id
from ..seeds import load_seeds
from .config import SelfInstructConfig
from .decide import PoolFilter
from .instances import run_instances
from .parsing import parse_instruction
from .prompts import Variant, build_instruction_prompt, request_seed, sample_examples

__all__ = ["ProgressTracker", "next_order", "run_self_instruct"]


class ProgressTracker:
    """Sums progress over several backend batches into one Progress stream."""

    def __init__(self, total: int, callback: Callable[[Progress], None] | None) -> None:
        self.total = total
        self.callback = callback
        self.done = 0
        self.errors = 0
        self._tokens_before = 0
        self._batch_tokens = 0
        self._t0 = time.perf_counter()

    def batch_progress(self, p: Progress) -> None:
        self._batch_tokens = p.tokens_generated
        self.emit()

    def end_batch(self) -> None:
        self._tokens_before += self._batch_tokens
        self._batch_tokens = 0

    def row_done(self, error: bool = False) -> None:
        self.done += 1
        self.errors += int(error)
        self.emit()

    def emit(self) -> None:
        if self.callback is not None:
            tokens = self._tokens_before + self._batch_tokens
            total = max(self.total, self.done)
            self.callback(Progress(self.done, total, tokens, time.perf_counter() - self._t0, self.errors))


def next_order(existing: pl.DataFrame) -> int:
    """The decision-order number after every row already stored."""
    if "order" not in existing.columns or existing["order"].drop_nulls().len() == 0:
        return 0
    return int(existing["order"].cast(pl.Int64).max()) + 1  # type: ignore[arg-type]


def remap(handle: Callable[[int, Generation], None], todo: list[int]) -> Callable[[int, Generation], None]:
    """Turn a batch index back into the index of the full prompt list."""
    return lambda j, gen: handle(todo[j], gen)


def _seed_records(seeds: pl.DataFrame) -> list[dict[str, Any]]:
    return seeds.select("id", "instruction", "category", "is_classification").to_dicts()


def _generate_in_order(
    backend: Backend,
    requests: list[GenerationRequest],
    handle: Callable[[int, Generation], None],
    tracker: ProgressTracker,
    cancel: threading.Event | None,
) -> None:
    """Generate a batch and hand results to `handle` strictly in request order, each as soon as every
    earlier one is done (decisions are sequential; persistence stays prompt)."""
    ready: dict[int, Generation] = {}
    nxt = 0
    lock = threading.Lock()

    def on_result(i: int, gen: Generation) -> None:
        nonlocal nxt
        with lock:
            ready[i] = gen
            while nxt in ready:
                g = ready.pop(nxt)
                if g.finish_reason != "cancelled":
                    handle(nxt, g)
                nxt += 1

    if requests:
        gens = backend.generate(
            requests, on_progress=tracker.batch_progress, on_result=on_result, cancel=cancel
        )
        for i, g in enumerate(gens):  # rows the backend did not report through on_result
            if i >= nxt and i not in ready:
                ready[i] = g
        with lock:
            for i in sorted(ready):
                if i >= nxt and ready[i].finish_reason != "cancelled":
                    handle(i, ready[i])
    tracker.end_batch()


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
    order_no = next_order(existing)
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
    out: list[dict[str, Any]] = []
    params_json = config.sampling.as_json()
    n_cls = round(config.prompts_per_round * config.classification_fraction) if human_cls else 0
    expected = config.rounds * config.prompts_per_round
    tracker = ProgressTracker(
        expected + (config.num_instructions if config.generate_instances else 0), on_progress
    )
    base = {
        "model": backend.name,
        "model_sha": backend.model_id,
        "params": params_json,
        "run_seed": config.seed,
    }

    with RowWriter(store) as writer:
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
                prompt = build_instruction_prompt(examples, variant, config.template)
                seed = request_seed(config.seed, "instruction", rnd, i)
                rid = row_id("instruction", None, prompt, params_json, seed)
                batch.append(
                    {
                        "id": rid,
                        "prompt": prompt,
                        "seed": seed,
                        "variant": variant,
                        "prompt_index": i,
                        "example_ids": [str(e["id"]) for e in examples],
                    }
                )

            def handle(i: int, gen: Generation, batch: list[dict[str, Any]] = batch, rnd: int = rnd) -> None:
                nonlocal order_no
                meta = batch[i]
                is_cls = meta["variant"] == "classification"
                row: dict[str, Any] = {
                    **base,
                    **meta,
                    "stage": "instruction",
                    "parent_id": None,
                    "round": rnd,
                    "source": "self_instruct",
                    "is_classification": is_cls,
                    "raw_text": gen.text,
                    "finish_reason": gen.finish_reason,
                    "prompt_tokens": gen.prompt_tokens,
                    "completion_tokens": gen.completion_tokens,
                    "seconds": gen.seconds,
                    "order": order_no,
                }
                order_no += 1
                if not gen.ok:
                    text = ""
                    row.update(
                        pool.nearest_fields(""),
                        status="error",
                        reason=gen.error or gen.finish_reason,
                        filter_reason=None,
                    )
                else:
                    text, parse_reason = parse_instruction(gen.text, gen.finish_reason)
                    row.update(pool.decide(text, parse_reason, meta["id"]))
                row["text"] = text
                if row["status"] == "kept":
                    machine.append(
                        {
                            "id": meta["id"],
                            "instruction": text,
                            "is_classification": is_cls,
                            "category": meta["variant"],
                        }
                    )
                writer.add(row)
                out.append(row)
                tracker.row_done(error=row["status"] == "error")

            todo: list[int] = []
            for i, meta in enumerate(batch):
                if meta["id"] in stored:
                    _replay(stored[meta["id"]], pool, machine, out)
                    tracker.row_done()
                else:
                    todo.append(i)
            requests = [
                GenerationRequest(
                    prompt=batch[i]["prompt"],
                    params=config.sampling.with_seed(batch[i]["seed"]),
                    key=batch[i]["id"],
                )
                for i in todo
            ]
            _generate_in_order(backend, requests, remap(handle, todo), tracker, cancel)
            writer.flush()

        if config.generate_instances and not (cancel is not None and cancel.is_set()):
            kept = [r for r in out if r["status"] == "kept"]
            out += run_instances(backend, writer, config, seeds, kept, stored, tracker, cancel, base)
    return pl.DataFrame(out, infer_schema_length=None) if out else pl.DataFrame()


def _replay(
    row: dict[str, Any], pool: PoolFilter, machine: list[dict[str, Any]], out: list[dict[str, Any]]
) -> None:
    """Bring a stored row back into this run's state without regenerating it."""
    if row.get("status") == "kept":
        pool.accept(row["text"], row["id"])
        machine.append(
            {
                "id": row["id"],
                "instruction": row["text"],
                "is_classification": bool(row.get("is_classification")),
                "category": row.get("variant"),
            }
        )
    out.append(row)
