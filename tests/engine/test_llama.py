"""The in-process engine on the real default model (Gemma 3 270M, a base model)."""

from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pytest

from workbench.engine import (
    GenerationRequest,
    GrammarError,
    LlamaCppBackend,
    ModelFileError,
    NoChatTemplateError,
    SamplingParams,
)
from workbench.jobs import Job

pytestmark = pytest.mark.model

PROMPTS = [f"Task {i}: Write a short sentence about {t}.\nAnswer:" for i, t in enumerate(
    ["rain", "coffee", "trains", "birds", "maps", "snow", "tea", "chess"])]


def reqs(n=4, **kw):
    base = {"max_tokens": 16, "seed": 0}
    base.update(kw)
    return [GenerationRequest(prompt=PROMPTS[i], params=SamplingParams(**{**base, "seed": base["seed"] + i}), key=f"r{i}")
            for i in range(n)]


def test_generate_returns_one_row_per_request_in_order(llama_backend):
    gens = llama_backend.generate(reqs(4))
    assert [g.key for g in gens] == ["r0", "r1", "r2", "r3"]
    for g in gens:
        assert g.ok and g.text and g.error is None
        assert 1 <= g.completion_tokens <= 16 and g.prompt_tokens > 5
        assert g.finish_reason in ("stop", "length")


def test_same_requests_same_settings_same_texts(llama_backend):
    """Reproducible rows: the same request list on the same backend settings gives the same texts.
    (A row decoded beside a different set of neighbours may differ: see the README's determinism note.)"""
    batch = reqs(6, max_tokens=24, temperature=0.9)
    a = llama_backend.generate(batch)
    b = llama_backend.generate(batch)
    assert [g.text for g in a] == [g.text for g in b]
    assert len({g.text for g in a}) > 1  # different seeds really sample differently


def test_one_row_at_a_time_is_reproducible_alone(default_model_path):
    """n_parallel=1 decodes every row alone: its text no longer depends on any other request."""
    backend = LlamaCppBackend(default_model_path, n_parallel=1, n_ctx_per_seq=256)
    try:
        batch = reqs(3, max_tokens=16, temperature=0.9)
        together = [g.text for g in backend.generate(batch)]
        alone = [backend.generate([r])[0].text for r in batch]
        assert together == alone
    finally:
        backend.close()


def test_stop_strings_and_max_tokens(llama_backend):
    gens = llama_backend.generate(reqs(4, max_tokens=40, stop=("\n", ".")))
    for g in gens:
        assert "\n" not in g.text and "." not in g.text
    long = llama_backend.generate(reqs(2, max_tokens=5, stop=()))
    assert all(g.completion_tokens == 5 and g.finish_reason == "length" for g in long if g.finish_reason != "stop")


JUDGE_GRAMMAR = r'''root ::= " " [a-zA-Z ,]{1,60} "\nScore: " [1-5]
'''


def test_grammar_output_always_parses(llama_backend):
    gens = llama_backend.generate(reqs(6, max_tokens=48, temperature=1.0, grammar=JUDGE_GRAMMAR))
    for g in gens:
        assert g.ok, g.error
        assert re.fullmatch(r" [a-zA-Z ,]{1,60}\nScore: [1-5]", g.text), repr(g.text)


def test_json_schema_output_parses(llama_backend):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
              "ok": {"type": "boolean"}}, "required": ["name", "ok"]}
    gens = llama_backend.generate(reqs(3, max_tokens=48, temperature=0.7, json_schema=schema))
    for g in gens:
        obj = json.loads(g.text)
        assert set(obj) == {"name", "ok"} and isinstance(obj["ok"], bool)


def test_bad_grammar_is_a_clear_error_and_the_backend_still_works(llama_backend):
    with pytest.raises(GrammarError, match="does not compile") as err:
        llama_backend.generate(reqs(1, grammar="root ::= undefined_rule"))
    assert "undefined_rule" in str(err.value)  # llama.cpp's own parse message is passed on
    with pytest.raises(GrammarError, match="does not compile"):
        llama_backend.generate(reqs(1, grammar='root ::= root "a"'))  # left recursion
    with pytest.raises(GrammarError, match="empty"):
        llama_backend.generate(reqs(1, grammar="   "))
    assert llama_backend.generate(reqs(1))[0].ok


def test_logprobs_of_chosen_tokens_and_alternatives(llama_backend):
    g = llama_backend.generate(reqs(1, max_tokens=6, logprobs=5, temperature=0.0))[0]
    assert g.logprobs is not None and len(g.logprobs) == g.completion_tokens
    for step in g.logprobs:
        assert step.logprob <= 0 and len(step.top) == 5
        lps = [lp for _, lp in step.top]
        assert lps == sorted(lps, reverse=True)
        assert np.exp(lps).sum() <= 1.0 + 1e-6
        assert step.logprob == pytest.approx(lps[0])  # greedy picks the most likely token


def test_prompt_longer_than_context_errors_alone(default_model_path):
    backend = LlamaCppBackend(default_model_path, n_parallel=2, n_ctx_per_seq=256)
    try:
        long = GenerationRequest(prompt="word " * 400, params=SamplingParams(max_tokens=8), key="long")
        gens = backend.generate([long, *reqs(2, max_tokens=8)])
        assert gens[0].finish_reason == "error" and "n_ctx_per_seq" in (gens[0].error or "")
        assert all(g.ok for g in gens[1:])
        # Generation stops at the context's end instead of overrunning it.
        near = GenerationRequest(prompt="word " * 240, params=SamplingParams(max_tokens=64))
        g = backend.generate([near])[0]
        # The last sampled token is never decoded, so the KV cache holds prompt + completion - 1 tokens.
        assert g.finish_reason == "length" and g.prompt_tokens + g.completion_tokens - 1 == backend.n_ctx_seq
    finally:
        backend.close()


