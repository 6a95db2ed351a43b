"""The Conversation section driven headless: on a base model it says why it cannot run (Run disabled), a bad
user-simulator template is shown at its field, and on a chat model Run grows the run's answers into
conversations (turns, seed and template from the knobs, kept in `last_config`), with Stop keeping what finished."""

from __future__ import annotations

import html
from typing import Any

import polars as pl
import pytest

from tests.generate.test_magpie import CHATML_TEMPLATE
from tests.widgets.test_app import make_app
from widgets.conversation_panel import ConversationPanel, simulated_conversations
from workbench.engine import FakeBackend, GenerationRequest
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.generate.conversation import ConversationConfig, extend_conversations
from workbench.jobs import Job
from workbench.session import Session


def done(panel: Any) -> Job:
    """Click Run and wait for the job to end; fails with the job's error if it did not finish."""
    panel.run_button.click()
    assert panel.job is not None, panel.error.value
    assert panel.job.wait(60).state == "done", panel.job.error_text
    return panel.job


def chat(req: GenerationRequest) -> str:
    """Scripted chat model: the simulator asks a follow-up, the assistant answers the last message."""
    if req.messages is not None and "playing the user" in req.messages[-1]["content"]:
        return "User: Could you give one more example?"
    if req.messages is not None:
        return f"Here is an answer to: {req.messages[-1]['content'][:40]}"
    return "Plain answer about the instruction."


@pytest.fixture
def errors() -> list[str]:
    return []


def answered(tmp_path, backend, errors: list[str] | None = None, n: int = 3) -> Session:
    """A session whose run holds `n` answered instructions."""
    s = Session(backend, runs_root=tmp_path, run="conv")
    if errors is not None:
        s.subscribe(lambda what: errors.append(s.last_error or "") if what == "error" else None)
    prompts = pl.DataFrame({"id": [f"p{i}" for i in range(n)], "instruction": [f"Name {i + 2} rivers." for i in range(n)],
                            "input": [""] * n, "round": [0] * n})  # fmt: skip
    run_completions(backend, s.store, prompts, CompletionConfig(k=1))
    return s


def test_a_base_model_says_why_with_run_disabled(tmp_path, errors):
    session = answered(tmp_path, FakeBackend(), errors)
    panel = ConversationPanel(session)
    note = html.unescape(panel.availability.value)
    assert panel.run_button.disabled and "cannot be grown" in note and "no chat template" in note and "smollm2" in note
    panel.run_button.click()  # a click that reaches it anyway is refused with the reason
    assert panel.job is None and panel.last_config is None
    assert errors[-1].startswith("Conversation: cannot start") and "base model" in errors[-1]
    session.use_model(FakeBackend(responder=chat, chat_template=CHATML_TEMPLATE))
    assert not panel.run_button.disabled and panel.availability.value == ""


def test_a_bad_template_is_shown_at_its_field_and_refuses_run(tmp_path, errors):
    session = answered(tmp_path, FakeBackend(responder=chat, chat_template=CHATML_TEMPLATE), errors)
    panel = ConversationPanel(session)
    panel.user_template.value = "Continue: {{ transcrpt }}"
    assert "unknown name(s) transcrpt" in html.unescape(panel.template_error.value)
    assert "available: first_user, messages, transcript, turn" in html.unescape(panel.template_error.value)
    panel.run_button.click()
    assert panel.job is None and "user-simulator field" in errors[-1]
    panel.user_template.value = "Continue {% if %}"
    assert "not valid Jinja" in panel.template_error.value
    panel.user_template.value = "Ask a follow-up to: {{ first_user }}"
    assert panel.template_error.value == ""


def test_run_grows_every_answer_into_the_rows_the_library_writes(tmp_path):
    backend = FakeBackend(responder=chat, chat_template=CHATML_TEMPLATE)
    session = answered(tmp_path, backend)
    panel = ConversationPanel(session)
    panel.turns.value, panel.seed.value, panel.max_tokens.value = 2, 4, 64
    done(panel)
    convs = simulated_conversations(session.store.rows())
    assert convs.height == 3 and set(convs["status"]) == {"kept"}
    assert [m["role"] for m in convs["messages"].to_list()[0]] == ["user", "assistant"] * 3
    assert html.escape("Could you give one more example?") in panel.table.value  # the "User:" label is cleaned
    assert "<b>3</b> of 3 conversations kept" in panel.counts.value
    assert panel.last_config == panel.config() and panel.last_config.turns == 2 and panel.last_limit is None
    direct = extend_conversations(backend, panel.rows(), ConversationConfig(
        turns=2, seed=4, sampling=ConversationConfig().sampling.model_copy(update={"max_tokens": 64})))
    assert set(direct["id"]) == set(convs["id"])  # what a recipe's conversation step writes
    panel.limit.value = 1
    done(panel)  # a re-run resumes: nothing new
    assert simulated_conversations(session.store.rows()).height == 3


def test_stop_writes_no_half_conversation_and_run_finishes_them(tmp_path):
    backend = FakeBackend(responder=chat, chat_template=CHATML_TEMPLATE)
    session = answered(tmp_path, backend, n=6)
    session.use_model(FakeBackend(responder=chat, chat_template=CHATML_TEMPLATE, delay_s=0.05))
    panel = ConversationPanel(session)
    panel.turns.value = 3
    job = panel.run()
    assert job is not None
    while job.progress is None and job.running:  # stop once the first turns are in flight
        job.wait(0.02)
    panel.stop_button.click()
    assert job.wait(30).state == "cancelled" and "cancelled after" in panel.progress_label.value
    # All conversations advance turn by turn together, so a stop midway leaves none half-written...
    assert simulated_conversations(session.store.rows()).height == 0
    session.use_model(backend)
    done(panel)  # ...and Run regenerates them from the same seeds
    convs = simulated_conversations(session.store.rows())
    assert convs.height == 6 and all(len(m) == 8 for m in convs["messages"].to_list())


def test_the_app_registers_the_section_and_records_it_in_the_recipe(tmp_path):
    app = make_app(tmp_path, backend=FakeBackend(responder=chat, chat_template=CHATML_TEMPLATE))
    assert app.generate_sections.titles[-1] == "Conversation"
    assert app.generate_sections.children[3] is app.conversation and app.conversation in app._job_panels()
    app.conversation.run_button.click()
    assert app.conversation.job is None and app.errors[-1].startswith("Conversation: cannot start")
    done(app.generate)
    done(app.answers)
    app.conversation.limit.value, app.conversation.turns.value = 2, 1
    done(app.conversation)
    assert app.error_row.layout.display == "none"  # the stale "cannot start" went once the step worked
    steps = app.recipe_steps()
    assert [s.kind for s in steps] == ["self_instruct", "completions", "conversation"]
    assert steps[-1].limit == 2 and steps[-1].config == app.conversation.last_config  # type: ignore[union-attr]
