"""Completions: k seeded samples per prompt, chat vs completion template, resume without duplicates."""

from __future__ import annotations

import json
import threading

import polars as pl
import pytest
from pydantic import ValidationError

from workbench.engine import FakeBackend, Generation, NoChatTemplateError, SamplingParams
from workbench.generate.completions import CompletionConfig, render_template, run_completions
from workbench.runs import RunStore

PROMPTS = pl.DataFrame(
    {
        "id": ["p1", "p2", "p3"],
        "instruction": ["Write a haiku about rain.", "Add the numbers.", "Name a colour."],
        "input": ["", "2 and 3", None],
    }
)


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore.create(tmp_path, "run")


def test_k_samples_each_with_its_own_recorded_seed_and_params(store):
    backend = FakeBackend()
    cfg = CompletionConfig(k=3, seed=100, params=SamplingParams(temperature=0.9, max_tokens=20))
    out = run_completions(backend, store, PROMPTS, cfg)
    assert out.height == 9
    assert out["stage"].unique().to_list() == ["completion"]
    assert out["parent_id"].to_list() == ["p1"] * 3 + ["p2"] * 3 + ["p3"] * 3
    assert out["sample"].to_list() == [0, 1, 2] * 3
    assert out["seed"].to_list() == [100, 101, 102] * 3
    params = [json.loads(p) for p in out["params"]]
    assert [p["seed"] for p in params] == out["seed"].to_list()
    assert all(p["temperature"] == 0.9 and p["max_tokens"] == 20 for p in params)
    # each request really used its own seed
    assert [c.params.seed for c in backend.calls] == [100, 101, 102] * 3
    assert out["id"].n_unique() == 9
    assert set(out["model"]) == {"fake"} and set(out["model_id"]) == {"fake:0"}
    assert store.rows().height == 9  # written to the run, not only returned


def test_base_model_uses_the_editable_completion_template(store):
    backend = FakeBackend()
    out = run_completions(backend, store, PROMPTS, CompletionConfig(k=1))
    req = backend.calls[1]
    assert req.kind == "completion"
    assert req.prompt == "### Instruction:\nAdd the numbers.\n### Input:\n2 and 3\n### Response:\n"
    assert "### Input" not in backend.calls[0].prompt  # empty input: the block is left out
    assert "\n###" in req.params.stop  # base model stops before inventing a next section
    assert out["mode"].unique().to_list() == ["completion"]

    custom = CompletionConfig(
        k=1, completion_template="Q: {{ instruction }}{% if input %} ({{ input }}){% endif %}\nA:"
    )
    backend2 = FakeBackend()
    run_completions(backend2, RunStore.create(store.path.parent, "run2"), PROMPTS, custom)
    assert backend2.calls[1].prompt == "Q: Add the numbers. (2 and 3)\nA:"


def test_chat_models_go_through_their_template(store):
    backend = FakeBackend(chat_template="{{ messages }}")
    out = run_completions(backend, store, PROMPTS.head(2), CompletionConfig(k=2, system_prompt="Be brief."))
    req = backend.calls[2]
    assert req.kind == "chat"
    assert req.messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Add the numbers.\n\n2 and 3"},
    )
    assert out["mode"].unique().to_list() == ["chat"]
    # forcing the completion template on a chat model works too
    forced = FakeBackend(chat_template="x")
    run_completions(
        forced,
        RunStore.create(store.path.parent, "r3"),
        PROMPTS.head(1),
        CompletionConfig(k=1, use_chat="never"),
    )
    assert forced.calls[0].kind == "completion"


def test_use_chat_always_on_a_base_model_says_what_to_do(store):
    with pytest.raises(NoChatTemplateError, match="use_chat='auto' or 'never'"):
        run_completions(FakeBackend(), store, PROMPTS, CompletionConfig(use_chat="always"))
    assert store.rows().height == 0


def test_templates_are_sandboxed_and_strict():
    with pytest.raises(ValidationError, match="not valid Jinja"):
        CompletionConfig(completion_template="{% if %}")
    with pytest.raises(ValueError, match="undefined variable"):
        render_template("{{ instrution }}", instruction="x", input="")
    with pytest.raises(ValueError):  # no way out of the sandbox
        render_template("{{ instruction.__class__.__mro__[1].__subclasses__() }}", instruction="x")
    with pytest.raises(ValidationError):
        CompletionConfig(k=2, temprature=0.5)  # typo'd field is rejected, not ignored


