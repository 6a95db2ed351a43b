"""The Generate tab's sections in a real JupyterLab 1280 pixels wide and Debian's Chromium: open Evolve, run it and
see the lineage table and the drops' reasons; open Magpie on a base model and see why it cannot run, Run disabled.
Each section fits (no label cut off, nothing scrolling sideways). The app runs on a scripted FakeBackend (this is
about what a person sees, not the model). Every wait is on the widget's own DOM; screenshots go to
test-artifacts/e2e/."""

from __future__ import annotations

import pytest

from tests.e2e.lab_pages import WAIT, open_app
from tests.e2e.test_app_friction_browser import CUT_OFF, SIDEWAYS
from widgets.app import GENERATE_SECTIONS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

NOTEBOOK = "generate_sections.ipynb"
SETUP = """\
import os
from tests.widgets.test_evolve_panel import rewriter  # a scripted rewriter: known drops per operator
from widgets import Workbench
from workbench.engine import FakeBackend
from workbench.session import Session

session = Session(FakeBackend(responder=rewriter), runs_root=os.environ["WORKBENCH_RUNS_ROOT"], run="sections")
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
