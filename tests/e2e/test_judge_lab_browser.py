"""Judge the judge in the app's Judge tab, in a real JupyterLab and Debian's Chromium (issue 13).

The app runs on a scripted judge (it prefers the longer reply, so its agreement is the length
baseline's) because this test is about what a person sees: open the Judge tab, open the "Judge the
judge" section, run it on 4 shipped hh-rlhf pairs, and read the report table with the baselines beside
each configuration and the chart. Every wait is on the widgets' own DOM; screenshots go to
test-artifacts/e2e/.
"""

from __future__ import annotations

import pytest

from tests.e2e.lab_pages import WAIT, open_app

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

NOTEBOOK = "judge_lab.ipynb"
# Text an element cannot show in full: ipywidgets labels and buttons cut it with an ellipsis.
CUT_OFF = """(root) => [...root.querySelectorAll('.widget-label, .widget-label-basic span, .jupyter-button')]
  .filter((e) => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map((e) => (e.textContent || '').trim() || e.title)"""
SETUP = """\
import os
from tests.judge.lab_fakes import LabFake, texts_of
from widgets import Workbench
from workbench.judge import load_preference_pairs
from workbench.session import Session

longer = LabFake(texts_of(load_preference_pairs("hh-rlhf")), lambda a, b: 0.9 if len(a) > len(b) else 0.1)
session = Session(longer, runs_root=os.environ["WORKBENCH_RUNS_ROOT"], run="judge-lab-e2e")
app = Workbench(session=session)
app
"""


def test_judge_the_judge_shows_the_report_with_baselines(lab_server, browser, artifacts):
    context, page = open_app(lab_server, browser, NOTEBOOK, SETUP, height=1800)
    try:
        page.locator(".wb-app > .wb-tabs > .lm-TabBar .lm-TabBar-tab", has_text="Judge").first.click()
        sections = page.locator(".wb-judge-sections")
        sections.wait_for(state="visible", timeout=WAIT)
        sections.get_by_text("Judge the judge: agreement vs baselines").click()
        lab = page.locator(".wb-judge-lab")
        lab.wait_for(state="visible", timeout=WAIT)
        assert lab.evaluate(CUT_OFF) == []  # every label and button reads in full
        listed = lab.locator("select[multiple]").inner_text().replace("\xa0", " ")  # the select shows nbsp
        assert "consistent · auto" in listed and "probability · auto" in listed  # two configurations ready
        size = lab.locator(".widget-inline-hbox:has(> label:text-is('pairs')) input")
        size.fill("4")
        size.press("Enter")
        lab.locator("button.wb-judge-lab-run").click()
        table = lab.locator("table.wb-judge-report-table")
        table.wait_for(state="visible", timeout=WAIT)
        page.wait_for_selector(".wb-judge-lab .vega-embed svg", timeout=WAIT)
        rows = table.locator("tr.wb-judge-report-row")
        assert rows.count() == 2
        headers = table.locator("th").all_inner_texts()
        for name in ("agreement [95% CI]", "random", "always first", "longest", "shortest", "kappa"):
            assert name in headers
        for r in range(2):
            agreement = rows.nth(r).locator("td[data-col='agreement']").inner_text()
            assert "[" in agreement and "]" in agreement  # the value with its CI
            # A judge that prefers the longer reply agrees exactly as often as the 'longest' baseline.
            value = agreement.split("[")[0].strip()
            assert rows.nth(r).locator("td[data-col='longest']").inner_text() == value
        baselines = lab.locator("table.wb-judge-baselines tr[data-baseline]")
        assert baselines.count() == 4
        for cell in rows.first.locator("td[data-col='n']").all_inner_texts():
            assert cell == "4"
        lab.screenshot(path=str(artifacts / "judge-lab-report.png"))
    finally:
        page.screenshot(path=str(artifacts / "judge-lab-99-last.png"), full_page=True)
        context.close()