def test_chat_on_a_base_model_says_so(llama_backend):
    with pytest.raises(NoChatTemplateError, match="base model"):
        llama_backend.generate([GenerationRequest(messages=({"role": "user", "content": "hi"},))])


def test_chat_model_uses_its_own_template(chat_model_path):
    backend = LlamaCppBackend(chat_model_path, n_parallel=2, n_ctx_per_seq=512)
    try:
        req = GenerationRequest(messages=({"role": "user", "content": "Name a color."},),
                                params=SamplingParams(max_tokens=8, seed=1))
        text, has_bos = backend.render_prompt(req)
        assert text.startswith("<bos><start_of_turn>user\nName a color.<end_of_turn>\n<start_of_turn>model\n")
        assert has_bos
        g = backend.generate([req])[0]
        assert g.ok and g.prompt_tokens == len(backend.model.tokenize(text, add_bos=False, special=True))
        # <start_of_turn> was read as one control token, not as characters.
        assert g.prompt_tokens < 20
    finally:
        backend.close()


def test_missing_and_bad_model_files(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        LlamaCppBackend(tmp_path / "missing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 16)
    with pytest.raises(ModelFileError):
        LlamaCppBackend(bad)


def test_progress_and_results_stream_as_rows_finish(llama_backend):
    seen, progress = [], []
    gens = llama_backend.generate(reqs(4, max_tokens=8), on_result=lambda i, g: seen.append(i),
                                  on_progress=progress.append)
    assert sorted(seen) == [0, 1, 2, 3] and len(gens) == 4
    assert progress[-1].rows_done == 4 and progress[-1].rows_total == 4
    assert progress[-1].tokens_generated == sum(g.completion_tokens for g in gens)


def test_cancel_stops_within_a_step_and_keeps_finished_rows(llama_backend):
    cancel = threading.Event()
    batch = [*reqs(1, max_tokens=2), *reqs(4, max_tokens=400, stop=())[1:]]
    finished_at = {}

    def on_result(i, g):
        finished_at[i] = time.perf_counter()
        if g.ok:
            cancel.set()

    t0 = time.perf_counter()
    gens = llama_backend.generate(batch, on_result=on_result, cancel=cancel)
    assert gens[0].ok and gens[0].completion_tokens == 2
    assert all(g.finish_reason == "cancelled" for g in gens[1:])
    assert all(g.completion_tokens < 50 for g in gens[1:])
    assert time.perf_counter() - t0 < 30


def test_job_runs_off_the_main_thread(llama_backend):
    job = Job(lambda report, cancel: llama_backend.generate(reqs(2, max_tokens=24), on_progress=report, cancel=cancel))
    job.start()
    main_thread_ticks = 0
    while job.running:
        main_thread_ticks += 1  # the caller stays free while the job decodes
        time.sleep(0.01)
    assert job.state == "done" and len(job.result) == 2 and main_thread_ticks > 1


def test_score_prefers_the_likely_continuation(llama_backend):
    s = llama_backend.score(["The capital of France is"] * 2, [" Paris.", " banana spaceship."])
    assert s[0].tokens and len(s[0].tokens) == len(s[0].logprobs)
    assert s[0].perplexity < s[1].perplexity


def test_embeddings_are_normalised_and_meaningful(llama_backend):
    e = llama_backend.embed(["a recipe for tomato soup", "how to cook tomato soup", "the rules of ice hockey"])
    assert e.shape == (3, llama_backend.model.n_embd)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2]


def test_count_tokens(llama_backend):
    assert llama_backend.count_tokens("hello world") == 2


def test_shared_prompt_prefixes_are_copied_not_recomputed(default_model_path):
    """Rows sharing a long prompt prefix get its KV cells computed once (prefix_cache.py); the numbers must
    match what the row computes on its own (n_parallel=1 never shares) up to batch rounding, which moves a
    log-probability by a few hundredths here; a misplaced or missing cell would move it far more."""
    header = ("Below are tasks and their answers.\n\nTask 1: Give three synonyms for 'happy'.\nAnswer: glad, joyful.\n\n"
              "Task 2: Give three synonyms for 'sad'.\nAnswer: unhappy, low, blue.\n\n")
    prompts = [header + f"Task 3: Write about {t}.\nAnswer:" for t in ("rain", "tea", "maps")]
    reqs_ = [GenerationRequest(prompt=p, params=SamplingParams(max_tokens=4, temperature=0.0, logprobs=1)) for p in prompts]
    from workbench.engine.llama import InProcessLlamaBackend

    shared = InProcessLlamaBackend(default_model_path, n_parallel=4, n_ctx_per_seq=256)
    solo = InProcessLlamaBackend(default_model_path, n_parallel=1, n_ctx_per_seq=256)
    try:
        a = shared.generate(reqs_)
        b = solo.generate(reqs_)
        stats = shared.last_prefix_stats
        assert stats.groups == 1 and stats.copied_tokens >= 3 * 32  # every row copied the header's cells
        assert stats.prefill_tokens == stats.prompt_tokens - stats.copied_tokens + stats.copied_tokens // 3
        for x, y in zip(a, b, strict=True):
            assert x.logprobs[0].logprob == pytest.approx(y.logprobs[0].logprob, abs=0.1)
            assert x.text[:1] == y.text[:1]
    finally:
        shared.close()
        solo.close()
