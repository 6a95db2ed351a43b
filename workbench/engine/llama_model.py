"""A loaded GGUF model and its contexts, through llama-cpp-python's low-level (ctypes) API.

Everything that could make llama.cpp abort the process is checked here first: the file header
(`gguf.read_gguf_header`), context sizes, and token ids.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import os
import threading
from pathlib import Path

import llama_cpp as lc
import numpy as np

from .chat import render_chat
from .cpu_safety import BufferPolicy, PolicyVerdict, apply_policy, choose_policy
from .errors import EngineError, ModelFileError
from .gguf import GGUFInfo, file_sha256, read_gguf_header
from .params import GenerationRequest

_LOG_LINES: collections.deque[str] = collections.deque(maxlen=200)
_LOG_LOCK = threading.Lock()
_VERBOSE = os.environ.get("WORKBENCH_LLAMA_VERBOSE") == "1"
_backend_ready = False
_LOG_FD: int | None = None  # the engine process also writes llama.cpp's log to a file its owner can read


def set_log_file(path: str | os.PathLike[str]) -> None:
    """Also append every llama.cpp log line to `path` (unbuffered, so it survives a native crash)."""
    global _LOG_FD
    _LOG_FD = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


_LOG_COUNT = 0


@lc.llama_log_callback
def _log_callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    # llama.cpp logs a lot to stderr; keep it for error messages instead of flooding the notebook.
    global _LOG_COUNT
    line = text.decode("utf-8", errors="replace")
    with _LOG_LOCK:
        _LOG_LINES.append(line)
        _LOG_COUNT += 1
    if _LOG_FD is not None:
        os.write(_LOG_FD, text)
    if _VERBOSE:
        os.write(2, text)


def recent_log(n: int = 12) -> str:
    """The last lines llama.cpp logged (used to explain a failure)."""
    with _LOG_LOCK:
        lines = [ln.strip() for ln in list(_LOG_LINES)[-n:] if ln.strip()]
    return "\n".join(lines)


def log_mark() -> int:
    """A position in llama.cpp's log, to read only what one call logged (`log_since`)."""
    with _LOG_LOCK:
        return _LOG_COUNT


def log_since(mark: int) -> str:
    with _LOG_LOCK:
        n = min(_LOG_COUNT - mark, len(_LOG_LINES))
        lines = list(_LOG_LINES)[len(_LOG_LINES) - n :] if n > 0 else []
    return "\n".join(ln.strip() for ln in lines if ln.strip())


def _ensure_backend() -> None:
    global _backend_ready
    if not _backend_ready:
        lc.llama_log_set(_log_callback, ctypes.c_void_p(0))
        lc.llama_backend_init()
        _backend_ready = True


