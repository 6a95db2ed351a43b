"""The Magpie section driven headless: on a base model it says why it cannot run (Run disabled), on a chat model
Run writes user turns (and conversations with n_turns > 1). One test runs the real SmolLM2 chat model."""

from __future__ import annotations

import html

import polars as pl
import pytest

from tests.generate.test_magpie import CHATML_TEMPLATE
from tests.widgets.test_app import make_app
from widgets.magpie_panel import MagpiePanel
from workbench.engine import FakeBackend, GenerationRequest
from workbench.session import Session

REQUESTS = [
    "How do I keep basil alive on a windowsill?",
    "Hi",
    "What is a good way to learn Spanish verbs quickly?",
    "Write a short poem about autumn leaves falling.",
]


def chat_user(req: GenerationRequest) -> str:
    """Scripted chat model: first user turns by seed, later user turns and answers from the conversation."""
    if req.messages is not None:
        return f"Sure, here is help with: {req.messages[-1]['content']}"
    if req.prompt == "<|im_start|>user\n":
        return REQUESTS[req.params.seed % len(REQUESTS)] + "<|im_end|>"
    return "And could you also explain it more simply for a child?"


def chat_backend(**kw) -> FakeBackend:
    return FakeBackend(responder=chat_user, chat_template=CHATML_TEMPLATE, **kw)


@pytest.fixture
def errors() -> list[str]:
    return []


def _session(tmp_path, backend, errors: list[str] | None = None) -> Session:
    s = Session(backend, runs_root=tmp_path, run="magpie")
    if errors is not None:
        s.subscribe(lambda what: errors.append(s.last_error or "") if what == "error" else None)
    return s


def _magpie_rows(session: Session, stage: str = "instruction") -> pl.DataFrame:
    rows = session.store.rows()
    return rows.filter((pl.col("stage") == stage) & (pl.col("source") == "magpie")) if rows.height else rows


def test_a_base_model_says_why_and_what_to_load_with_run_disabled(tmp_path, errors):
    session = _session(tmp_path, FakeBackend(), errors)
    panel = MagpiePanel(session)
    assert panel.run_button.disabled
    note = html.unescape(panel.availability.value)
    assert "Magpie cannot run" in note and "base model" in note and "no chat template" in note
    assert "smollm2" in note and "Load" in note
    panel.run_button.click()  # a click that reaches it anyway is refused with the same reason
    assert panel.job is None and panel.last_config is None
    assert errors and errors[-1].startswith("Magpie: cannot start") and "smollm2" in errors[-1]
    assert session.store.rows().height == 0


def test_loading_a_chat_model_enables_run_and_a_base_model_disables_it(tmp_path):
    session = _session(tmp_path, FakeBackend())
    panel = MagpiePanel(session)
    session.use_model(chat_backend())
    assert not panel.run_button.disabled and panel.unavailable is None
    assert "has a chat template" in panel.availability.value
    session.use_model(FakeBackend())
    assert panel.run_button.disabled and "base model" in panel.availability.value


def test_a_model_still_loading_is_not_loaded_by_the_panel(tmp_path, errors):
    session = Session("default", runs_root=tmp_path, run="loading")
    session.subscribe(lambda what: errors.append(session.last_error or "") if what == "error" else None)
    panel = MagpiePanel(session)
    assert "still loading" in panel.availability.value and not session.model_loaded
    assert panel.run() is None and "still loading" in errors[-1]
    assert not session.model_loaded  # neither building the panel nor Run blocked the kernel on a load


