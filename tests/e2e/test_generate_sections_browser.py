"""The Generate tab's sections in a real JupyterLab 1280 pixels wide and Debian's Chromium: open Evolve, run it and
see the lineage table and the drops' reasons, then Preview it (a few rewrites and the full run's estimate, the
lineage untouched); open Magpie on a base model and see why it cannot run, Run disabled. On a chat model: grow two
answers into conversations in the Conversation section, then Preview the Judge tab in absolute and pairwise mode.
Each section fits (no label cut off, nothing scrolling sideways). The app runs on a scripted FakeBackend (this is
about what a person sees, not the model). Every wait is on the widget's own DOM; screenshots go to
test-artifacts/e2e/."""

from __future__ import annotations

import re

import pytest

from tests.e2e.lab_pages import WAIT, open_app, open_tab
from tests.e2e.test_app_friction_browser import CUT_OFF, SIDEWAYS
from widgets.app import GENERATE_SECTIONS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

NOTEBOOK = "generate_sections.ipynb"
SETUP = """\
import os
from tests.widgets.test_panel_previews import responder  # Evolve's scripted rewriter (known drops per operator)
from widgets import Workbench                                # and plain answers to Preview's speed probe
from workbench.engine import FakeBackend
from workbench.session import Session

session = Session(FakeBackend(responder=responder), runs_root=os.environ["WORKBENCH_RUNS_ROOT"], run="sections")
app = Workbench(session=session)
app
"""
CHAT_NOTEBOOK = "generate_sections_chat.ipynb"
CHAT_SETUP = """\
import os
from pathlib import Path
from tests.widgets.test_panel_previews import answered, chat_backend  # a scripted chat model for every step
from widgets import Workbench

session = answered(Path(os.environ["WORKBENCH_RUNS_ROOT"]), chat_backend(), n=3)  # two answers to each of 3
app = Workbench(session=session)
app
"""
SECTION_TAB = ".wb-generate-sections > .lm-TabBar .lm-TabBar-tab"


def _fits(page) -> None:
    app = page.locator(".wb-app")
    assert app.evaluate(CUT_OFF) == []
    assert app.evaluate(SIDEWAYS) == []


