"""Stream compaction: keep the rows still generating in the lowest-numbered sequences of the engine.

Used by `InProcessLlamaBackend.generate` (llama.py) once its queue is empty; `slots` are its `_Slot`s (a
dataclass with `seq`, `row`, `pos`, `sampler`, ... : every field but `seq` moves with the row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import llama_cpp as lc

from .prefix_cache import load_seq, save_seq

__all__ = ["compact_slots", "move_row"]


def compact_slots(ctx: lc.llama_context_p, memory: lc.llama_memory_t, slots: Sequence[Any]) -> None:
    """Move the rows in the highest-numbered slots into free lower ones, so the active rows are
    sequences 0..k-1 with no gaps.

    Why: with one KV stream per sequence, llama.cpp puts only consecutive sequence ids into one
    ubatch (`split_equal(..., sequential=true)`), so every gap left by a finished row costs the step
    another pass over the weights (measured: a step over 17 scattered rows 0.23 s, over 16 rows in
    seqs 0..15 0.094 s). Once the queue is empty nothing else refills those gaps.

    A row's cells are copied exactly and in order (`llama_state_seq_*`: only that sequence's cells, so
    no graph re-reserve, unlike a cross-stream `llama_memory_seq_cp`) and its Python state moves with
    it. Its text can still change the way any change of batch neighbours changes it (README,
    "Determinism"): llama.cpp's CPU matmul kernels depend on the rows in a ubatch and a row's place
    in it. With row-independent kernels texts are byte-identical on and off (tested)."""
    lo, hi = 0, len(slots) - 1
    while True:
        while lo < hi and slots[lo].row is not None:
            lo += 1
        while hi > lo and slots[hi].row is None:
            hi -= 1
        if lo >= hi or not move_row(ctx, memory, slots[hi], slots[lo]):
            return


def move_row(ctx: lc.llama_context_p, memory: lc.llama_memory_t, src: Any, dst: Any) -> bool:
    """Move `src`'s row (KV cells and state) into the free slot `dst`; False (nothing moved) if
    llama.cpp could not place the cells, which leaves the row generating where it was."""
    if src.pos > 0:  # a row that has decoded nothing yet has no cells to copy
        try:  # the prefix cache's own copy of a sequence's cells, all of them (keep=0 trims nothing)
            load_seq(ctx, memory, save_seq(ctx, src.seq, ()), dst.seq, 0)
        except RuntimeError:
            lc.llama_memory_seq_rm(memory, dst.seq, -1, -1)
            return False
    lc.llama_memory_seq_rm(memory, src.seq, -1, -1)
    for name in type(src).__dataclass_fields__:
        if name != "seq":
            setattr(dst, name, getattr(src, name))
    src.row, src.sampler, src.decoder, src.logprobs = None, None, None, None  # dst owns the sampler now
    return True