class LlamaModel:
    """Model weights + vocabulary. Contexts are created per use (generation, embeddings).

    `buffer_policy` (see `cpu_safety`): None asks `choose_policy`, which self-checks this CPU once and
    never returns a setting known to crash it. `vocab_only=True` loads the vocabulary and chat template
    without weights (tokenizing needs no compute, so it is safe in any process)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        buffer_policy: BufferPolicy | None = None,
        vocab_only: bool = False,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self.info: GGUFInfo = read_gguf_header(self.path)
        _ensure_backend()
        self.verdict: PolicyVerdict | None = None
        if buffer_policy is None and not vocab_only:
            self.verdict = choose_policy(self.path)
            buffer_policy = self.verdict.policy
        self.buffer_policy: BufferPolicy = buffer_policy or "no_extra_bufts"
        mparams = apply_policy(lc.llama_model_default_params(), self.buffer_policy)
        mparams.n_gpu_layers = 0
        mparams.vocab_only = vocab_only
        model = lc.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not model:
            raise ModelFileError(f"llama.cpp could not load {self.path}:\n{recent_log()}")
        self.model = model
        vocab = lc.llama_model_get_vocab(model)
        if not vocab:
            raise ModelFileError(f"{self.path} has no vocabulary")
        self.vocab = vocab
        self.n_vocab = lc.llama_vocab_n_tokens(vocab)
        self.n_embd = lc.llama_model_n_embd(model)
        self.n_ctx_train = lc.llama_model_n_ctx_train(model)
        self.add_bos = bool(lc.llama_vocab_get_add_bos(vocab))
        self.bos_id = lc.llama_vocab_bos(vocab)
        self.eos_id = lc.llama_vocab_eos(vocab)
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}
        tmpl = lc.llama_model_chat_template(model, None)
        self.chat_template: str | None = tmpl.decode("utf-8", errors="replace") if tmpl else None
        self.bos_text = self.piece(self.bos_id, special=True).decode("utf-8", "replace") if self.bos_id >= 0 else ""
        self.eos_text = self.piece(self.eos_id, special=True).decode("utf-8", "replace") if self.eos_id >= 0 else ""

    # -- tokens --------------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (lc.llama_token * cap)()
        n = lc.llama_tokenize(self.vocab, data, len(data), buf, cap, add_bos and self.add_bos, special)
        if n < 0:  # buffer too small: -n is the size needed
            cap = -n
            buf = (lc.llama_token * cap)()
            n = lc.llama_tokenize(self.vocab, data, len(data), buf, cap, add_bos and self.add_bos, special)
        if n < 0:
            raise EngineError(f"tokenization failed for a text of {len(data)} bytes")
        return list(buf[:n])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """Bytes of one token (cached: the hot decode loop calls this for every token)."""
        if not special and token in self._pieces:
            return self._pieces[token]
        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
        out = buf.raw[:n]
        if not special:
            self._pieces[token] = out
        return out

    @functools.cached_property
    def vocab_ids(self) -> np.ndarray:
        """0..n_vocab-1 as int32 (the id column of a full candidate array)."""
        return np.arange(self.n_vocab, dtype=np.int32)

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        hit = self._eog.get(token)
        if hit is None:
            hit = self._eog[token] = bool(lc.llama_vocab_is_eog(self.vocab, token))
        return hit

    # -- contexts ------------------------------------------------------------------------------
    def new_context(
        self,
        *,
        n_seq: int,
        n_ctx_per_seq: int,
        n_batch: int,
        n_threads: int,
        embeddings: bool = False,
    ) -> lc.llama_context_p:
        check_sizes(n_parallel=n_seq, n_ctx_per_seq=n_ctx_per_seq)
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = n_seq * n_ctx_per_seq
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        # One KV stream per sequence: attention then only reads its own cells (2x faster at 64
        # sequences here). A row's numbers still depend on its batch neighbours through the matmul
        # kernels (README, "Determinism").
        cparams.kv_unified = False
        cparams.no_perf = True
        if embeddings:
            cparams.embeddings = True
            cparams.pooling_type = lc.LLAMA_POOLING_TYPE_MEAN
        ctx = lc.llama_init_from_model(self.model, cparams)
        if not ctx:
            raise EngineError(f"llama.cpp could not create a context ({n_seq} x {n_ctx_per_seq}):\n{recent_log()}")
        return ctx

    def close(self) -> None:
        if getattr(self, "model", None):
            lc.llama_model_free(self.model)
            self.model = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def check_sizes(*, n_parallel: int | None = None, n_ctx_per_seq: int | None = None, n_batch: int | None = None) -> None:
    """Reject context sizes llama.cpp would abort on (each checked when given)."""
    if n_parallel is not None and not 1 <= n_parallel <= 256:
        raise ValueError(f"n_parallel must be between 1 and 256, got {n_parallel}")
    if n_ctx_per_seq is not None and n_ctx_per_seq < 64:
        raise ValueError(f"n_ctx_per_seq must be at least 64, got {n_ctx_per_seq}")
    if n_batch is not None and n_batch < 32:
        raise ValueError(f"n_batch must be at least 32, got {n_batch}")


def render_request(model: LlamaModel, req: GenerationRequest) -> tuple[str, bool]:
    """The exact text a request sends to `model`, and whether it already carries BOS."""
    if req.messages is None:
        assert req.prompt is not None
        return req.prompt, False
    text = render_chat(
        model.chat_template,
        req.messages,
        bos_token=model.bos_text,
        eos_token=model.eos_text,
        model_name=model.path.name,
    )
    return text, bool(model.bos_text) and text.startswith(model.bos_text)


class ModelFileIdentity:
    """What a backend over one local `LlamaModel` says about itself, in or out of an engine process."""

    model: LlamaModel
    _sha: str | None = None

    @property
    def name(self) -> str:
        return self.model.path.name

    @property
    def model_id(self) -> str:
        if self._sha is None:
            self._sha = file_sha256(self.model.path)
        return self._sha

    @property
    def chat_template(self) -> str | None:
        return self.model.chat_template

    @property
    def path(self) -> Path:
        return self.model.path

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text, add_bos=False))

    def render_prompt(self, req: GenerationRequest) -> tuple[str, bool]:
        """The exact text sent to the model, and whether it already carries BOS."""
        return render_request(self.model, req)
