"""Shared prompt prefixes: found among the rows of a call, computed once, kept between calls.

Rows of a judge run (or of a few-shot generation) start with the same long text. Before decoding, the
engine groups the call's rows by their common token prefix (`plan_groups`), computes each group's prefix
once, *alone* in its sequence and in fixed chunks of `CHUNK` tokens starting at position 0, and copies the
resulting KV cells into every row of the group (`llama_state_seq_set_data`: a copy of that prefix's cells
only, which needs no graph re-reserve, unlike a cross-stream `llama_memory_seq_cp`).

Why alone and in fixed chunks: llama.cpp's CPU kernels round differently for different batch shapes, so
the same prefix computed beside other rows gives other bits. Computed this canonical way, a prefix's cells
are a function of its tokens only, and the cells of its first k chunks are the same whatever follows them.
So a prefix kept from an earlier call (`PrefixCache`, LRU, bounded in tokens and entries) gives exactly
the bits the current call would compute: texts are identical with and without the cache (tested on the
real model), and a longer cached prefix serves any shorter one, cut at a chunk boundary.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import llama_cpp as lc

if TYPE_CHECKING:
    from .llama import InProcessLlamaBackend, _Row

CHUNK = 32  # tokens per canonical prefill step; a group shares at least one chunk


@dataclass
class PrefixStats:
    """Prompt-token accounting of one generate call (or, summed, of a backend's life)."""

    prompt_tokens: int = 0
    """Prompt tokens of all rows."""
    prefill_tokens: int = 0
    """Prompt tokens actually decoded (group prefixes once, plus every row's own remainder)."""
    copied_tokens: int = 0
    """Prompt tokens rows took from their group's prefix instead of decoding them."""
    cache_tokens: int = 0
    """Group-prefix tokens taken from the cache of earlier calls (so not decoded in this call either)."""
    groups: int = 0
    """Shared prefixes found in the call."""

    @property
    def reused_tokens(self) -> int:
        """Prompt tokens not decoded in this call: prompt_tokens - prefill_tokens."""
        return self.prompt_tokens - self.prefill_tokens

    def add(self, other: PrefixStats) -> None:
        for name in ("prompt_tokens", "prefill_tokens", "copied_tokens", "cache_tokens", "groups"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "reused_tokens": self.reused_tokens}


@dataclass
class SeqState:
    """The serialized KV cells of one sequence (positions 0..n_tokens-1), host memory."""

    tokens: tuple[int, ...]
    data: ctypes.Array[ctypes.c_uint8] = field(repr=False)

    @property
    def nbytes(self) -> int:
        return len(self.data)


def save_seq(ctx: lc.llama_context_p, seq: int, tokens: Sequence[int]) -> SeqState:
    size = lc.llama_state_seq_get_size(ctx, seq)
    buf = (ctypes.c_uint8 * size)()
    n = lc.llama_state_seq_get_data(ctx, buf, size, seq)
    if n != size:
        raise RuntimeError(f"llama_state_seq_get_data wrote {n} of {size} bytes")
    return SeqState(tuple(tokens), buf)


def load_seq(ctx: lc.llama_context_p, memory: lc.llama_memory_t, state: SeqState, seq: int, keep: int) -> None:
    """Put `state`'s cells into the (cleared) sequence `seq`, keeping the first `keep` positions."""
    lc.llama_memory_seq_rm(memory, seq, -1, -1)
    if not lc.llama_state_seq_set_data(ctx, state.data, len(state.data), seq):
        raise RuntimeError("llama_state_seq_set_data could not place a cached prefix (KV cache full?)")
    if keep < len(state.tokens):
        lc.llama_memory_seq_rm(memory, seq, keep, -1)


def common_prefix(a: Sequence[int], b: Sequence[int], limit: int | None = None) -> int:
    n = min(len(a), len(b)) if limit is None else min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_groups(prompts: Sequence[Sequence[int]], chunk: int = CHUNK) -> dict[int, tuple[int, ...]]:
    """Row index → the prefix it shares with at least one other row (a multiple of `chunk` tokens, and
    shorter than the row so that its last prompt token is still decoded for logits). Rows sharing less
    than one chunk get none. A function of the prompts only, so the same call always groups the same way.

    Sorted prompts form runs of neighbours sharing >= one chunk; a run is split at its weakest link
    while that saves more prompt tokens ((members - 1) x prefix length, summed over groups)."""
    order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))

    def limit(i: int) -> int:
        return (len(prompts[i]) - 1) // chunk * chunk

    links = [
        common_prefix(prompts[a], prompts[b], min(limit(a), limit(b))) // chunk * chunk
        for a, b in itertools.pairwise(order)
    ]
    out: dict[int, tuple[int, ...]] = {}

    def value(lo: int, hi: int) -> int:  # rows order[lo..hi] sharing min(links[lo:hi])
        return (hi - lo) * min(links[lo:hi]) if hi > lo else 0

    stack = [(0, len(order) - 1)]
    while stack:  # not recursive: a long run of unrelated prompts would split thousands deep
        lo, hi = stack.pop()
        if hi <= lo:
            continue
        weakest = min(range(lo, hi), key=lambda k: links[k])
        # Refining a huge run (10k rows of one rubric) is quadratic at worst; it rarely pays there.
        refine = hi - lo <= 4096 and value(lo, weakest) + value(weakest + 1, hi) >= value(lo, hi)
        if links[weakest] < chunk or refine:
            stack += [(lo, weakest), (weakest + 1, hi)]
            continue
        prefix = tuple(prompts[order[lo]][: links[weakest]])
        for k in range(lo, hi + 1):
            out[order[k]] = prefix
    return out


