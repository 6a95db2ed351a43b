"""Which llama.cpp weight-buffer setting is safe on this CPU, found out before the weights are trusted.

llama.cpp can move weights into "extra" buffer types: CPU_REPACK (re-laid Q4_K/Q4_0/... blocks, faster matrix
kernels) and, on CPUs with Intel AMX, an AMX buffer type that takes the Q4_K/Q6_K/Q8_0 weights. The AMX one
crashes the first decode (segfault; llama.cpp#20824, unfixed upstream). llama.cpp picks AMX first, and only
`use_extra_bufts` switches it off, taking CPU_REPACK with it. So the engine chooses per machine:

- `"default"`: llama.cpp's own choice (extra buffer types on);
- `"no_extra_bufts"`: plain CPU buffers only (what llama-server calls `--no-repack`).

`choose_policy(path)` decides once per (model file, llama.cpp build, CPU flags) and caches the verdict:
a CPU whose llama.cpp build reports `AMX_INT8 = 1` never gets the default (the known crash); any other
CPU first runs a tiny real decode in a child process, so a crash we do not know of yet kills the child,
not the caller, and the engine falls back to the safe setting and says so once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

BufferPolicy = Literal["default", "no_extra_bufts"]
POLICIES: tuple[BufferPolicy, ...] = ("default", "no_extra_bufts")
SAFE_POLICY: BufferPolicy = "no_extra_bufts"
_CHECK_TIMEOUT_S = 180.0
# Measured with `make bench` on a 2-core AMX Xeon (README, "CPU safety"): 231.5 tok/s with this setting; a
# build without AMX kernels, repacking on, gave 216.6 and with it off 223.0 — repacking bought nothing there.
_COST_NOTE = (
    "it also turns off llama.cpp's weight repacking; on the Xeon we measured that cost nothing (231.5 tok/s "
    "without it vs 216.6 with repacking on a build without AMX), other CPUs may lose a few percent"
)


class CPUSafetyWarning(UserWarning):
    """The engine chose a slower, safe setting because the default one crashes (or would crash) here."""


@dataclass(frozen=True)
class PolicyVerdict:
    """What `choose_policy` decided, and why (recorded in the run manifest)."""

    policy: BufferPolicy
    reason: str
    checked: bool  # a child process decoded with this policy and survived
    cached: bool = False
    failed: tuple[str, ...] = ()  # policies whose self-check crashed, with how

    def as_record(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# -- what this machine is ---------------------------------------------------------------------------
@functools.cache
def system_info() -> str:
    """llama.cpp's own report of the CPU features it was built for and uses (`llama_print_system_info`)."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()


@functools.cache
def cpu_flags() -> tuple[str, ...]:
    """The CPU's SIMD/matrix feature flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ()
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    if not m:
        return ()
    keep = re.compile(r"^(sse|ssse|avx|amx|fma|f16c|bmi|vnni|neon|sve|asimd)")
    return tuple(sorted({f for f in m.group(1).split() if keep.match(f)}))


def cpu_model_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    m = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    return m.group(1).strip() if m else ""


def llama_build() -> str:
    """llama-cpp-python's version (it pins the llama.cpp commit it vendors)."""
    import llama_cpp

    return str(getattr(llama_cpp, "__version__", "unknown"))


def known_crash(info: str | None = None) -> str | None:
    """Why the default setting is known to crash with this llama.cpp build on this CPU, or None."""
    info = system_info() if info is None else info
    if re.search(r"\bAMX_INT8\s*=\s*1\b", info):
        return (
            "this CPU has Intel AMX and llama.cpp was built with its AMX kernels; llama.cpp's AMX weight buffer "
            "crashes the first decode (llama.cpp#20824)"
        )
    return None


def provenance() -> dict[str, Any]:
    """What a row's text depends on besides model, prompt and parameters (for the run manifest)."""
    return {
        "cpu": cpu_model_name(),
        "cpu_flags": list(cpu_flags()),
        "llama_cpp_python": llama_build(),
        "llama_system_info": system_info(),
    }


