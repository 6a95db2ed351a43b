"""Stream compaction (`workbench.engine.stream_compaction`) on the real default model.

Once no request is waiting, a finished row's free sequence is filled by the row in the highest active
sequence: its KV cells are copied and its sampler, tokens, decoder and logprobs move with it.

What can be tested bit for bit: llama.cpp's CPU matmul kernels depend on how many rows a ubatch holds and
where a row sits in it (repacked Q4_K gemm for groups of 4 rows, the tiled K-quant matmul from 8 rows), so
with the default kernels a moved row — like any row whose batch neighbours change — may get other bits
(README, "Determinism"). With row-independent kernels (plain CPU buffers and `GGML_CPU_TILED_MM=0`) a
row's numbers depend on its own cells only, so there compaction must change nothing at all: that checks
the cell copy and the moved state exactly. It runs in a child process because llama.cpp reads the
variable once per process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.engine import GenerationRequest, SamplingParams
from workbench.engine.cpu_safety import POLICIES, BufferPolicy

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[2]
GRAMMAR = 'root ::= ("yes" | "no") ", because " [a-z ]{3,40} "."'
TOPICS = ["rain", "coffee", "trains", "birds", "maps", "snow", "tea", "chess", "rivers", "bread"]
LONG = "Context: " + " ".join(f"fact {i} is that {t} matters." for i, t in enumerate(TOPICS * 3))


def requests(kind: str = "mixed") -> list[GenerationRequest]:
    """Two call shapes. "mixed": more rows than sequences, ending at different steps by length, stop
    string, grammar or end of text, some with logprobs. "prefill": three short rows and, in the last
    sequence, a long prompt still being prefilled (32 tokens a step) when the short rows end and it
    moves."""
    if kind == "prefill":
        short = [GenerationRequest(prompt=f"Name a {t} word:", key=f"s{n}",
                                   params=SamplingParams(max_tokens=n, seed=n, logprobs=1))
                 for t, n in (("rain", 2), ("snow", 3), ("tea", 5))]
        long_params = SamplingParams(max_tokens=12, seed=9)
        return [*short, GenerationRequest(prompt=LONG + "\nSummary:", params=long_params, key="long")]
    out = []
    for i, topic in enumerate(TOPICS):
        max_tokens = (3, 40, 9, 24, 1, 32, 6, 40, 14, 28)[i]
        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.9, "seed": i}
        if i % 3 == 0:
            params["stop"] = (".", "\n")
        if i % 2 == 1:
            params["logprobs"] = 2
        if i == 5:
            params["grammar"] = GRAMMAR
        out.append(GenerationRequest(prompt=f"Task {i}: Write a short sentence about {topic}.\nAnswer:",
                                     params=SamplingParams(**params), key=f"r{i}"))
    return out


def run(backend, kind: str = "mixed", *, cancel_after: int | None = None) -> list[dict[str, Any]]:
    """Generate `requests(kind)`; with `cancel_after`, cancel once that many rows finished (the loop checks
    between steps, so both runs stop after the same step)."""
    cancel, done = threading.Event(), []

    def on_result(i, gen):
        done.append(i)
        if cancel_after is not None and len(done) >= cancel_after:
            cancel.set()

    gens = backend.generate(requests(kind), on_result=on_result, cancel=cancel)
    return [{"text": g.text, "finish": g.finish_reason, "tokens": g.completion_tokens, "error": g.error,
             "logprobs": None if g.logprobs is None else [[t.token, t.logprob, t.top] for t in g.logprobs]}
            for g in gens]


@contextlib.contextmanager
def counting_moves() -> Iterator[dict[str, int]]:
    """Wrap the engine's `move_row` to count the moves, and those of a row still prefilling its prompt."""
    from workbench.engine import stream_compaction

    counts = {"moves": 0, "mid_prefill": 0}
    move = stream_compaction.move_row

    def counted(ctx, memory, src, dst):
        counts["moves"] += 1
        counts["mid_prefill"] += src.fed < len(src.row.tokens)
        return move(ctx, memory, src, dst)

    stream_compaction.move_row = counted
    try:
        yield counts
    finally:
        stream_compaction.move_row = move


def compare_on_off(buffer_policy: BufferPolicy | None) -> dict[str, Any]:
    """Both settings on one backend, one after the other: whole runs, then runs cancelled mid-way."""
    from workbench.engine import default_model_path
    from workbench.engine.llama import InProcessLlamaBackend

    # 4 sequences and 32-token batches: the long prompt takes several steps and rows end while it does.
    backend = InProcessLlamaBackend(default_model_path(), n_parallel=4, n_ctx_per_seq=512, n_batch=32,
                                    n_threads=2, buffer_policy=buffer_policy)
    out: dict[str, Any] = {}
    with counting_moves() as counts:
        try:
            _compare(backend, counts, out)
        finally:
            backend.close()
    return out


def _compare(backend: Any, counts: dict[str, int], out: dict[str, Any]) -> None:
    for on in (False, True, True):
        backend.compact_streams = on
        before = dict(counts)
        out.setdefault(f"whole_{on}", []).append(run(backend))
        out.setdefault(f"prefill_{on}", []).append(run(backend, "prefill"))
        out.setdefault(f"cancelled_{on}", []).append(run(backend, cancel_after=6))
        out.setdefault(f"moves_{on}", []).append({k: counts[k] - before[k] for k in counts})


def child_result(env: dict[str, str], buffer_policy: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tests.engine.test_stream_compaction", buffer_policy]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_with_row_independent_kernels_compaction_changes_no_bit():
    out = child_result({"GGML_CPU_TILED_MM": "0"}, "no_extra_bufts")
    off, on = out["whole_False"][0], out["whole_True"][0]
    assert all(r["error"] is None for r in off)
    assert {r["finish"] for r in off} >= {"stop", "length"}
    moves = out["moves_True"][0]
    assert moves["moves"] >= 3 and moves["mid_prefill"] >= 1  # rows really moved, one of them mid-prompt
    assert out["moves_False"][0]["moves"] == 0
    assert on == off  # texts, finish reasons, token counts, logprobs and alternatives: identical
    assert out["prefill_True"][0] == out["prefill_False"][0]
    assert out["cancelled_True"][0] == out["cancelled_False"][0]
    assert sum(r["finish"] == "cancelled" for r in out["cancelled_False"][0]) >= 2


def test_with_default_kernels_compaction_is_reproducible_and_rows_end_right():
    from workbench.engine import default_model_path
    from workbench.engine.cpu_safety import choose_policy

    out = compare_on_off(choose_policy(default_model_path()).policy)
    first, again = out["whole_True"]
    assert first == again and out["cancelled_True"][0] == out["cancelled_True"][1]
    assert out["prefill_True"][0] == out["prefill_True"][1]
    assert out["moves_True"][0]["moves"] >= 3
    for req, row in zip(requests(), first, strict=True):
        p = req.params
        assert row["error"] is None and row["tokens"] <= p.max_tokens
        if row["finish"] == "length":
            assert row["tokens"] == p.max_tokens
        assert not any(s in row["text"] for s in p.stop)
        if p.logprobs is not None:
            assert len(row["logprobs"]) == row["tokens"]
            assert all(len(top) == p.logprobs for _tok, _lp, top in row["logprobs"])
    grammar_row = first[5]
    assert grammar_row["text"].startswith(("yes, because ", "no, because "))


if __name__ == "__main__":  # the child process of the bit-exact test
    policy = next(p for p in POLICIES if p == sys.argv[1])
    print(json.dumps(compare_on_off(policy)))
