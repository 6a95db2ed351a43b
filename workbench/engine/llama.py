"""In-process llama.cpp backend: continuous batching over many sequences with one `llama_decode` per step.

Each step feeds one token for every row that is generating plus chunks of waiting prompts (prefill)
up to `n_batch` tokens; a finished row frees its sequence slot for the next request at once. Prompt
prefixes that rows share are computed once per call, or taken from earlier calls (prefix_cache.py).
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import llama_cpp as lc
import numpy as np

from .cpu_safety import BufferPolicy
from .errors import EngineError
from .llama_model import LlamaModel, ModelFileIdentity, check_sizes, recent_log
from .llama_sampling import (
    SequenceSampler,
    compile_grammar,
    grammar_text,
    logits_and_logsumexp,
    token_logprobs,
)
from .params import GenerationRequest
from .prefix_cache import PrefixCache, PrefixStats, SeqState, check_cache_options, load_seq, share_prefixes
from .protocol import ProgressCallback, ResultCallback
from .results import Generation, Progress, TokenLogprob, TokenScores
from .stream_compaction import compact_slots

_PROGRESS_EVERY_S = 0.25


@dataclass
class _Row:
    index: int
    request: GenerationRequest
    prompt_text: str
    tokens: list[int]
    gbnf: str | None
    shared: SeqState | None = None  # the prefix this row shares with others (computed before the loop)


@dataclass
class _Slot:
    seq: int
    row: _Row | None = None
    sampler: SequenceSampler | None = None
    fed: int = 0  # prompt tokens already decoded
    pos: int = 0
    next_token: int | None = None  # sampled, not yet decoded
    out_tokens: list[int] = field(default_factory=list)
    text: str = ""
    decoder: codecs.IncrementalDecoder | None = None
    logprobs: list[TokenLogprob] | None = None
    started: float = 0.0


class InProcessLlamaBackend(ModelFileIdentity):
    """The Backend protocol on a local GGUF model, in this process.

    Users get `LlamaCppBackend` (llama_process.py), which runs this class in an engine process of its own
    so that a native crash cannot take the caller down."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_parallel: int | None = None,
        n_ctx_per_seq: int = 1024,
        n_batch: int = 512,
        n_threads: int | None = None,
        buffer_policy: BufferPolicy | None = None,
        prefix_cache_tokens: int = 4096,
        prefix_cache_entries: int = 8,
        compact_streams: bool = True,
    ) -> None:
        """`prefix_cache_tokens` / `prefix_cache_entries` bound the shared prompt prefixes kept between
        calls (host memory: tokens x the model's KV bytes per token, ~18 KB for Gemma 3 270M); 0 keeps
        none (a call still shares prefixes among its own rows). Texts are the same either way.

        `compact_streams` keeps the rows still generating in the lowest-numbered sequences once no
        request is left to fill a finished row's slot (see `stream_compaction.py`; 1.4-1.6x the tokens/s on 32
        self-instruct completions, tests/benchmarks/bench_compaction.py); False leaves rows where they
        started (for A/B measurements and tests)."""
        check_sizes(n_batch=n_batch)
        check_cache_options(prefix_cache_tokens, prefix_cache_entries)
        self.prefix_cache = PrefixCache(prefix_cache_tokens, prefix_cache_entries)
        self.prefix_stats = PrefixStats()  # summed over calls
        self.last_prefix_stats = PrefixStats()
        self.model = LlamaModel(path, buffer_policy=buffer_policy)
        if n_parallel is None:
            n_parallel = auto_parallel(self.model.info.metadata, n_ctx_per_seq)
        self.n_parallel = n_parallel
        self.n_batch = n_batch
        self.compact_streams = compact_streams
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.ctx = self.model.new_context(
            n_seq=n_parallel, n_ctx_per_seq=n_ctx_per_seq, n_batch=n_batch, n_threads=self.n_threads
        )
        self.n_ctx_seq = lc.llama_n_ctx_seq(self.ctx)
        self.memory = lc.llama_get_memory(self.ctx)
        self._embed_ctx: lc.llama_context_p | None = None
        self._lock = threading.Lock()
        self._batch = lc.llama_batch_init(n_batch, 0, 1)
        self._sampler_pool = ThreadPoolExecutor(self.n_threads, thread_name_prefix="workbench-sample")
        self._b_token = np.ctypeslib.as_array(self._batch.token, shape=(n_batch,))
        self._b_pos = np.ctypeslib.as_array(self._batch.pos, shape=(n_batch,))
        self._b_logits = np.ctypeslib.as_array(self._batch.logits, shape=(n_batch,))
        for i in range(n_batch):
            self._batch.n_seq_id[i] = 1

    # -- requests → rows (identity, count_tokens, render_prompt: ModelFileIdentity) ------------

    def _prepare(self, requests: Sequence[GenerationRequest]) -> tuple[list[_Row], dict[int, Generation]]:
        rows, errors = [], {}
        compiled: set[str] = set()
        for i, req in enumerate(requests):
            if not isinstance(req, GenerationRequest):
                raise TypeError(f"requests[{i}] is a {type(req).__name__}; build it with GenerationRequest(...)")
            gbnf = grammar_text(req.params)
            if gbnf is not None and gbnf not in compiled:
                lc.llama_sampler_free(compile_grammar(self.model, gbnf))  # fail fast, before any decoding
                compiled.add(gbnf)
            text, has_bos = self.render_prompt(req)  # NoChatTemplateError for chat on a base model
            special = req.kind == "chat" if req.parse_special is None else req.parse_special
            tokens = self.model.tokenize(text, add_bos=req.add_bos and not has_bos, special=special)
            if not tokens:
                tokens = [self.model.bos_id] if self.model.bos_id >= 0 else []
            if not tokens:
                errors[i] = Generation(req.key, "", "error", error="empty prompt", prompt_text=text)
            elif len(tokens) >= self.n_ctx_seq:
                errors[i] = Generation(
                    req.key, "", "error", prompt_tokens=len(tokens), prompt_text=text,
                    error=(
                        f"prompt is {len(tokens)} tokens but each sequence holds {self.n_ctx_seq}: shorten it "
                        "or load the model with a larger n_ctx_per_seq"
                    ),
                )
            else:
                rows.append(_Row(i, req, text, tokens, gbnf))
        return rows, errors

    # -- generation ----------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        rows, results = self._prepare(requests)
        total = len(requests)
        t0 = time.perf_counter()
        state: dict[str, float] = {"tokens": 0, "last": 0.0}

        def finish(i: int, gen: Generation) -> None:
            results[i] = gen
            if on_result is not None:
                on_result(i, gen)

        for i, gen in sorted(results.items()):
            if on_result is not None:
                on_result(i, gen)

        def report(force: bool = False) -> None:
            now = time.perf_counter()
            if on_progress is not None and (force or now - state["last"] >= _PROGRESS_EVERY_S):
                state["last"] = now
                n_err = sum(1 for g in results.values() if g.finish_reason == "error")
                on_progress(Progress(len(results), total, int(state["tokens"]), now - t0, n_err))

        with self._lock:
            stats = PrefixStats(prompt_tokens=sum(len(r.tokens) for r in rows))
            if self.n_parallel > 1:  # n_parallel=1 promises texts that do not depend on the other requests
                share_prefixes(self, rows, stats, cancel)
            queue = deque(rows)
            slots = [_Slot(seq=s) for s in range(self.n_parallel)]
            try:
                while queue or any(s.row for s in slots):
                    if cancel is not None and cancel.is_set():
                        break
                    for slot in slots:
                        if slot.row is None and queue:
                            self._start(slot, queue.popleft())
                    if self.compact_streams and not queue:
                        compact_slots(self.ctx, self.memory, slots)
                    state["tokens"] += self._step(slots, finish, stats)
                    report()
            finally:
                for slot in slots:
                    if slot.row is not None:
                        finish(slot.row.index, self._result(slot, "cancelled"))
                        self._release(slot)
                for row in queue:
                    finish(row.index, Generation(row.request.key, "", "cancelled", prompt_text=row.prompt_text))
                self.last_prefix_stats = stats
                self.prefix_stats.add(stats)
        report(force=True)
        return [results[i] for i in range(total)]

    def _start(self, slot: _Slot, row: _Row) -> None:
        lc.llama_memory_seq_rm(self.memory, slot.seq, -1, -1)
        slot.row, slot.fed, slot.pos, slot.next_token = row, 0, 0, None
        if row.shared is not None:  # its shared prefix's cells, copied (only those cells: no graph re-reserve)
            load_seq(self.ctx, self.memory, row.shared, slot.seq, len(row.shared.tokens))
            slot.fed = slot.pos = len(row.shared.tokens)
        slot.sampler = SequenceSampler(self.model, row.request.params, row.gbnf)
        slot.out_tokens, slot.text = [], ""
        slot.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        slot.logprobs = [] if row.request.params.logprobs is not None else None
        slot.started = time.perf_counter()

    def _release(self, slot: _Slot) -> None:
        if slot.sampler is not None:
            slot.sampler.free()
        slot.row, slot.sampler = None, None
        lc.llama_memory_seq_rm(self.memory, slot.seq, -1, -1)

    def _result(self, slot: _Slot, reason: str, error: str | None = None) -> Generation:
        assert slot.row is not None
        return Generation(
            key=slot.row.request.key,
            text=slot.text,
            finish_reason=reason,  # type: ignore[arg-type]
            prompt_tokens=len(slot.row.tokens),
            completion_tokens=len(slot.out_tokens),
            seconds=time.perf_counter() - slot.started,
            error=error,
            logprobs=slot.logprobs,
            prompt_text=slot.row.prompt_text,
        )

    def _add(self, n: int, token: int, pos: int, seq: int, logits: bool) -> None:
        self._b_token[n] = token
        self._b_pos[n] = pos
        self._batch.seq_id[n][0] = seq
        self._b_logits[n] = 1 if logits else 0

    def _step(self, slots: list[_Slot], finish, stats: PrefixStats) -> int:
        """One llama_decode over every active row; returns how many tokens were generated."""
        n = 0
        outputs: list[tuple[_Slot, int]] = []
        for slot in slots:  # rows already generating: one token each
            if slot.row is not None and slot.next_token is not None:
                self._add(n, slot.next_token, slot.pos, slot.seq, True)
                outputs.append((slot, n))
                slot.pos += 1
                slot.next_token = None
                n += 1
        for slot in slots:  # then prompt chunks, as many as fit in this batch
            if slot.row is None or slot.fed >= len(slot.row.tokens) or n >= self.n_batch:
                continue
            take = min(len(slot.row.tokens) - slot.fed, self.n_batch - n)
            for k in range(take):
                last = slot.fed + k == len(slot.row.tokens) - 1
                self._add(n, slot.row.tokens[slot.fed + k], slot.pos, slot.seq, last)
                if last:
                    outputs.append((slot, n))
                slot.pos += 1
                n += 1
            slot.fed += take
            stats.prefill_tokens += take
        if n == 0:
            return 0
        self._batch.n_tokens = n
        ret = lc.llama_decode(self.ctx, self._batch)
        if ret != 0:
            detail = recent_log(4)
            for slot in slots:
                if slot.row is not None:
                    finish(slot.row.index, self._result(slot, "error", f"llama_decode failed ({ret}): {detail}"))
                    self._release(slot)
            return 0
        # Sampling reads the logits and runs each row's native chain; ctypes releases the GIL, so the
        # rows are sampled on all cores while llama.cpp is idle between steps. The first logits read
        # after a decode reorders llama.cpp's output buffer (a write), so it happens here, once.
        if outputs:
            lc.llama_get_logits_ith(self.ctx, outputs[0][1])
        sampled = self._sampler_pool.map(self._sample_safely, outputs) if len(outputs) > 8 else map(
            self._sample_safely, outputs
        )
        for (slot, idx), token in zip(outputs, list(sampled), strict=True):
            self._after_token(slot, idx, token, finish)
        return len(outputs)

    def _sample_safely(self, output: tuple[_Slot, int]) -> int | EngineError:
        slot, idx = output
        assert slot.sampler is not None
        try:
            return slot.sampler.sample(self.ctx, idx)
        except EngineError as exc:
            return exc

    def _after_token(self, slot: _Slot, idx: int, token: int | EngineError, finish) -> None:
        assert slot.row is not None and slot.sampler is not None and slot.decoder is not None
        params = slot.row.request.params
        if isinstance(token, EngineError):
            finish(slot.row.index, self._result(slot, "error", str(token)))
            self._release(slot)
            return
        if self.model.is_eog(token):
            finish(slot.row.index, self._result(slot, "stop"))
            self._release(slot)
            return
        if slot.logprobs is not None:
            slot.logprobs.append(token_logprobs(self.model, self.ctx, idx, token, params.logprobs or 0))
        slot.out_tokens.append(token)
        before = len(slot.text)
        slot.text += slot.decoder.decode(self.model.piece(token))
        for stop in params.stop:
            cut = slot.text.find(stop, max(0, before - len(stop) + 1))
            if cut >= 0:
                slot.text = slot.text[:cut]
                finish(slot.row.index, self._result(slot, "stop"))
                self._release(slot)
                return
        if len(slot.out_tokens) >= params.max_tokens or slot.pos >= self.n_ctx_seq:
            slot.text += slot.decoder.decode(b"", final=True)
            finish(slot.row.index, self._result(slot, "length"))
            self._release(slot)
            return
        slot.next_token = token

    # -- scoring: log-probabilities of given text --------------------------------------------
    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        if len(prompts) != len(continuations):
            raise ValueError(f"got {len(prompts)} prompts but {len(continuations)} continuations")
        items = []
        for i, (p, c) in enumerate(zip(prompts, continuations, strict=True)):
            ptoks = self.model.tokenize(p, add_bos=True)
            ctoks = self.model.tokenize(c, add_bos=False)
            if not ptoks:
                raise ValueError(f"prompts[{i}] is empty and the model has no BOS token to start from")
            if len(ptoks) + len(ctoks) > self.n_ctx_seq:
                raise ValueError(
                    f"item {i}: prompt + continuation are {len(ptoks) + len(ctoks)} tokens; each sequence "
                    f"holds {self.n_ctx_seq} (shorten the text or raise n_ctx_per_seq)"
                )
            items.append((ptoks, ctoks))
        out: list[TokenScores | None] = [None] * len(items)
        with self._lock:
            # One item per sequence slot; feed each whole (prompt+continuation) in batch-sized chunks and
            # read the logits of every position that predicts a continuation token.
            for start in range(0, len(items), self.n_parallel):
                group = list(enumerate(items[start : start + self.n_parallel]))
                for seq, _ in group:
                    lc.llama_memory_seq_rm(self.memory, seq, -1, -1)
                lps: dict[int, list[float]] = {seq: [] for seq, _ in group}
                feed = [(seq, p + c, len(p)) for seq, (p, c) in group]
                cursor = dict.fromkeys(lps, 0)
                while any(cursor[s] < len(toks) for s, toks, _ in feed):
                    n, wanted = 0, []
                    for seq, toks, n_prompt in feed:
                        while cursor[seq] < len(toks) and n < self.n_batch:
                            pos = cursor[seq]
                            need = n_prompt - 1 <= pos < len(toks) - 1
                            self._add(n, toks[pos], pos, seq, need)
                            if need:
                                wanted.append((seq, n, toks[pos + 1]))
                            cursor[seq] += 1
                            n += 1
                    self._batch.n_tokens = n
                    ret = lc.llama_decode(self.ctx, self._batch)
                    if ret != 0:
                        raise EngineError(f"llama_decode failed while scoring ({ret}): {recent_log(4)}")
                    for seq, idx, nxt in wanted:
                        logits, lse = logits_and_logsumexp(self.model, self.ctx, idx)
                        lps[seq].append(float(logits[nxt] - lse))
                for seq, (_, ctoks) in group:
                    pieces = [self.model.piece(t).decode("utf-8", "replace") for t in ctoks]
                    out[start + seq] = TokenScores(pieces, lps[seq])
                    lc.llama_memory_seq_rm(self.memory, seq, -1, -1)
        return [s for s in out if s is not None]

    # -- embeddings ----------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings (texts longer than 512 tokens are truncated)."""
        max_len, n_seq = 512, 8
        with self._lock:
            if self._embed_ctx is None:
                self._embed_ctx = self.model.new_context(
                    n_seq=n_seq, n_ctx_per_seq=max_len, n_batch=max_len * 2, n_threads=self.n_threads,
                    embeddings=True,
                )
            ctx = self._embed_ctx
            mem = lc.llama_get_memory(ctx)
            batch = lc.llama_batch_init(max_len * 2, 0, 1)
            out = np.zeros((len(texts), self.model.n_embd), dtype=np.float32)
            try:
                toks = [self.model.tokenize(t, add_bos=True)[:max_len] or [max(self.model.bos_id, 0)] for t in texts]
                i = 0
                while i < len(toks):
                    n, members = 0, list[tuple[int, int]]()
                    while i < len(toks) and len(members) < n_seq and n + len(toks[i]) <= max_len * 2:
                        seq = len(members)
                        for pos, t in enumerate(toks[i]):
                            batch.token[n], batch.pos[n], batch.n_seq_id[n] = t, pos, 1
                            batch.seq_id[n][0], batch.logits[n] = seq, 1
                            n += 1
                        members.append((i, seq))
                        i += 1
                    batch.n_tokens = n
                    lc.llama_memory_clear(mem, True)
                    ret = lc.llama_decode(ctx, batch)
                    if ret != 0:
                        raise EngineError(f"llama_decode failed while embedding ({ret}): {recent_log(4)}")
                    for row, seq in members:
                        vec = lc.llama_get_embeddings_seq(ctx, seq)
                        if not vec:
                            raise EngineError("this model returned no pooled embedding")
                        out[row] = np.ctypeslib.as_array(vec, shape=(self.model.n_embd,))
            finally:
                lc.llama_batch_free(batch)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self._sampler_pool.shutdown(wait=True)
        with self._lock:
            if getattr(self, "_batch", None) is not None:
                lc.llama_batch_free(self._batch)
                self._batch = None
            for attr in ("_embed_ctx", "ctx"):
                ctx = getattr(self, attr, None)
                if ctx:
                    lc.llama_free(ctx)
                    setattr(self, attr, None)
            self.model.close()

    def __repr__(self) -> str:
        return f"InProcessLlamaBackend({self.name!r}, n_parallel={self.n_parallel}, n_ctx_seq={self.n_ctx_seq})"


_KV_BUDGET_BYTES = 2 << 30


def auto_parallel(meta: dict, n_ctx_per_seq: int, *, budget: int = _KV_BUDGET_BYTES, cap: int = 32) -> int:
    """How many sequences to decode together: up to `cap`, as many as keep the f16 KV cache within
    `budget` (a 270M model gets 32; a 7B model with 1024 tokens per sequence about 16)."""
    arch = str(meta.get("general.architecture", ""))

    def num(key: str, default: float) -> float:
        v = meta.get(f"{arch}.{key}", default)
        if isinstance(v, list):  # per-layer values
            v = max(v) if v else default
        return float(v) if isinstance(v, (int, float)) else default

    n_layer = num("block_count", 32)
    n_head = num("attention.head_count", 32)
    n_head_kv = num("attention.head_count_kv", n_head)
    head_dim = num("attention.key_length", num("embedding_length", 4096) / max(n_head, 1))
    v_dim = num("attention.value_length", head_dim)
    per_token = n_layer * n_head_kv * (head_dim + v_dim) * 2
    return int(max(1, min(cap, budget // max(per_token * n_ctx_per_seq, 1))))