def test_chat_model_writes_user_turns_and_shows_each_verdict(tmp_path):
    session = _session(tmp_path, chat_backend())
    panel = MagpiePanel(session)
    panel.num_prompts.value, panel.max_tokens.value, panel.seed.value = 6, 32, 2
    panel.run_button.click()
    assert panel.job.wait(60).state == "done", panel.job.error_text
    rows = _magpie_rows(session)
    assert rows.height == 6 and set(rows["model"]) == {"fake"}
    assert "<|im_end|>" not in "".join(rows["text"])  # the template's end-of-turn marker stops each turn
    reasons = dict(zip(rows["text"], rows["reason"], strict=True))
    assert reasons["Hi"] == "too_short"
    kept = rows.filter(pl.col("status") == "kept")
    assert kept.height == len(set(kept["text"])) >= 2  # repeats of a kept request are dropped as duplicates
    for text in rows["text"]:
        assert html.escape(text) in panel.table.value
    assert f"<b>{kept.height}</b> user turns kept" in panel.counts.value
    assert panel.last_config == panel.config() and panel.last_config.num_prompts == 6
    assert panel.last_config.sampling.max_tokens == 32


def test_n_turns_grows_conversations_and_the_table_shows_their_turns(tmp_path):
    session = _session(tmp_path, chat_backend())
    panel = MagpiePanel(session)
    panel.num_prompts.value, panel.n_turns.value, panel.answer_tokens.value = 4, 2, 40
    panel.run_button.click()
    assert panel.job.wait(60).state == "done", panel.job.error_text
    kept_turns = _magpie_rows(session).filter(pl.col("status") == "kept")
    convs = _magpie_rows(session, "conversation")
    assert convs.height == kept_turns.height >= 1
    msgs = convs["messages"].to_list()[0]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert "wb-magpie-conversations" in panel.table.value
    assert html.escape("And could you also explain it more simply for a child?") in panel.table.value
    assert f"of {convs.height} conversations kept" in panel.counts.value
    assert panel.last_config.n_turns == 2 and panel.last_config.answer_sampling.max_tokens == 40


def test_stop_keeps_finished_turns(tmp_path):
    session = _session(tmp_path, chat_backend(delay_s=0.1))
    panel = MagpiePanel(session)
    panel.num_prompts.value = 40
    job = panel.run()
    assert job is not None
    while not session.store.ids("instruction") and job.running:
        job.wait(0.05)
    panel.stop_button.click()
    assert job.wait(30).state == "cancelled"
    assert "cancelled after" in panel.progress_label.value and not panel.run_button.disabled
    assert 0 < _magpie_rows(session).height < 40


def test_app_section_registers_the_panel_and_clears_its_stale_error(tmp_path):
    app = make_app(tmp_path, backend=FakeBackend())
    assert app.generate_sections.children[2] is app.magpie and app.magpie in app._job_panels()
    assert app.magpie.run_button.disabled
    app.magpie.run_button.click()
    assert app.errors[-1].startswith("Magpie:") and app.error_row.layout.display == "flex"
    app.session.use_model(chat_backend())
    app.generate_sections.selected_index = 2
    assert not app.magpie.run_button.disabled
    app.magpie.num_prompts.value = 3
    app.magpie.run_button.click()
    assert app.magpie.job.wait(60).state == "done", app.magpie.job.error_text
    assert app.error_row.layout.display == "none"
    # Save recipe records a magpie step (not a self-instruct one) with the config the Run used.
    steps = app.recipe_steps()
    assert [s.kind for s in steps] == ["magpie"] and steps[0].config == app.magpie.last_config  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def smollm2():
    from workbench.engine import load_backend

    backend = load_backend("smollm2")
    yield backend
    backend.close()


@pytest.mark.model
def test_real_smollm2_writes_two_user_turns(smollm2, tmp_path):
    session = _session(tmp_path, smollm2)
    panel = MagpiePanel(session)
    assert not panel.run_button.disabled, panel.availability.value
    panel.num_prompts.value, panel.n_turns.value, panel.max_tokens.value = 2, 1, 24
    panel.run_button.click()
    assert panel.job.wait(300).state == "done", panel.job.error_text
    rows = _magpie_rows(session)
    assert rows.height == 2 and set(rows["status"]) <= {"kept", "dropped"}
    assert all("<|im_start|>" not in t and "<|im_end|>" not in t for t in rows["text"])
    assert all(html.escape(t) in panel.table.value for t in rows["text"])
    assert panel.job.progress is not None and panel.job.progress.tokens_generated > 0