def check_cache_options(prefix_cache_tokens: object, prefix_cache_entries: object) -> None:
    """Reject backend options that would fail later or be silently ignored (recipes come from YAML, so a
    quoted "4096" or a size below one chunk is a likely mistake). 0 for either turns the cache off."""
    for name, value in (("prefix_cache_tokens", prefix_cache_tokens), ("prefix_cache_entries", prefix_cache_entries)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number (0 turns the prefix cache off), got {value!r}")
    assert isinstance(prefix_cache_tokens, int) and isinstance(prefix_cache_entries, int)
    if prefix_cache_tokens != 0 and prefix_cache_tokens < CHUNK:  # below one chunk nothing could be kept
        raise ValueError(f"prefix_cache_tokens must be 0 (no cache) or at least {CHUNK} (one chunk of prefix), "
                         f"got {prefix_cache_tokens}")
    if prefix_cache_entries < 0:
        raise ValueError(f"prefix_cache_entries must be 0 (no cache) or more, got {prefix_cache_entries}")


class PrefixCache:
    """Canonical prefix states kept between calls: LRU, at most `max_tokens` tokens and `max_entries`
    entries (each entry costs its tokens x the model's KV bytes per token of host memory)."""

    def __init__(self, max_tokens: int, max_entries: int = 8, chunk: int = CHUNK) -> None:
        if max_tokens < 0 or max_entries < 0:
            raise ValueError(f"prefix cache sizes must be >= 0, got {max_tokens} tokens, {max_entries} entries")
        self.max_tokens, self.max_entries, self.chunk = max_tokens, max_entries, chunk
        self._entries: OrderedDict[tuple[int, ...], SeqState] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_tokens >= self.chunk and self.max_entries > 0

    @property
    def tokens(self) -> int:
        return sum(len(k) for k in self._entries)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, prefix: Sequence[int]) -> tuple[SeqState | None, int]:
        """The entry sharing the most whole chunks with `prefix`, and how many tokens (0: none).
        A hit becomes the most recently used entry."""
        best, best_n = None, 0
        for key in self._entries:
            n = common_prefix(key, prefix) // self.chunk * self.chunk
            if n > best_n:
                best, best_n = key, n
        if best is None:
            return None, 0
        self._entries.move_to_end(best)
        return self._entries[best], best_n

    def store(self, state: SeqState) -> None:
        """Keep `state` (a canonically computed prefix), dropping entries it extends and the least
        recently used ones beyond the bounds."""
        key = state.tokens
        if not self.enabled or len(key) > self.max_tokens:
            return
        for old in [k for k in self._entries if len(k) <= len(key) and key[: len(k)] == k]:
            del self._entries[old]  # a prefix of the new one: the new one serves it bit for bit
        if any(len(k) > len(key) and k[: len(key)] == key for k in self._entries):
            return  # already served by a longer entry
        self._entries[key] = state
        while len(self._entries) > self.max_entries or self.tokens > self.max_tokens:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def share_prefixes(
    backend: InProcessLlamaBackend, rows: list[_Row], stats: PrefixStats, cancel: threading.Event | None
) -> None:
    """Give every row that shares a prefix with another row of this call that prefix's KV state."""
    if len(rows) < 2:
        return
    plan = plan_groups([r.tokens for r in rows])
    states: dict[tuple[int, ...], SeqState | None] = {}
    for prefix in dict.fromkeys(plan[i] for i in sorted(plan)):
        if cancel is not None and cancel.is_set():
            return
        states[prefix] = canonical_prefix(backend, prefix, stats)
    for i, row in enumerate(rows):
        row.shared = states.get(plan[i]) if i in plan else None
        if row.shared is not None:
            stats.copied_tokens += len(row.shared.tokens)
    stats.groups += sum(1 for st in states.values() if st is not None)


def canonical_prefix(backend: InProcessLlamaBackend, prefix: tuple[int, ...], stats: PrefixStats) -> SeqState | None:
    """`prefix`'s KV state computed alone in sequence 0, CHUNK tokens per decode from position 0 (or
    continued from the longest cached prefix, which has the same bits); None if a decode failed."""
    cached, n = backend.prefix_cache.lookup(prefix) if backend.prefix_cache.enabled else (None, 0)
    n = min(n, len(prefix))
    if cached is not None and n == len(prefix) == len(cached.tokens):
        stats.cache_tokens += n
        return cached
    seq = 0  # every slot is free before the decode loop starts
    lc.llama_memory_seq_rm(backend.memory, seq, -1, -1)
    if cached is not None:
        load_seq(backend.ctx, backend.memory, cached, seq, n)
        stats.cache_tokens += n
    try:
        for start in range(n, len(prefix), CHUNK):
            chunk = prefix[start : start + CHUNK]
            for k, tok in enumerate(chunk):
                backend._add(k, tok, start + k, seq, False)
            backend._batch.n_tokens = len(chunk)
            if lc.llama_decode(backend.ctx, backend._batch) != 0:
                return None  # the rows then compute their prompts themselves
            stats.prefill_tokens += len(chunk)
        state = save_seq(backend.ctx, seq, prefix)
    finally:
        lc.llama_memory_seq_rm(backend.memory, seq, -1, -1)
    backend.prefix_cache.store(state)
    return state