def test_resume_skips_existing_rows_and_writes_no_duplicates(store):
    backend = FakeBackend()
    cfg = CompletionConfig(k=2)
    first = run_completions(backend, store, PROMPTS.head(2), cfg)
    assert len(backend.calls) == 4
    again = run_completions(backend, store, PROMPTS, cfg)  # one new prompt
    assert len(backend.calls) == 6  # only p3's two samples were generated
    assert again.height == 6 and store.rows().height == 6
    assert store.rows()["id"].n_unique() == 6
    assert again.filter(pl.col("parent_id") != "p3")["text"].to_list() == first["text"].to_list()


def test_cancel_keeps_finished_rows_and_resume_finishes_the_rest(store):
    cancel = threading.Event()
    backend = FakeBackend()
    written: list[dict] = []

    def on_row(row: dict) -> None:
        written.append(row)
        if len(written) == 2:
            cancel.set()

    run_completions(backend, store, PROMPTS, CompletionConfig(k=2), cancel=cancel, on_row=on_row)
    assert store.rows().height == 2
    out = run_completions(FakeBackend(), store, PROMPTS, CompletionConfig(k=2))
    assert out.height == 6 and store.rows()["id"].n_unique() == 6


def test_errors_and_empty_answers_are_rows_with_a_status(store):
    class Flaky(FakeBackend):
        def generate(self, requests, *, on_progress=None, on_result=None, cancel=None):
            out = []
            for i, r in enumerate(requests):
                g = (
                    Generation(r.key, "", "error", error="prompt too long: 2000 tokens")
                    if i == 0
                    else Generation(r.key, "  " if i == 1 else "fine answer", "stop")
                )
                out.append(g)
                if on_result:
                    on_result(i, g)
            return out

    out = run_completions(Flaky(), store, PROMPTS, CompletionConfig(k=1))
    assert out["status"].to_list() == ["error", "dropped", "kept"]
    assert out["reason"].to_list() == ["prompt too long: 2000 tokens", "empty completion", None]


def test_prompt_frame_problems_are_clear(store):
    with pytest.raises(ValueError, match="'instruction' or 'text'"):
        run_completions(FakeBackend(), store, pl.DataFrame({"question": ["hi"]}))
    with pytest.raises(ValueError, match="row 1 has an empty"):
        run_completions(FakeBackend(), store, pl.DataFrame({"text": ["ok", "  "]}))
    # dropped prompts are not completed; prompts without ids get stable content ids
    frame = pl.DataFrame({"text": ["keep me", "drop me"], "status": ["kept", "dropped"]})
    out = run_completions(FakeBackend(), store, frame, CompletionConfig(k=1))
    assert out.height == 1 and out["instruction"][0] == "keep me"
    again = run_completions(FakeBackend(), store, frame, CompletionConfig(k=1))
    assert again["id"].to_list() == out["id"].to_list()


@pytest.mark.model
def test_real_model_completions_and_resume(llama_backend, tmp_path):
    store = RunStore.create(tmp_path, "real")
    prompts = pl.DataFrame(
        {"id": ["a", "b"], "instruction": ["What is the capital of France?", "Name two fruits."]}
    )
    cfg = CompletionConfig(k=2, seed=7, params=SamplingParams(max_tokens=24, temperature=0.8))
    out = run_completions(llama_backend, store, prompts, cfg)
    assert out.height == 4
    assert out["seed"].to_list() == [7, 8, 7, 8]
    assert (out["status"] == "kept").all(), out.select("status", "reason")
    assert all(t.strip() for t in out["text"])
    assert (out["completion_tokens"] <= 24).all() and (out["completion_tokens"] > 0).all()
    assert out["prompt"][0].startswith("### Instruction:\nWhat is the capital of France?")
    again = run_completions(llama_backend, store, prompts, cfg)
    assert store.rows().height == 4 and again["text"].to_list() == out["text"].to_list()
