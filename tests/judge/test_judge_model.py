"""The judge on the real default model (a 270M *base* model): the grammar must bound the score."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.judge import (
    JudgeConfig,
    Rubric,
    flip_rates,
    make_pairs,
    pair_outcomes,
    parse_counts,
    run_absolute_judge,
    run_pairwise_judge,
)

pytestmark = pytest.mark.model

CFG = JudgeConfig(max_tokens=32, max_reasoning_chars=60)


def _rows(shared_data, model: str, n: int) -> pl.DataFrame:
    recs = [
        json.loads(line) for line in (shared_data / f"predictions_{model}.jsonl").read_text().splitlines()[:n]
    ]
    return pl.DataFrame(
        {
            "id": [f"{model}-{i}" for i in range(n)],
            "instruction": [r["instruction"].strip() for r in recs],
            "input": [r["input"] for r in recs],
            "text": [r["response"].strip() for r in recs],
            "model_id": [model] * n,
        }
    )


def test_grammar_bounds_the_score_on_the_base_model(llama_backend, store, shared_data):
    assert llama_backend.chat_template is None  # the default model is a base model
    # The prompt even invites 0 and 9; only the grammar keeps the judge on the 1-5 scale.
    lure = Rubric(
        name="lure",
        task_description="Rate the response.",
        levels={i: f"level {i}" for i in range(1, 6)},
        template="Instruction: {{ instruction }}\nResponse: {{ response }}\nGive a score from 0 to 9.",
    )
    rows = _rows(shared_data, "text-davinci-003", 3)
    hot = CFG.model_copy(update={"temperature": 1.5, "seed": 7})
    out = pl.concat([run_absolute_judge(llama_backend, store, rows, lure, cfg) for cfg in (CFG, hot)])
    assert out.height == 6
    assert out["parse_ok"].all(), out.filter(~pl.col("parse_ok"))["reason"].to_list()
    assert set(out["score"].to_list()) <= {1, 2, 3, 4, 5}
    for dist, score in zip(out["score_distribution"], out["score"], strict=True):
        probs = {int(k): v for k, v in json.loads(dist).items()}
        assert set(probs) == {1, 2, 3, 4, 5}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert probs[score] > 0  # the chosen score had probability mass
    assert ((out["expected_score"] >= 1) & (out["expected_score"] <= 5)).all()
    assert (out["score_coverage"] > 0).all() and (out["score_coverage"] <= 1.0 + 1e-9).all()
    assert all("\nScore: " in t for t in out["text"])


def test_ten_point_scale_on_the_base_model(llama_backend, store, shared_data):
    ten = Rubric(
        name="ten", task_description="Rate the response.", levels={i: f"level {i}" for i in range(1, 11)}
    )
    out = run_absolute_judge(llama_backend, store, _rows(shared_data, "davinci-self-instruct", 2), ten, CFG)
    assert out["parse_ok"].all()
    assert set(out["score"].to_list()) <= set(range(1, 11))
    for dist in out["score_distribution"]:
        probs = json.loads(dist)
        assert set(probs) == {str(i) for i in range(1, 11)}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)


def test_pairwise_on_real_answers_runs_both_orders(llama_backend, store, shared_data):
    """text-davinci-003 vs davinci-self-instruct on two instructions. What the tiny model prefers is
    printed, not asserted: a 270M base model is expected to show strong position bias."""
    pairs = make_pairs(
        _rows(shared_data, "text-davinci-003", 2), _rows(shared_data, "davinci-self-instruct", 2)
    )
    rubric = Rubric(
        name="better",
        task_description="Decide which response follows the instruction better.",
        levels={1: "worse", 2: "better"},
    )
    out = run_pairwise_judge(llama_backend, store, pairs, rubric, CFG)
    assert out.height == 4 and sorted(out["pair_order"].to_list()) == ["AB"] * 2 + ["BA"] * 2
    counts = parse_counts(out).to_dicts()[0]
    assert counts["n"] == 4 and counts["parsed"] + counts["failed"] == 4
    rates = flip_rates(out).to_dicts()[0]
    assert rates["pairs"] == 2
    if rates["both_parsed"]:
        assert 0.0 <= rates["flip_rate"] <= 1.0
    outcomes = pair_outcomes(out)
    wins_003 = sum(w is not None and w.startswith("text-davinci-003") for w in outcomes["winner"])
    print(
        f"\npairwise on the default model: {rates}; text-davinci-003 won {wins_003} of 2 pairs (consistent verdicts only)"
    )


def test_chat_models_get_messages_and_stay_on_the_scale(chat_model_path, tmp_path, shared_data):
    """The default weights with Gemma's chat template: the judge sends chat messages, same grammar."""
    from workbench.engine import LlamaCppBackend
    from workbench.runs import RunStore

    backend = LlamaCppBackend(chat_model_path, n_parallel=2, n_ctx_per_seq=1024)
    try:
        assert backend.chat_template is not None
        store = RunStore.create(tmp_path, "chat-judge")
        rubric = Rubric(
            name="chat", task_description="Rate the response.", levels={i: f"level {i}" for i in range(1, 6)}
        )
        out = run_absolute_judge(backend, store, _rows(shared_data, "text-davinci-003", 2), rubric, CFG)
    finally:
        backend.close()
    assert out["judge_style"].to_list() == ["chat", "chat"]
    assert not any(p.endswith("Feedback:") for p in out["prompt"])
    assert out["parse_ok"].all() and set(out["score"].to_list()) <= {1, 2, 3, 4, 5}
    assert all(abs(sum(json.loads(d).values()) - 1) < 1e-4 for d in out["score_distribution"])


@pytest.mark.server
def test_http_server_judge_parses_or_counts_failures(tmp_path, shared_data):
    """Over a real llama.cpp server: with the grammar every output parses; unconstrained, whatever does
    not parse is kept with its raw output and counted, never scored."""
    from tests.helpers_server import llama_server
    from workbench.engine import load_backend
    from workbench.runs import RunStore

    rubric = Rubric(
        name="http", task_description="Rate the response.", levels={i: f"level {i}" for i in range(1, 6)}
    )
    rows = _rows(shared_data, "davinci-self-instruct", 2)
    # llama-cpp-python's server applies a grammar to the whole vocabulary at every step (slow on 2 cores):
    # one short constrained row is enough to show the server honours it.
    small = JudgeConfig(max_tokens=20, max_reasoning_chars=30)
    with llama_server() as server:
        backend = load_backend(server.url, max_concurrency=2)
        store = RunStore.create(tmp_path, "http-judge")
        constrained = run_absolute_judge(backend, store, rows.head(1), rubric, small)
        free = run_absolute_judge(backend, store, rows, rubric, small.model_copy(update={"constrained": False}))
        backend.close()
    assert constrained["parse_ok"].all() and set(constrained["score"].to_list()) <= {1, 2, 3, 4, 5}
    counts = parse_counts(free).to_dicts()[0]
    assert counts["parsed"] + counts["failed"] == 2 and free.height == 2
    failed = free.filter(~pl.col("parse_ok"))
    assert failed["score"].null_count() == failed.height and all(r for r in failed["reason"])
    print(
        f"\nunconstrained judge over HTTP: {counts['failed']} of 2 outputs did not parse: {failed['reason'].to_list()}"
    )
