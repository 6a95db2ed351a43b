"""Preview in the Evolve, Magpie, Conversation and Judge panels, driven headless: click Preview, wait for its job,
read the rows and the full run's estimate in the box, and check the run's rows did not change (a preview works in
a scratch directory). A scripted chat FakeBackend plays every step; one test runs the real default model."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.generate.test_magpie import CHATML_TEMPLATE
from tests.widgets.test_conversation_panel import chat as conversation_chat
from tests.widgets.test_evolve_panel import rewriter
from tests.widgets.test_magpie_panel import chat_user
from widgets.conversation_panel import ConversationPanel
from widgets.evolve_panel import EvolvePanel
from widgets.judge import JudgePanel
from widgets.magpie_panel import MagpiePanel
from workbench.engine import FakeBackend, GenerationRequest
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.session import Session

SHORT, LONG = "Nile.", "The Nile, the Amazon and the Yangtze are three long rivers."


def responder(req: GenerationRequest) -> str:
    """One scripted chat model for every step: a length judge (absolute and pairwise), Evolve's rewriter,
    Magpie's user turns, the conversation simulator and answers, and answers short or long by seed."""
    text = req.prompt or req.messages[-1]["content"]  # type: ignore[index]
    graded = re.search(r"Response to grade:\n(.*?)(?:\n\n|\nFeedback:|\Z)", text, re.S)
    if graded:
        return f"Judged by length.\nScore: {min(5, 1 + len(graded.group(1)) // 12)}"
    if "Response A:" in text:
        return "The longer one says more.\nWinner: B"
    if "Prompt#:" in text:
        return rewriter(req)
    if req.prompt is not None and req.prompt.startswith("<|im_start|>user"):
        return chat_user(req)
    if req.messages is not None and ("playing the user" in text or len(req.messages) > 1):
        return conversation_chat(req)  # the simulator's follow-up, or an answer inside a conversation
    return SHORT if req.params.seed % 2 == 0 else LONG


def chat_backend() -> FakeBackend:
    return FakeBackend(responder=responder, chat_template=CHATML_TEMPLATE)


def answered(tmp_path: Path, backend: Any, n: int = 3) -> Session:
    """A session whose run holds two answers to each of `n` instructions (so pairwise has pairs)."""
    session = Session(backend, runs_root=tmp_path, run="previews")
    prompts = pl.DataFrame({"id": [f"p{i}" for i in range(n)], "instruction": [f"Name {i + 2} rivers." for i in range(n)],
                            "input": [""] * n, "round": [0] * n})  # fmt: skip
    run_completions(backend, session.store, prompts, CompletionConfig(k=2))
    return session


def run_state(session: Session) -> tuple[pl.DataFrame, list[str]]:
    """The run's rows and the files of its directory: what a preview must leave as they are."""
    root = session.store.path
    return session.store.rows(), sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def preview_done(panel: Any, timeout: float = 60) -> str:
    """Click the panel's Preview, wait for its job, and return the estimate's text (the job must finish)."""
    panel.preview.button.click()
    job = panel.preview.job
    assert job is not None, panel.preview.estimate.value
    assert job.wait(timeout).state == "done", job.error_text
    assert not panel.preview.button.disabled  # ready for another preview
    return html.unescape(panel.preview.estimate.value)


def assert_estimate(text: str, stage: str) -> None:
    assert re.match(r"preview: \d+ rows in [\d.]+ s · a full run ≈ ", text), text
    assert f"{stage}: " in text and "requests" in text


def test_evolve_preview_rewrites_a_few_seeds_and_prices_them_all(tmp_path):
    session = answered(tmp_path, chat_backend())
    panel = EvolvePanel(session)
    panel.limit.value, panel.rounds.value = 6, 2
    before = run_state(session)
    text = preview_done(panel)
    assert_estimate(text, "evolution")
    assert "2 generations" in text
    preview = panel.preview.last
    assert preview is not None and preview.rows.height > 0 and set(preview.rows["stage"]) == {"evolution"}
    (step,) = preview.estimate.substeps
    # 4 of the 6 seeds previewed through both rounds: the full run sends 6/4 as many requests.
    assert step.requests == pytest.approx(preview.rows.height * 6 / 4)
    shown = html.unescape(panel.preview.rows.value)
    assert "<table class='wb-preview-table'>" in shown and "unchanged" in shown  # a drop with its reason
    assert all(t[:60] in shown for t in preview.rows["text"].to_list())  # every rewrite, cut to the table's width
    assert run_state(session)[0].equals(before[0]) and run_state(session)[1] == before[1]
    assert panel.lineage_table.value.startswith("<i>No evolved")  # the panel's own views show the run, untouched


def test_magpie_preview_writes_a_few_user_turns_and_prices_the_full_count(tmp_path):
    session = Session(chat_backend(), runs_root=tmp_path, run="magpie")
    panel = MagpiePanel(session)
    panel.num_prompts.value = 40
    before = run_state(session)
    text = preview_done(panel)
    assert_estimate(text, "instruction")
    preview = panel.preview.last
    assert preview is not None and preview.rows.height == 4
    assert sum(s.requests for s in preview.estimate.substeps) == pytest.approx(40)
    shown = html.unescape(panel.preview.rows.value)
    assert "How do I keep basil alive on a windowsill?" in shown
    assert run_state(session)[0].equals(before[0]) and run_state(session)[1] == before[1]