# -- applying a policy ------------------------------------------------------------------------------
def apply_policy(mparams: Any, policy: BufferPolicy) -> Any:
    """Set a `llama_model_params` struct for `policy` (returns it)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown buffer policy {policy!r}; choose one of {', '.join(POLICIES)}")
    mparams.use_extra_bufts = policy == "default"
    return mparams


def patch_llama_cpp_defaults(policy: BufferPolicy) -> None:
    """Make llama-cpp-python's high-level `Llama` (and so `llama_cpp.server`) load with `policy`.

    `Llama.__init__` builds its model params from `llama_cpp.llama_cpp.llama_model_default_params()` and
    offers no argument for extra buffer types, so the default-params function is wrapped."""
    import llama_cpp.llama_cpp as lc

    original = getattr(lc.llama_model_default_params, "_workbench_original", lc.llama_model_default_params)

    def default_params() -> Any:
        return apply_policy(original(), policy)

    default_params._workbench_original = original  # type: ignore[attr-defined]
    lc.llama_model_default_params = default_params


def safe_llama(model_path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """A high-level `llama_cpp.Llama` loaded with the policy that is safe on this CPU (for baselines)."""
    import llama_cpp

    verdict = choose_policy(model_path)
    patch_llama_cpp_defaults(verdict.policy)
    return llama_cpp.Llama(model_path=str(model_path), **kwargs)


# -- choosing one -----------------------------------------------------------------------------------
def cache_dir() -> Path:
    root = os.environ.get("WORKBENCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synth-workbench"
    )
    return Path(root) / "cpu-check"


def verdict_key(model_path: str | os.PathLike[str]) -> str:
    """Model file (path, size, mtime), llama.cpp build and CPU flags: a new one of any asks again."""
    p = Path(model_path).expanduser().resolve()
    st = p.stat()
    parts = [str(p), str(st.st_size), str(st.st_mtime_ns), llama_build(), system_info(), " ".join(cpu_flags())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


_WARNED: set[str] = set()


def choose_policy(model_path: str | os.PathLike[str], *, use_cache: bool = True) -> PolicyVerdict:
    """The buffer policy to load `model_path` with on this machine (see the module docstring).

    `WORKBENCH_BUFFER_POLICY=default|no_extra_bufts` forces one (no self-check)."""
    forced = os.environ.get("WORKBENCH_BUFFER_POLICY")
    if forced:
        if forced not in POLICIES:
            raise ValueError(f"WORKBENCH_BUFFER_POLICY={forced!r}: choose one of {', '.join(POLICIES)}")
        return PolicyVerdict(forced, "forced by WORKBENCH_BUFFER_POLICY", checked=False)
    key = verdict_key(model_path)
    path = cache_dir() / f"{key}.json"
    if use_cache and path.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
            rec = json.loads(path.read_text())
            verdict = PolicyVerdict(
                rec["policy"], rec["reason"], bool(rec["checked"]), True, tuple(rec.get("failed", ()))
            )
            _announce(key, verdict)
            return verdict
    verdict = _decide(model_path)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(verdict.as_record(), indent=2))
        tmp.replace(path)
    _announce(key, verdict)
    return verdict


def _decide(model_path: str | os.PathLike[str]) -> PolicyVerdict:
    known = known_crash()
    candidates: list[BufferPolicy] = [SAFE_POLICY] if known else list(POLICIES)
    failed: list[str] = []
    for policy in candidates:
        ok, detail = self_check(model_path, policy)
        if ok:
            if known:
                reason = f"{known}; so the engine loads weights with use_extra_bufts=False"
            elif failed:
                reason = f"a test decode with llama.cpp's default buffer types crashed here ({failed[0]})"
            else:
                reason = "a test decode with llama.cpp's default buffer types ran cleanly on this CPU"
            return PolicyVerdict(policy, reason, checked=True, failed=tuple(failed))
        failed.append(f"{policy}: {detail}")
    from .errors import EngineError

    raise EngineError(
        "llama.cpp crashed on this CPU in a test decode with every buffer setting the engine knows:\n  "
        + "\n  ".join(failed)
        + f"\nllama.cpp reports: {system_info()}\n"
        "Rebuild llama-cpp-python for a more generic CPU (e.g. CMAKE_ARGS='-DGGML_NATIVE=OFF' "
        "pip install --force-reinstall --no-cache-dir llama-cpp-python), or use an OpenAI-compatible server."
    )


def _announce(key: str, verdict: PolicyVerdict) -> None:
    if verdict.policy == "default" or key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(
        CPUSafetyWarning(
            f"The engine loads models without llama.cpp's extra weight buffers on this CPU, because {verdict.reason}. "
            f"Generation is safe; {_COST_NOTE}. (Set WORKBENCH_BUFFER_POLICY=default to override at your own risk.)"
        ),
        stacklevel=3,
    )


def self_check(model_path: str | os.PathLike[str], policy: BufferPolicy) -> tuple[bool, str]:
    """Load the model with `policy` in a fresh child process and decode a few tokens for two sequences.

    Returns (survived, how it ended). A native crash ends the child only."""
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "workbench.engine.cpu_safety", str(model_path), policy],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                timeout=_CHECK_TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired:
            return False, f"no answer within {_CHECK_TIMEOUT_S:.0f}s"
        log.seek(0)
        tail = " | ".join(log.read().decode("utf-8", "replace").strip().splitlines()[-3:])
    if proc.returncode == 0:
        return True, "ok"
    return False, describe_exit(proc.returncode) + (f" ({tail})" if tail else "")


def describe_exit(code: int) -> str:
    """'killed by SIGSEGV (segmentation fault)' for a negative return code, else 'exited with code N'."""
    import signal

    if code < 0:
        try:
            sig = signal.Signals(-code)
            return f"killed by {sig.name} ({signal.strsignal(sig) or ''})".replace(" ()", "")
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _child_decode(model_path: str, policy: BufferPolicy) -> None:
    """The self-check itself: real weights, real batched decode, a few greedy steps."""
    import llama_cpp as lc
    import numpy as np

    lc.llama_backend_init()
    mparams = apply_policy(lc.llama_model_default_params(), policy)
    mparams.n_gpu_layers = 0
    model = lc.llama_model_load_from_file(model_path.encode(), mparams)
    if not model:
        raise SystemExit(3)
    cparams = lc.llama_context_default_params()
    cparams.n_ctx, cparams.n_batch, cparams.n_ubatch, cparams.n_seq_max = 256, 64, 64, 2
    cparams.n_threads = cparams.n_threads_batch = max(1, min(2, os.cpu_count() or 1))
    cparams.kv_unified = False
    ctx = lc.llama_init_from_model(model, cparams)
    vocab = lc.llama_model_get_vocab(model)
    text = b"The quick brown fox jumps over the lazy dog. Once upon a time"
    buf = (lc.llama_token * 64)()
    n = lc.llama_tokenize(vocab, text, len(text), buf, 64, True, False)
    batch = lc.llama_batch_init(64, 0, 1)
    k = 0
    for seq in range(2):
        for i in range(n):
            batch.token[k], batch.pos[k], batch.n_seq_id[k] = buf[i], i, 1
            batch.seq_id[k][0], batch.logits[k] = seq, int(i == n - 1)
            k += 1
    batch.n_tokens = k
    if lc.llama_decode(ctx, batch) != 0:
        raise SystemExit(4)
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    for step in range(4):  # decode steps: the matrix-vector kernels a generation uses
        for seq in range(2):
            logits = lc.llama_get_logits_ith(ctx, seq * n + n - 1 if step == 0 else seq)
            tok = int(np.argmax(np.ctypeslib.as_array(logits, shape=(n_vocab,))))
            batch.token[seq], batch.pos[seq], batch.n_seq_id[seq] = tok, n + step, 1
            batch.seq_id[seq][0], batch.logits[seq] = seq, 1
        batch.n_tokens = 2
        if lc.llama_decode(ctx, batch) != 0:
            raise SystemExit(4)
    lc.llama_batch_free(batch)
    lc.llama_free(ctx)
    lc.llama_model_free(model)


if __name__ == "__main__":
    import faulthandler

    faulthandler.enable()
    _child_decode(sys.argv[1], sys.argv[2])  # type: ignore[arg-type]
    print("self-check ok")
