"""The candidate loop self-instruct and Magpie share: generate candidates in request order, parse, filter
against the pool, record each decision as a row the moment it is made, and replay stored decisions.

Decisions are sequential (a candidate is compared with every instruction accepted before it), so
results are handled strictly in request order, each as soon as every earlier one is done. A row the
run already has (same id) is replayed instead of generated: kept rows rejoin the pool, nothing is
written twice. `generate_in_order` and `ProgressTracker` also serve instance generation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from ...engine.params import GenerationRequest
from ...engine.protocol import Backend
from ...engine.results import Generation, Progress
from ...runs import RowWriter, content_hash
from .decide import PoolFilter

__all__ = ["CandidateLoop", "ProgressTracker", "generate_in_order", "next_order", "pool_id"]

# (text, prior reason) of a finished generation: the parsed candidate and a parse failure, if any.
Parser = Callable[[Generation], tuple[str, "str | None"]]


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
    """The decision-order number after every decision already stored in the run."""
    if "decision_order" not in existing.columns:
        return 0
    top = existing["decision_order"].max()
    return 0 if top is None else int(top) + 1  # type: ignore[arg-type]


def pool_id(source: str, model_identity: str, run_seed: int, seed_ids: Sequence[str]) -> str:
    """Which candidate pool a decision belongs to: one generator, model, run seed and seed set."""
    return content_hash(
        {"source": source, "model": model_identity, "seed": run_seed, "seeds": list(seed_ids)}
    )


def generate_in_order(
    backend: Backend,
    requests: list[GenerationRequest],
    handle: Callable[[int, Generation], None],
    tracker: ProgressTracker,
    cancel: threading.Event | None,
) -> None:
    """Generate a batch and hand results to `handle` strictly in request order, each as soon as every
    earlier one is done (decisions are sequential; persistence stays prompt). Cancelled rows are skipped."""
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


def generation_fields(gen: Generation) -> dict[str, Any]:
    """The row fields every generated candidate or instance carries."""
    return {
        "raw_text": gen.text,
        "finish_reason": gen.finish_reason,
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "seconds": gen.seconds,
    }


class CandidateLoop:
    """Decides candidates against one pool and records every decision (kept, dropped, error)."""

    def __init__(
        self,
        backend: Backend,
        writer: RowWriter,
        pool: PoolFilter,
        tracker: ProgressTracker,
        cancel: threading.Event | None,
        *,
        first_order: int,
        on_kept: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.backend = backend
        self.writer = writer
        self.pool = pool
        self.tracker = tracker
        self.cancel = cancel
        self.order = first_order
        self.on_kept = on_kept
        self.rows: list[dict[str, Any]] = []

    def replay(self, row: dict[str, Any]) -> None:
        """Bring a stored decision back into the pool without regenerating it."""
        if row.get("status") == "kept":
            self.pool.accept(row["text"], row["id"])
            if self.on_kept is not None:
                self.on_kept(row)
        self.rows.append(row)
        self.tracker.row_done()

    def run(
        self,
        metas: list[dict[str, Any]],
        stored: dict[str, dict[str, Any]],
        request: Callable[[dict[str, Any]], GenerationRequest],
        parse: Parser,
        base: dict[str, Any],
    ) -> None:
        """Replay stored candidates of `metas` (each has an `id`), generate the rest with `request(meta)`,
        and decide each new one in order: `parse` gives its text (and a parse failure); the pool decides."""
        todo = []
        for i, meta in enumerate(metas):
            if meta["id"] in stored:
                self.replay(stored[meta["id"]])
            else:
                todo.append(i)

        def handle(j: int, gen: Generation) -> None:
            meta = metas[todo[j]]
            row: dict[str, Any] = {**base, **meta, **generation_fields(gen), "decision_order": self.order}
            self.order += 1
            if not gen.ok:
                row.update(self.pool.nearest_fields(""), status="error", reason=gen.error or gen.finish_reason,
                           filter_reason=None, text="")  # fmt: skip
            else:
                text, prior = parse(gen)
                row.update(self.pool.decide(text, prior, meta["id"]))
                row["text"] = text
            if row["status"] == "kept" and self.on_kept is not None:
                self.on_kept(row)
            self.writer.add(row)
            self.rows.append(row)
            self.tracker.row_done(error=row["status"] == "error")

        generate_in_order(self.backend, [request(metas[i]) for i in todo], handle, self.tracker, self.cancel)
        self.writer.flush()
