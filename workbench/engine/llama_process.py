"""`LlamaCppBackend`: the in-process engine run in an engine process that the caller owns.

llama.cpp is native code: a segfault or an abort in it (a CPU it miscompiles for, a bad kernel, an assert)
ends whatever process it runs in. So the weights live in a child process (spawned, never forked, as vLLM's
engine core is), and the caller — a notebook kernel, the CLI — keeps only the vocabulary (tokenizing and
chat templates need no compute). The child is a fresh interpreter (`python -m workbench.engine.llama_process`)
talking over a pipe, so nothing in the caller's `__main__` is re-imported and scripts need no main guard.
Rows stream back as they finish, so a crash loses none that finished:
`generate` delivers them through `on_result`, then raises `EngineCrashed` with the signal and llama.cpp's
last log lines, and the next call starts a new engine process.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing.connection as mpc
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .cpu_safety import BufferPolicy, PolicyVerdict, choose_policy, describe_exit, provenance
from .errors import EngineCrashed, EngineError
from .llama_model import LlamaModel, ModelFileIdentity, check_sizes
from .params import GenerationRequest
from .prefix_cache import PrefixStats, check_cache_options
from .protocol import ProgressCallback, ResultCallback
from .results import Generation, TokenScores

_POLL_S = 0.05
_START_TIMEOUT_S = 300.0


class LlamaCppBackend(ModelFileIdentity):
    """The Backend protocol on a local GGUF model, decoded in an engine process of its own.

    Options are those of `InProcessLlamaBackend`: `n_parallel` (sequences decoded together; default from
    the model's KV size), `n_ctx_per_seq`, `n_batch`, `n_threads`, `buffer_policy` (default: the one
    `cpu_safety.choose_policy` finds safe on this CPU), and the bounds of the cache of shared prompt
    prefixes (a judge rubric, few-shot examples) kept between calls: `prefix_cache_tokens` (default 4096,
    ~18 KB each for Gemma 3 270M) and `prefix_cache_entries` (default 8); 0 for either turns it off. Texts
    are the same either way. `compact_streams` (default on) keeps the rows still generating in the lowest
    sequences once the queue is empty (faster; see `InProcessLlamaBackend`). `last_prefix_stats` (last generate call) and `prefix_stats` (summed, across
    engine restarts) count prompt tokens decoded, shared within a call and taken from the cache."""

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
        # Checked before a process is started (the engine process checks them again where they are used).
        check_sizes(n_parallel=n_parallel, n_ctx_per_seq=n_ctx_per_seq, n_batch=n_batch)
        check_cache_options(prefix_cache_tokens, prefix_cache_entries)
        if not isinstance(compact_streams, bool):
            raise ValueError(f"compact_streams must be true or false, got {compact_streams!r}")
        self.model = LlamaModel(path, vocab_only=True)  # header checked here: a bad file never reaches a child
        # Chosen here, not in the child, so that the caller sees the one-time notice.
        self.verdict: PolicyVerdict | None = None
        if buffer_policy is None:
            self.verdict = choose_policy(self.model.path)
            buffer_policy = self.verdict.policy
        self.buffer_policy: BufferPolicy = buffer_policy
        self._options: dict[str, Any] = {
            "n_parallel": n_parallel, "n_ctx_per_seq": n_ctx_per_seq, "n_batch": n_batch,
            "n_threads": n_threads, "buffer_policy": buffer_policy,
            "prefix_cache_tokens": prefix_cache_tokens, "prefix_cache_entries": prefix_cache_entries,
            "compact_streams": compact_streams,
        }
        # Kept here, not read from the engine: a restarted engine process starts its sums from zero.
        self.prefix_stats = PrefixStats()
        self.last_prefix_stats = PrefixStats()
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: mpc.Connection | None = None
        self._cancel_conn: mpc.Connection | None = None
        self._cancel_sent = False
        self._log_path: Path | None = None
        self._generation = 0  # numbers generate calls, so a late cancel never stops the next one
        self.restarts = 0
        self.n_parallel = self.n_ctx_seq = self.n_batch = self.n_threads = 0
        self._start()

    # -- identity (name, model_id, chat_template, path, count_tokens, render_prompt: ModelFileIdentity) --
    @property
    def runtime(self) -> dict[str, Any]:
        """How this engine runs on this machine (the run manifest records it: texts depend on it)."""
        return {
            "engine": "llama.cpp in an engine process",
            "buffer_policy": self.buffer_policy,
            "buffer_policy_reason": self.verdict.reason if self.verdict else "given by the caller",
            "n_parallel": self.n_parallel, "n_batch": self.n_batch, "n_threads": self.n_threads,
            "n_ctx_per_seq": self.n_ctx_seq,
            "prefix_cache_tokens": self._options["prefix_cache_tokens"],
            "prefix_cache_entries": self._options["prefix_cache_entries"],
            "compact_streams": self._options["compact_streams"],
            **provenance(),
        }

    # -- the engine process --------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        fd, log = tempfile.mkstemp(prefix="workbench-engine-", suffix=".log")
        os.close(fd)
        self._log_path = Path(log)
        parent, child = mpc.Pipe(duplex=True)
        cancel_r, cancel_w = mpc.Pipe(duplex=False)
        fds = (child.fileno(), cancel_r.fileno())
        with open(log, "ab") as err:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.engine.llama_process", str(fds[0]), str(fds[1]),
                 str(self.model.path), json.dumps(self._options), log],
                pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        child.close()
        cancel_r.close()
        self._conn, self._cancel_conn = parent, cancel_w
        info = self._roundtrip(None, what="loading the model")
        self.n_parallel, self.n_ctx_seq = info["n_parallel"], info["n_ctx_seq"]
        self.n_batch, self.n_threads = info["n_batch"], info["n_threads"]
        # A vocabulary-only load reads no hyperparameters: take them from the engine.
        self.model.n_embd, self.model.n_ctx_train = info["n_embd"], info["n_ctx_train"]

    def _ensure_running(self) -> None:
        if not self.alive:
            self._reap()
            self.restarts += 1
            self._start()

    def _reap(self) -> None:
        for conn in (self._conn, self._cancel_conn):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc, self._conn, self._cancel_conn = None, None, None

    def log_tail(self, n: int = 12) -> str:
        """The last lines the engine process (llama.cpp, or Python's fault handler) wrote."""
        try:
            lines = (self._log_path.read_text(errors="replace") if self._log_path else "").splitlines()
        except OSError:
            return ""
        return "\n".join([ln for ln in lines if ln.strip()][-n:])

    def _roundtrip(
        self,
        msg: tuple[Any, ...] | None,
        *,
        what: str,
        on_message: Callable[[tuple[Any, ...]], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Any:
        """Send `msg` (None: just wait for the ready message) and read replies until 'ok' or 'err'."""
        assert self._conn is not None and self._proc is not None
        conn, proc = self._conn, self._proc
        if msg is not None:
            conn.send(msg)
        while True:
            if cancel is not None and cancel.is_set() and not self._cancel_sent and self._cancel_conn is not None:
                self._cancel_sent = True
                with contextlib.suppress(OSError):
                    self._cancel_conn.send(self._generation)
            ready = mpc.wait([conn], timeout=_POLL_S)
            if not ready and proc.poll() is None:
                continue
            try:
                # A dead process leaves its last messages readable before EOF: take them all.
                while conn.poll():
                    reply = conn.recv()
                    kind = reply[0]
                    if kind == "ok":
                        return reply[1]
                    if kind == "err":
                        raise _unpack_error(reply[1])
                    if on_message is not None:
                        on_message(reply)
            except (EOFError, OSError):
                pass
            if proc.poll() is not None or not ready:
                try:
                    code = proc.wait(timeout=5)
                except subprocess.TimeoutExpired:  # pipe closed but the process hangs: end it
                    proc.kill()
                    code = proc.wait(timeout=5)
                tail = self.log_tail()
                self._reap()
                raise EngineCrashed(
                    f"The engine process died ({describe_exit(code)}) while {what}. Your Python session is fine, and "
                    "every row that finished before the crash was delivered; the engine starts again on the next "
                    f"call. llama.cpp's last lines:\n{tail or '(none)'}",
                    exitcode=code, log_tail=tail,
                )

    # -- the protocol --------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        requests = list(requests)
        for i, req in enumerate(requests):
            if not isinstance(req, GenerationRequest):
                raise TypeError(f"requests[{i}] is a {type(req).__name__}; build it with GenerationRequest(...)")
        results: dict[int, Generation] = {}

        def handle(reply: tuple[Any, ...]) -> None:
            if reply[0] == "result":
                results[reply[1]] = reply[2]
                if on_result is not None:
                    on_result(reply[1], reply[2])
            elif reply[0] == "progress" and on_progress is not None:
                on_progress(reply[1])

        with self._lock:
            self._ensure_running()
            self._generation += 1
            self._cancel_sent = False
            self.last_prefix_stats = PrefixStats()  # a call that fails reports nothing reused
            stats = self._roundtrip(("generate", requests, self._generation), what=f"generating {len(requests)} rows",
                                    on_message=handle, cancel=cancel)
            self.last_prefix_stats = stats
            self.prefix_stats.add(stats)
        return [results[i] for i in range(len(requests))]

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        with self._lock:
            self._ensure_running()
            return self._roundtrip(("score", list(prompts), list(continuations)), what="scoring")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self._ensure_running()
            return self._roundtrip(("embed", list(texts)), what="embedding")

    def close(self) -> None:
        with self._lock:
            if self.alive and self._conn is not None:
                with contextlib.suppress(EngineError, OSError, EOFError):
                    self._roundtrip(("close",), what="closing")
            self._reap()
            if self._log_path is not None:
                with contextlib.suppress(OSError):
                    self._log_path.unlink()
            self.model.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._reap()

    # -- tests only ----------------------------------------------------------------------------
    def _inject_crash(self, after_rows: int, kind: Literal["segv", "abort"] = "segv") -> None:
        """Make the engine process die natively once `after_rows` rows of the next generate have finished
        (a real SIGSEGV from a NULL read, or abort() as llama.cpp's GGML_ABORT does)."""
        with self._lock:
            self._ensure_running()
            self._roundtrip(("arm_crash", after_rows, kind), what="arming a test crash")

    def __repr__(self) -> str:
        return f"LlamaCppBackend({self.name!r}, n_parallel={self.n_parallel}, n_ctx_seq={self.n_ctx_seq}, pid={self.pid})"


# -- the engine process's side ---------------------------------------------------------------------
def _pack_error(exc: BaseException) -> tuple[str, str, BaseException | None]:
    import pickle

    try:
        pickle.dumps(exc)
        keep: BaseException | None = exc
    except Exception:
        keep = None
    return type(exc).__name__, str(exc), keep


def _unpack_error(packed: tuple[str, str, BaseException | None]) -> BaseException:
    name, text, exc = packed
    return exc if exc is not None else EngineError(f"{name}: {text}")


def _crash(kind: str) -> None:
    if kind == "abort":
        os.abort()
    import ctypes

    ctypes.string_at(0)  # a real SIGSEGV


class _CancelFlag:
    """`threading.Event`-like: set once the owner sends this generate call's number on the cancel pipe."""

    def __init__(self, conn: mpc.Connection) -> None:
        self.conn, self.current, self.cancelled = conn, 0, -1

    def is_set(self) -> bool:
        while self.conn.poll():
            self.cancelled = max(self.cancelled, int(self.conn.recv()))
        return self.cancelled >= self.current


def _die_with_owner() -> None:
    """End the engine when its owner dies, even in the middle of a decode. (Not PR_SET_PDEATHSIG: that
    fires when the owner's *thread* ends, and the app loads models from a worker thread.)"""
    owner = os.getppid()

    def watch() -> None:
        import time

        while os.getppid() == owner:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="workbench-engine-owner", daemon=True).start()


def _engine_main(conn: mpc.Connection, cancel: _CancelFlag, path: str, options: dict[str, Any], log_path: str) -> None:
    import faulthandler

    log = open(log_path, "a")  # noqa: SIM115 - kept open for the fault handler until the process ends
    faulthandler.enable(log)
    from workbench.engine.llama import InProcessLlamaBackend
    from workbench.engine.llama_model import set_log_file

    set_log_file(log_path)
    try:
        backend = InProcessLlamaBackend(path, **options)
    except Exception as exc:
        conn.send(("err", _pack_error(exc)))
        return
    conn.send(("ok", {"n_parallel": backend.n_parallel, "n_ctx_seq": backend.n_ctx_seq,
                      "n_batch": backend.n_batch, "n_threads": backend.n_threads,
                      "n_embd": backend.model.n_embd, "n_ctx_train": backend.model.n_ctx_train}))
    crash_after: tuple[int, str] | None = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the owner went away
            backend.close()
            return
        op = msg[0]
        try:
            if op == "generate":
                done = 0
                armed, crash_after = crash_after, None
                cancel.current = int(msg[2])

                def on_result(i: int, gen: Generation, armed: tuple[int, str] | None = armed) -> None:
                    nonlocal done
                    conn.send(("result", i, gen))
                    done += 1
                    if armed is not None and done >= armed[0]:
                        _crash(armed[1])

                backend.generate(msg[1], on_result=on_result, on_progress=lambda p: conn.send(("progress", p)),
                                 cancel=cancel)  # type: ignore[arg-type]
                conn.send(("ok", backend.last_prefix_stats))
            elif op == "score":
                conn.send(("ok", backend.score(msg[1], msg[2])))
            elif op == "embed":
                conn.send(("ok", backend.embed(msg[1])))
            elif op == "arm_crash":
                crash_after = (int(msg[1]), str(msg[2]))
                conn.send(("ok", None))
            elif op == "close":
                backend.close()
                conn.send(("ok", None))
                return
            else:
                conn.send(("err", _pack_error(EngineError(f"unknown engine request {op!r}"))))
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:
            conn.send(("err", _pack_error(exc)))


if __name__ == "__main__":
    _die_with_owner()
    _engine_main(
        mpc.Connection(int(sys.argv[1])), _CancelFlag(mpc.Connection(int(sys.argv[2]), writable=False)),
        sys.argv[3], json.loads(sys.argv[4]), sys.argv[5],
    )