def test_magpie_preview_on_a_base_model_says_it_cannot_run_not_a_traceback(tmp_path):
    session = Session(FakeBackend(), runs_root=tmp_path, run="magpie-base")
    panel = MagpiePanel(session)
    panel.preview.button.click()
    assert panel.preview.job is None  # refused on the kernel thread, nothing started
    text = html.unescape(panel.preview.estimate.value)
    assert "Preview: Magpie cannot run: " in text and "base model" in text and "smollm2" in text
    assert "Traceback" not in text and "wb-error" in panel.preview.estimate.value
    assert panel.unavailable is not None and panel.unavailable in text  # the reason Run gives, word for word


def test_conversation_preview_extends_a_few_answers_and_prices_every_row(tmp_path):
    session = answered(tmp_path, chat_backend(), n=4)  # 8 answers
    panel = ConversationPanel(session)
    panel.turns.value = 2
    before = run_state(session)
    text = preview_done(panel)
    assert_estimate(text, "conversation")
    assert "4 requests per row" in text
    preview = panel.preview.last
    assert preview is not None and preview.rows.height == 4 and set(preview.rows["stage"]) == {"conversation"}
    (step,) = preview.estimate.substeps
    assert step.requests == pytest.approx(8 * 4)  # every answered row, two simulated turns and two answers each
    assert "Here is an answer to: Could you give one more example?" in html.unescape(panel.preview.rows.value)
    assert run_state(session)[0].equals(before[0]) and run_state(session)[1] == before[1]


def test_conversation_preview_on_a_base_model_gives_runs_reason(tmp_path):
    session = answered(tmp_path, FakeBackend())
    panel = ConversationPanel(session)
    panel.preview.button.click()
    text = html.unescape(panel.preview.estimate.value)
    assert panel.preview.job is None and "base model" in text and "Traceback" not in text


def test_judge_preview_grades_a_few_of_the_sample_with_the_draft_rubric(tmp_path):
    session = answered(tmp_path, chat_backend(), n=4)
    panel = JudgePanel(session, sample_size=6)
    draft = dict(panel.editor.draft)
    draft["name"] = "thoroughness"  # an edit not judged with yet: the preview uses the draft
    panel.editor.draft = draft
    sample_before, rubric_before = panel.sample, panel.rubric
    before = run_state(session)
    text = preview_done(panel)
    assert_estimate(text, "judgment")
    preview = panel.preview.last
    assert preview is not None and preview.rows.height == 4 and set(preview.rows["judge_kind"]) == {"absolute"}
    assert set(preview.rows["rubric"]) == {"thoroughness"}
    (step,) = preview.estimate.substeps
    assert step.requests == pytest.approx(6)  # the whole sample of 6
    shown = html.unescape(panel.preview.rows.value)
    assert "Score: 5" in shown and ">score</th>" in shown
    assert run_state(session)[0].equals(before[0]) and run_state(session)[1] == before[1]
    assert panel.rubric is rubric_before and panel.sample.equals(sample_before) and panel.last_judged is None


def test_judge_preview_pairwise_judges_both_orders_of_a_few_pairs(tmp_path):
    session = answered(tmp_path, chat_backend(), n=4)
    panel = JudgePanel(session, sample_size=3)
    panel.mode.value = "pairwise"
    before = run_state(session)
    text = preview_done(panel)
    assert_estimate(text, "judgment")
    assert "3 pairs, each in both orders" in text
    preview = panel.preview.last
    assert preview is not None and preview.rows.height == 4  # two pairs, both orders
    assert set(preview.rows["judge_kind"]) == {"pairwise"} and set(preview.rows["pair_order"]) == {"AB", "BA"}
    assert preview.estimate.substeps[0].requests == pytest.approx(6)
    shown = html.unescape(panel.preview.rows.value)
    assert "Winner: B" in shown and "<th style='text-align:left;padding:2px 6px'>verdict</th>" in shown
    verdicts = preview.rows["verdict"].drop_nulls().to_list()
    assert verdicts and all(f">{v}</td>" in shown for v in verdicts)  # each row's verdict, in its own column
    assert run_state(session)[0].equals(before[0]) and run_state(session)[1] == before[1]


def test_judge_preview_refuses_a_broken_draft_and_an_empty_run_in_plain_words(tmp_path):
    panel = JudgePanel(Session(chat_backend(), runs_root=tmp_path, run="empty"))
    panel.preview.button.click()
    assert panel.preview.job is None
    assert "no completions to judge" in html.unescape(panel.preview.estimate.value)
    panel = JudgePanel(answered(tmp_path / "b", chat_backend()))
    panel.editor.draft = {**dict(panel.editor.draft), "name": ""}
    panel.preview.button.click()
    text = html.unescape(panel.preview.estimate.value)
    assert panel.preview.job is None and "rubric above has a problem" in text and "needs a name" in text


@pytest.mark.model
def test_real_default_model_previews_evolve_in_seconds(default_backend, tmp_path):
    session = Session(default_backend, runs_root=tmp_path, run="preview-real")
    panel = EvolvePanel(session)
    panel.max_tokens.value = 32
    before = run_state(session)
    t0 = time.monotonic()
    text = preview_done(panel, timeout=300)
    took = time.monotonic() - t0
    # Measured 9 s with the speed probe on a quiet 2-core CPU; a second model process at once made it 169 s.
    assert took < 90, f"the preview took {took:.0f} s"
    assert_estimate(text, "evolution")
    preview = panel.preview.last
    assert preview is not None and preview.rows.height == 4 and preview.estimate.seconds > 0
    assert set(preview.rows["model"]) == {default_backend.name}
    assert run_state(session)[0].equals(before[0]) and run_state(session)[1] == before[1]
