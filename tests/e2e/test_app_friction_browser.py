"""What a newcomer meets in the app (issue 18), in a real JupyterLab 1280 pixels wide and Debian's Chromium.

The app runs on a scripted FakeBackend with a small generated run (instructions, answers, judgments),
because these tests are about what a person sees, not about the model: labels not cut off, no sideways
scroll, the Add-seed flow, the Diversity stage change without Refresh, the chart filter named in the
Inspector with a way to clear it, one plain rubric error, and the Inspector's "?" keys. Every wait is on
the widgets' own DOM; screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import pytest

from tests.e2e.lab_pages import WAIT, open_app

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

WIDTH = 1280
NOTEBOOK = "friction.ipynb"
SETUP = """\
import os
from tests.widgets.test_app import responder  # scripted self-instruct candidates and length-graded judging
from widgets import Workbench
from workbench.engine import FakeBackend
from workbench.session import Session

session = Session(FakeBackend(responder=responder), runs_root=os.environ["WORKBENCH_RUNS_ROOT"], run="friction")
app = Workbench(session=session, generate={"num_instructions": 6, "rounds": 3, "prompts_per_round": 6, "seed": 3})
assert app.generate.run().wait(60).state == "done"
app.answers.k.value = 2
assert app.answers.run().wait(60).state == "done"
app.judge.sample_size.value = 4
assert app.judge.run().wait(60).state == "done"
app
"""

# Text an element cannot show in full: ipywidgets labels and buttons cut it with an ellipsis.
CUT_OFF = """(root) => [...root.querySelectorAll('.widget-label, .widget-label-basic span, .jupyter-button')]
  .filter((e) => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map((e) => (e.textContent || '').trim() || e.title)"""
# Anything that scrolls sideways, and any control that sticks out past the app's right edge.
SIDEWAYS = """(root) => {
  const right = root.getBoundingClientRect().right + 1;
  const out = [];
  for (const e of [root, ...root.querySelectorAll('*')]) {
    if (e.offsetParent === null && e !== root) continue;
    const ox = getComputedStyle(e).overflowX;
    if ((ox === 'auto' || ox === 'scroll') && e.scrollWidth > e.clientWidth + 1) out.push('scrolls: ' + e.className);
    if (e.matches('input, textarea, select, button') && e.getBoundingClientRect().right > right)
      out.push('past the edge: ' + (e.className || e.tagName));
  }
  const area = root.closest('.jp-OutputArea-output');
  if (area && area.scrollWidth > area.clientWidth + 1) out.push('output area scrolls sideways');
  return out;
}"""


@pytest.fixture(scope="module")
def app_page(lab_server, browser, artifacts):
    """JupyterLab 1280 px wide with the app open on a small generated run."""
    context, page = open_app(lab_server, browser, NOTEBOOK, SETUP, width=WIDTH, height=1800)  # tall: whole-tab shots
    try:
        yield page
    finally:
        page.screenshot(path=str(artifacts / "friction-99-last.png"), full_page=True)
        context.close()


def _tab(page, title: str) -> None:
    page.locator(".wb-app > .wb-tabs > .lm-TabBar .lm-TabBar-tab", has_text=title).first.click()


def _field(scope, kind: str, label: str):
    return scope.locator(f".widget-{kind}:has(> label:text-is('{label}')) {'textarea' if kind == 'textarea' else 'input'}")


@pytest.mark.parametrize("title", ["Seeds", "Generate", "Filters", "Inspect", "Judge", "Diversity", "Compare", "Export"])
def test_every_tab_fits_1280_pixels_with_no_label_cut_off(app_page, artifacts, title):
    page = app_page
    _tab(page, title)
    page.wait_for_selector(".wb-app > .wb-tabs > .widget-tab-contents > .widget-box:not(.lm-mod-hidden)", timeout=WAIT)
    if title == "Diversity":
        page.wait_for_selector(".wb-diversity .vega-embed svg", timeout=WAIT)
    app = page.locator(".wb-app")
    app.screenshot(path=str(artifacts / f"friction-tab-{title.lower()}.png"))
    assert app.evaluate(CUT_OFF) == []
    assert app.evaluate(SIDEWAYS) == []


def test_add_seed_after_picking_one_copies_nothing_and_new_clears(app_page, artifacts):
    page = app_page
    _tab(page, "Seeds")
    seeds = page.locator(".wb-seeds:visible")
    seeds.locator(".wb-seeds-picker select").select_option(index=2)  # wb_seed_2: the haiku, with an example output
    output = _field(seeds, "textarea", "example output")
    page.wait_for_function("(e) => e.value.includes('Silent flakes')", arg=output.element_handle(), timeout=WAIT)
    assert "Editing wb_seed_2" in seeds.locator(".wb-seeds-mode").inner_text()
    _field(seeds, "textarea", "instruction").fill("Name two planets with rings.")
    _field(seeds, "text", "category").fill("science")
    seeds.locator("button.wb-seeds-add").click()
    status = seeds.locator(".wb-seeds-status")
    status.filter(has_text="not copied").wait_for(timeout=WAIT)
    assert "wb_seed_2" in status.inner_text()
    page.wait_for_function("(e) => e.value === ''", arg=output.element_handle(), timeout=WAIT)  # the new seed's own
    seeds.locator("button.wb-seeds-new").click()
    instruction = _field(seeds, "textarea", "instruction")
    page.wait_for_function("(e) => e.value === ''", arg=instruction.element_handle(), timeout=WAIT)
    seeds.locator(".wb-seeds-mode").filter(has_text="New seed").wait_for(timeout=WAIT)
    seeds.screenshot(path=str(artifacts / "friction-seeds-add.png"))


def test_diversity_stage_change_redraws_without_refresh(app_page):
    page = app_page
    _tab(page, "Diversity")
    status = page.locator(".wb-diversity-status")
    status.filter(has_text="rows in").wait_for(timeout=WAIT)
    stage = page.locator(".wb-diversity .widget-dropdown:has(> label:text-is('stage')) select")
    assert stage.evaluate("(s) => s.options[s.selectedIndex].text") == "instruction"  # not judge outputs mixed in
    before = status.inner_text()
    stage.select_option(label="completion")
    page.wait_for_function("([e, t]) => e.innerText !== t && e.innerText.includes('rows in')",
                           arg=[status.element_handle(), before], timeout=WAIT)  # fmt: skip
    assert page.locator(".wb-diversity button", has_text="Refresh").count() == 1  # there, but not needed
    stage.select_option(label="instruction")
    page.wait_for_function("([e, t]) => e.innerText === t", arg=[status.element_handle(), before], timeout=WAIT)


def test_a_chart_click_filters_the_inspector_visibly_and_can_be_cleared(app_page, artifacts):
    page = app_page
    _tab(page, "Diversity")
    bar = page.locator(".wb-chart-shape svg .mark-rect path").first
    bar.wait_for(state="visible", timeout=WAIT)
    bar.click()
    page.locator(".wb-diversity-selection").filter(has_text="rows selected").wait_for(timeout=WAIT)
    _tab(page, "Inspect")
    note = page.locator(".wb-inspector-chart-filter")
    note.wait_for(state="visible", timeout=WAIT)
    assert "filtered by a chart selection" in note.inner_text() and "shape chart" in note.inner_text()
    assert "filtered by chart" in page.locator(".wb-inspector-pages").inner_text()
    page.locator(".wb-inspector-panel button", has_text="refresh").click()  # the filter stays, and says so
    note.wait_for(state="visible", timeout=WAIT)
    page.locator(".wb-app").screenshot(path=str(artifacts / "friction-chart-filter.png"))
    note.locator("button.wb-inspector-clear-ids").click()
    note.wait_for(state="hidden", timeout=WAIT)
    _tab(page, "Diversity")
    page.wait_for_function("() => !document.querySelector('.wb-diversity-selection').innerText.trim()", timeout=WAIT)


def test_inspector_question_mark_shows_its_keys_in_jupyterlab(app_page):
    page = app_page
    _tab(page, "Inspect")
    page.locator(".wb-inspector-panel .wb-card .wb-prompt").first.click()
    cells = page.locator(".jp-NotebookPanel .jp-Cell").count()
    page.keyboard.press("?")
    keys = page.locator(".wb-inspector-panel .wb-help")
    keys.wait_for(state="visible", timeout=WAIT)
    assert "next card" in keys.inner_text() and "flag" in keys.inner_text()
    page.keyboard.press("Escape")
    keys.wait_for(state="hidden", timeout=WAIT)
    assert page.locator(".jp-NotebookPanel .jp-Cell").count() == cells


def test_a_rubric_error_is_shown_once_in_plain_words(app_page, artifacts):
    page = app_page
    _tab(page, "Judge")
    editor = page.locator(".wb-rubric-editor")
    editor.locator(".wb-re-level .wb-re-score").nth(1).fill("3")  # levels 1, 3, 3, 4, 5
    error = editor.locator(".wb-re-error[data-field='levels']")
    error.filter(has_text="score 3 appears twice in the levels").wait_for(state="visible", timeout=WAIT)
    assert page.get_by_text("appears twice").count() == 1
    assert "problem" in editor.locator(".wb-re-status").inner_text()  # no stale "draft version …"
    page.locator("button.wb-judge-run").click()
    page.locator(".wb-judge").get_by_text("not started").wait_for(timeout=WAIT)
    assert page.get_by_text("appears twice").count() == 1  # still once: not in the panel nor the app's area
    assert not page.locator(".wb-app .wb-app-error").is_visible()
    body = page.content()
    assert "pydantic" not in body and "input_value" not in body
    editor.screenshot(path=str(artifacts / "friction-rubric-error.png"))
    editor.locator(".wb-re-level .wb-re-score").nth(1).fill("2")
    error.wait_for(state="hidden", timeout=WAIT)


def test_the_prompt_template_is_edited_in_the_app_with_a_live_preview(app_page):
    page = app_page
    _tab(page, "Judge")
    editor = page.locator(".wb-rubric-editor")
    editor.locator(".wb-re-templates summary").click()
    template = editor.locator("textarea.wb-re-template")
    template.fill("Grade this answer.\n{{ instruction }}\n{{ answer }}")
    error = editor.locator(".wb-re-error[data-field='template']")
    error.filter(has_text="answer").wait_for(state="visible", timeout=WAIT)  # the sandbox's error, at the spot
    template.fill("Grade this answer.\n{{ instruction }}\n\nResponse to grade:\n{{ response }}\n\nScore:")
    error.wait_for(state="hidden", timeout=WAIT)
    editor.locator(".wb-re-preview").filter(has_text="Grade this answer.").wait_for(timeout=WAIT)
    assert "edited from" in editor.locator(".wb-re-status").inner_text()
