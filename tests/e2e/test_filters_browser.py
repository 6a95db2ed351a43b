"""The Filters tab in a real JupyterLab 1280 pixels wide and Debian's Chromium: open it on a small generated run,
change a threshold and see the counts change, with no label cut off and nothing scrolling sideways. The app runs on
the scripted FakeBackend (this is about what a person sees, not the model). Every wait is on the widget's own DOM;
screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import pytest

from tests.e2e.lab_pages import WAIT, open_app
from tests.e2e.test_app_friction_browser import CUT_OFF, SIDEWAYS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

NOTEBOOK = "filters.ipynb"
SETUP = """\
import os
from tests.widgets.test_app import responder  # scripted self-instruct candidates
from widgets import Workbench
from workbench.engine import FakeBackend
from workbench.session import Session

session = Session(FakeBackend(responder=responder), runs_root=os.environ["WORKBENCH_RUNS_ROOT"], run="filters")
app = Workbench(session=session, generate={"num_instructions": 6, "rounds": 3, "prompts_per_round": 6, "seed": 3})
assert app.generate.run().wait(60).state == "done"
app
"""
LENGTH_DROPPED = ".wb-filters .wb-filters-counts tr[data-filter='length'] td.wb-filters-n"


def test_filters_tab_refilters_live_when_a_threshold_changes(lab_server, browser, artifacts):
    context, page = open_app(lab_server, browser, NOTEBOOK, SETUP, height=1600)
    try:
        page.locator(".wb-app > .wb-tabs > .lm-TabBar .lm-TabBar-tab", has_text="Filters").first.click()
        panel = page.locator(".wb-filters")
        panel.wait_for(state="visible", timeout=WAIT)
        cell = page.locator(LENGTH_DROPPED)
        cell.wait_for(state="visible", timeout=WAIT)
        summary = page.locator(".wb-filters .wb-filters-summary")
        assert "kept" in summary.inner_text() and "instructions" in summary.inner_text()
        before_n, before_summary = int(cell.inner_text()), summary.inner_text()
        app = page.locator(".wb-app")
        app.screenshot(path=str(artifacts / "filters-01-tab.png"))
        assert app.evaluate(CUT_OFF) == []
        assert app.evaluate(SIDEWAYS) == []

        # No kept instruction has 60 words: the length filter now drops every row the others kept.
        words = page.locator(".wb-filters .widget-inline-hbox:has(> label:text-is('min words')) input")
        words.fill("60")
        words.press("Enter")
        # The HTML widgets replace their contents on each update: look the elements up afresh every time.
        page.wait_for_function("([s, n]) => Number(document.querySelector(s)?.innerText) > n",
                               arg=[LENGTH_DROPPED, before_n], timeout=WAIT)  # fmt: skip
        page.wait_for_function("([s, t]) => document.querySelector(s).innerText !== t",
                               arg=[".wb-filters .wb-filters-summary", before_summary], timeout=WAIT)  # fmt: skip
        assert summary.inner_text().startswith("0 kept")
        assert "too_short" in page.locator(".wb-filters .wb-filters-dropped").inner_text()
        panel.screenshot(path=str(artifacts / "filters-02-min-words-60.png"))
    finally:
        page.screenshot(path=str(artifacts / "filters-99-last.png"), full_page=True)
        context.close()