def test_evolve_runs_and_shows_lineage_and_magpie_says_why_not(lab_server, browser, artifacts):
    context, page = open_app(lab_server, browser, NOTEBOOK, SETUP, height=1800)
    try:
        page.locator(".wb-app > .wb-tabs > .lm-TabBar .lm-TabBar-tab", has_text="Generate").first.click()
        page.wait_for_selector(".wb-generate-sections", state="visible", timeout=WAIT)
        tabs = [t.strip() for t in page.locator(SECTION_TAB).all_inner_texts()]
        assert tabs == list(GENERATE_SECTIONS)
        page.wait_for_selector("button.wb-answers-run", state="visible", timeout=WAIT)  # Answers stays below
        page.wait_for_selector(".wb-selfinstruct", state="visible", timeout=WAIT)  # the first section is open
        _fits(page)

        # Evolve: three seeds, every operator, two rounds; the lineage and the drops appear.
        page.locator(SECTION_TAB, has_text="Evolve").first.click()
        panel = page.locator(".wb-evolve")
        panel.wait_for(state="visible", timeout=WAIT)
        _fits(page)
        page.locator(".wb-app").screenshot(path=str(artifacts / "generate-01-evolve.png"))
        limit = panel.locator(".widget-inline-hbox:has(> label:text-is('instructions to evolve')) input")
        limit.fill("3")
        limit.press("Enter")
        page.wait_for_selector(".wb-evolve-source:has-text('first 3 seed tasks')", timeout=WAIT)
        rounds = panel.locator(".widget-inline-hbox:has(> label:text-is('rounds')) input")
        rounds.fill("2")
        rounds.press("Enter")
        panel.locator(".widget-inline-hbox:has(> label:text-is('operators per instruction')) select").select_option(
            label="every picked operator"
        )
        page.locator("button.wb-evolve-run").click()
        page.wait_for_selector(".wb-evolve-lineage table tr[data-id]", timeout=WAIT)
        page.wait_for_selector("button.wb-evolve-run:enabled", timeout=WAIT)
        page.wait_for_selector(".wb-evolve .wb-evolve-counts:has-text('2 rounds so far')", timeout=WAIT)
        lineage = page.locator(".wb-evolve-lineage")
        # A second-round rewrite shows its seed, then its first-round parent with the operator that made it.
        assert lineage.locator("tr[data-id]:has-text('→ add_constraints:')").count() > 0
        drops = page.locator(".wb-evolve-drops").inner_text()
        assert "unchanged" in drops and "empty" in drops
        assert "done" in panel.inner_text()
        _fits(page)
        box = page.locator(".wb-app").bounding_box()  # the knobs and the first lineage rows: the table is long
        page.screenshot(path=str(artifacts / "generate-02-evolve-lineage.png"), full_page=True,
                        clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": min(box["height"], 1500)})  # fmt: skip

        # Evolve's Preview: a few rewrites and the full run's estimate; the run's lineage stays as it was.
        counts = page.locator(".wb-evolve-counts").inner_text()
        page.locator("button.wb-evolve-preview").click()
        estimate = page.locator(".wb-evolve-estimate", has_text="a full run")
        estimate.wait_for(timeout=WAIT)
        text = estimate.inner_text()
        assert text.startswith("preview: ") and "evolution:" in text and "2 generations" in text
        assert panel.locator(".wb-preview-table tr").count() >= 2  # a header and a rewrite
        page.wait_for_selector("button.wb-evolve-preview:enabled", timeout=WAIT)
        assert page.locator(".wb-evolve-counts").inner_text() == counts  # nothing written to the run
        _fits(page)
        box = panel.bounding_box()
        page.screenshot(path=str(artifacts / "generate-04-evolve-preview.png"), full_page=True,
                        clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": min(box["height"], 1200)})  # fmt: skip

        # Magpie on a base model: why it cannot run and what to load, with Run disabled.
        page.locator(SECTION_TAB, has_text="Magpie").first.click()
        page.wait_for_selector(".wb-magpie .wb-magpie-availability:has-text('Magpie cannot run')", timeout=WAIT)
        note = page.locator(".wb-magpie-availability").inner_text()
        assert "base model" in note and "smollm2" in note
        page.wait_for_selector("button.wb-magpie-run:disabled", timeout=WAIT)
        _fits(page)
        page.locator(".wb-app").screenshot(path=str(artifacts / "generate-03-magpie-base-model.png"))
    finally:
        page.screenshot(path=str(artifacts / "generate-99-last.png"), full_page=True)
        context.close()


def test_conversation_grows_two_answers_and_the_judge_previews_both_modes(lab_server, browser, artifacts):
    context, page = open_app(lab_server, browser, CHAT_NOTEBOOK, CHAT_SETUP, height=1800)
    try:
        open_tab(page, "Generate")
        page.wait_for_selector(".wb-generate-sections", state="visible", timeout=WAIT)

        # Conversation: two of the run's answers, one more turn each; the table shows both conversations.
        page.locator(SECTION_TAB, has_text="Conversation").first.click()
        panel = page.locator(".wb-conversation")
        panel.wait_for(state="visible", timeout=WAIT)
        assert "cannot be grown" not in page.locator(".wb-conversation-availability").inner_text()
        limit = panel.locator(".widget-inline-hbox:has(> label:text-is('rows to extend (0: all)')) input")
        limit.fill("2")
        limit.press("Enter")
        page.wait_for_selector("button.wb-conversation-run:enabled", timeout=WAIT)
        page.locator("button.wb-conversation-run").click()
        page.wait_for_selector(".wb-conversation:has-text('2 of 2 conversations kept')", timeout=WAIT)
        page.wait_for_selector("button.wb-conversation-run:enabled", timeout=WAIT)
        label = panel.locator(".widget-html", has_text=re.compile(r"^done · \d+ rows"))
        label.wait_for(timeout=WAIT)
        rows = page.locator(".wb-conversation-table table.wb-conversation-rows tr")
        assert rows.count() == 3  # a header and the two conversations
        table = page.locator(".wb-conversation-table").inner_text()
        assert "user:" in table and "assistant:" in table and "Could you give one more example?" in table
        _fits(page)
        panel.screenshot(path=str(artifacts / "generate-05-conversation-done.png"))

        # The Judge tab's Preview, absolute: a few of the sample graded with the editor's rubric, nothing saved.
        open_tab(page, "Judge")
        judge = page.locator(".wb-judge")
        judge.wait_for(state="visible", timeout=WAIT)
        page.locator("button.wb-judge-preview").click()
        estimate = page.locator(".wb-judge-estimate", has_text="a full run")
        estimate.wait_for(timeout=WAIT)
        assert estimate.inner_text().startswith("preview: 4 rows") and "judgment: 6 requests" in estimate.inner_text()
        assert judge.locator(".wb-preview-table tr").count() == 5  # a header and four judgments
        assert "Score:" in judge.locator(".wb-preview-table").inner_text()
        assert page.locator(".wb-judge table.wb-judge-parse").count() == 0  # no judgment reached the run
        page.wait_for_selector("button.wb-judge-preview:enabled", timeout=WAIT)
        _fits(page)
        judge.screenshot(path=str(artifacts / "judge-preview-01-absolute.png"))

        # Pairwise: both orders of a few pairs, priced for every pair of the sample.
        judge.locator(".widget-toggle-buttons button:text-is('pairwise')").click()
        page.locator("button.wb-judge-preview").click()
        pairwise = page.locator(".wb-judge-estimate", has_text="each in both orders")
        pairwise.wait_for(timeout=WAIT)
        assert "3 pairs" in pairwise.inner_text() and "judgment: 6 requests" in pairwise.inner_text()
        assert "Winner: B" in judge.locator(".wb-preview-table").inner_text()
        assert page.locator(".wb-judge table.wb-judge-parse").count() == 0
        _fits(page)
        judge.screenshot(path=str(artifacts / "judge-preview-02-pairwise.png"))
    finally:
        page.screenshot(path=str(artifacts / "generate-98-chat-last.png"), full_page=True)
        context.close()
