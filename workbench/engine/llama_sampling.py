"""Per-sequence sampling with native llama.cpp sampler chains, grammar checked after sampling.

Unconstrained rows use `llama_sampler_sample` (all in C). Grammar rows follow llama.cpp's own server:
sample from the chain first, test only the chosen token against the grammar, and only when it is
rejected apply the grammar to the whole vocabulary and sample again. Applying a grammar to the 262k
vocabulary of every step is what makes llama-cpp-python's high-level grammar path slow.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import tempfile
from collections.abc import Iterator

import llama_cpp as lc
import numpy as np

from .errors import GrammarError
from .llama_model import LlamaModel, log_mark, log_since
from .params import SamplingParams
from .results import TokenLogprob

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _TOKEN_DATA.itemsize == ctypes.sizeof(lc.llama_token_data)


def grammar_text(params: SamplingParams) -> str | None:
    """The GBNF a request asks for (a JSON schema is converted to GBNF)."""
    if params.grammar is not None:
        return params.grammar
    if params.json_schema is not None:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        try:
            return json_schema_to_gbnf(json.dumps(params.json_schema))
        except Exception as exc:
            raise GrammarError(f"the JSON schema could not be turned into a grammar: {exc}") from exc
    return None


@contextlib.contextmanager
def _c_stderr_captured() -> Iterator[list[str]]:
    """Capture what C code writes to file descriptor 2 (llama.cpp's grammar parser reports its
    errors with fprintf(stderr), not through the log callback)."""
    lines: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def compile_grammar(model: LlamaModel, gbnf: str) -> lc.llama_sampler_p:
    """A grammar sampler, or GrammarError with llama.cpp's parse message."""
    if not gbnf.strip():
        raise GrammarError("the grammar is empty; give GBNF rules with a `root` rule")
    mark = log_mark()
    with _c_stderr_captured() as parser_output:
        smpl = lc.llama_sampler_init_grammar(model.vocab, gbnf.encode("utf-8"), b"root")
    if not smpl:
        said = [ln for ln in parser_output if ln.strip()] + [log_since(mark)]
        detail = "\n".join(ln for ln in said if ln)[-1500:]
        raise GrammarError(f"the grammar does not compile (it needs a `root` rule and valid GBNF):\n{detail}")
    return smpl


class SequenceSampler:
    """The sampler state of one row: a native chain, an optional grammar, a reusable candidate buffer."""

    def __init__(self, model: LlamaModel, params: SamplingParams, gbnf: str | None) -> None:
        self.model = model
        self.params = params
        cp = lc.llama_sampler_chain_default_params()
        cp.no_perf = True
        chain = lc.llama_sampler_chain_init(cp)
        self._stateless_accept = not (params.repeat_penalty != 1.0 and params.repeat_last_n != 0)
        if not self._stateless_accept:
            lc.llama_sampler_chain_add(
                chain,
                lc.llama_sampler_init_penalties(model.n_vocab, params.repeat_last_n, params.repeat_penalty, 0.0, 0.0),
            )
        if params.temperature <= 0.0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_min_p(params.min_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(params.temperature))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(params.seed))
        self.chain = chain
        self.grammar = compile_grammar(model, gbnf) if gbnf is not None else None
        self._cand: np.ndarray | None = None
        self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self.grammar_resamples = 0

    def _array(self, buf: np.ndarray) -> lc.llama_token_data_array:
        return lc.llama_token_data_array(
            data=buf.ctypes.data_as(lc.llama_token_data_p), size=len(buf), selected=-1, sorted=False
        )

    def _full_candidates(self, logits: np.ndarray) -> np.ndarray:
        if self._cand is None:
            self._cand = np.zeros(self.model.n_vocab, dtype=_TOKEN_DATA)
        cand = self._cand
        cand["id"] = self.model.vocab_ids  # samplers reorder the buffer in place: reset the ids
        cand["logit"] = logits
        cand["p"] = 0.0
        return cand

    def _apply_chain(self, cand: np.ndarray) -> int:
        arr = self._array(cand)
        lc.llama_sampler_apply(self.chain, ctypes.byref(arr))
        if arr.selected < 0:
            raise GrammarError("sampling found no allowed token (the grammar may be unsatisfiable)")
        return int(cand[arr.selected]["id"])

    def _grammar_allows(self, token: int) -> bool:
        assert self.grammar is not None
        one = self._one
        one["id"], one["logit"], one["p"] = token, 1.0, 0.0
        arr = self._array(one)
        lc.llama_sampler_apply(self.grammar, ctypes.byref(arr))
        return bool(np.isfinite(one["logit"][0]))

    def sample(self, ctx: lc.llama_context_p, idx: int) -> int:
        if self.grammar is None:
            return int(lc.llama_sampler_sample(self.chain, ctx, idx))  # accepts into the chain itself
        logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, idx), shape=(self.model.n_vocab,))
        if self._stateless_accept:
            # Without a penalty sampler, accepting a token the grammar then rejects changes no chain
            # state, so the all-C call may propose it.
            token = int(lc.llama_sampler_sample(self.chain, ctx, idx))
        else:
            token = self._apply_chain(self._full_candidates(logits))
        if not self._grammar_allows(token):
            # Rejected: mask the whole vocabulary with the grammar, then sample again from the chain.
            self.grammar_resamples += 1
            cand = self._full_candidates(logits)
            lc.llama_sampler_apply(self.grammar, ctypes.byref(self._array(cand)))
            token = self._apply_chain(cand)
        if not self._stateless_accept:
            lc.llama_sampler_accept(self.chain, token)
        # llama.cpp aborts if an end-of-generation token is accepted while the grammar is unfinished;
        # the row ends at such a token anyway, so it is never fed to the grammar.
        if not self.model.is_eog(token):
            lc.llama_sampler_accept(self.grammar, token)
        return token

    def free(self) -> None:
        if self.chain:
            lc.llama_sampler_free(self.chain)
            self.chain = None
        if self.grammar:
            lc.llama_sampler_free(self.grammar)
            self.grammar = None


def logits_and_logsumexp(model: LlamaModel, ctx: lc.llama_context_p, idx: int) -> tuple[np.ndarray, float]:
    """The raw logits of batch output `idx` (float64) and their log-sum-exp: log p(t) = logits[t] - lse."""
    logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, idx), shape=(model.n_vocab,)).astype(np.float64)
    m = logits.max()
    return logits, float(m + np.log(np.exp(logits - m).sum()))


def token_logprobs(model: LlamaModel, ctx: lc.llama_context_p, idx: int, token: int, top_n: int) -> TokenLogprob:
    """Log-probability of `token` under the model's raw distribution (temperature 1, no truncation),
    with the `top_n` most likely alternatives: what a judge's score distribution is read from."""
    logits, lse = logits_and_logsumexp(model, ctx, idx)
    top: list[tuple[str, float]] = []
    if top_n > 0:
        best = np.argpartition(logits, -top_n)[-top_n:]
        best = best[np.argsort(-logits[best])]
        top = [(model.piece(int(t)).decode("utf-8", "replace"), float(logits[t] - lse)) for t in best]
    return TokenLogprob(model.piece(token).decode("utf-8", "replace"), float(logits[token] - lse), top)
