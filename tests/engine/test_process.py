"""The engine process: a native crash in llama.cpp ends the engine process, never the caller.

Crashes are real: the engine process reads address 0 (SIGSEGV) or calls abort() (what GGML_ABORT does)
in the middle of a run, after some rows have finished."""

from __future__ import annotations

import os
import threading

import polars as pl
import pytest

from workbench.engine import EngineCrashed, GenerationRequest, LlamaCppBackend, SamplingParams
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.runs import RunStore

pytestmark = pytest.mark.model


@pytest.fixture
def engine(default_model_path):
    backend = LlamaCppBackend(default_model_path, n_parallel=2, n_ctx_per_seq=256)
    yield backend
    backend.close()


def _reqs(n: int, max_tokens: int = 12) -> list[GenerationRequest]:
    return [
        GenerationRequest(prompt=f"Item {i}: a short fact about the number {i}.", params=SamplingParams(max_tokens=max_tokens, seed=i), key=str(i))
        for i in range(n)
    ]


@pytest.mark.parametrize("kind,signal_name", [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_a_native_crash_mid_run_keeps_finished_rows_and_the_next_call_restarts(engine, tmp_path, kind, signal_name):
    store = RunStore.create(tmp_path, "crash")
    prompts = pl.DataFrame({"instruction": [f"Name a colour, number {i}." for i in range(6)]})
    config = CompletionConfig(k=1, params=SamplingParams(max_tokens=8), use_chat="never")
    first_pid = engine.pid
    engine._inject_crash(after_rows=3, kind=kind)
    with pytest.raises(EngineCrashed) as err:
        run_completions(engine, store, prompts, config)
    assert err.value.signal_name == signal_name and signal_name in str(err.value)
    assert "starts again on the next call" in str(err.value)
    assert os.getpid() and not engine.alive  # this process lives; the engine process is gone
    kept = RunStore.open(store.path).rows()
    assert kept.filter(pl.col("stage") == "completion").height == 3  # the rows finished before the crash
    # The next call starts a new engine process and resumes: only the 3 missing rows are generated.
    rows = run_completions(engine, store, prompts, config)
    assert engine.pid != first_pid and engine.restarts == 1
    assert rows.height == 6 and rows["id"].n_unique() == 6


def test_everything_works_across_the_process_boundary(engine):
    seen, progress = [], []
    gens = engine.generate(
        [GenerationRequest(prompt="Say yes or no:", params=SamplingParams(max_tokens=3, grammar='root ::= "yes" | "no"', logprobs=2)), *_reqs(3)],
        on_result=lambda i, g: seen.append(i), on_progress=progress.append,
    )
    assert gens[0].text in ("yes", "no") and gens[0].logprobs and len(gens[0].logprobs[0].top) == 2
    assert sorted(seen) == [0, 1, 2, 3] and progress and progress[-1].rows_done == 4
    scores = engine.score(["The sky is"], [" blue"])
    assert len(scores[0].logprobs) == 1 and scores[0].logprobs[0] < 0
    emb = engine.embed(["a cat", "a dog"])
    assert emb.shape == (2, engine.model.n_embd)
    from workbench.engine import GrammarError

    with pytest.raises(GrammarError):  # errors raised in the engine process arrive as themselves
        engine.generate([GenerationRequest(prompt="x", params=SamplingParams(grammar="root ::= ("))])
    assert engine.alive and engine.restarts == 0


def test_cancel_reaches_the_engine_process_and_does_not_leak_into_the_next_call(engine):
    cancel = threading.Event()
    long = [GenerationRequest(prompt="Tell a long story:", params=SamplingParams(max_tokens=4000, seed=i)) for i in range(4)]
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    gens = engine.generate(long, cancel=cancel)
    assert all(g.finish_reason == "cancelled" for g in gens[2:])
    assert sum(g.completion_tokens for g in gens) < 4000
    after = engine.generate(_reqs(2))  # the old cancel must not stop this call
    assert all(g.ok for g in after)


def test_closing_ends_the_engine_process(default_model_path):
    backend = LlamaCppBackend(default_model_path, n_parallel=1, n_ctx_per_seq=128)
    proc = backend._proc
    backend.close()
    assert proc is not None and proc.poll() is not None
