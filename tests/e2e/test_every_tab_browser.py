"""The tabs no other browser test covers, in a real JupyterLab and Debian's Chromium (issue 14.5): Judge (edit a
criterion, judge a sample, label three rows with the keyboard, see the agreement), Export (SFT and DPO files that
load back with `datasets`), Compare (two runs side by side), and, on the real default model, Answers (a run and a
Preview) and the self-instruct Preview.

Judge, Export and Compare run on a scripted FakeBackend, since what they test is the app's path, not the model:
its answers alternate a short and a long reply to each instruction and its judge scores by length, so the two
answers of a prompt get scores 1 and 5 and DPO finds a margin (the default 270M model gives every answer the same
score). The two Compare runs are made with `run_completions` on a FakeBackend in the notebook cell before the app.
Answers and the Previews use the real default model, small (two or three instructions, 16-token answers).
Every wait is on the widgets' own DOM (never a fixed sleep); a screenshot per step goes to test-artifacts/e2e/.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.lab_pages import WAIT, open_app

pytestmark = [pytest.mark.e2e]

LONG = 300_000  # ms: a step on the real model (the first Preview also measures this machine's speed)
FAKE_NOTEBOOK = "every_tab.ipynb"
REAL_NOTEBOOK = "every_tab_answers.ipynb"
FAKE_SETUP = """\
import os
from tests.widgets.test_app import responder as scripted_and_judged  # self-instruct candidates, a length judge
from widgets import Workbench
from workbench.engine import FakeBackend
from workbench.generate.completions import run_completions
from workbench.pipeline.recipe import CompletionsStep, Recipe
from workbench.pipeline.runner import step_inputs
from workbench.runs import RunStore
from workbench.session import Session

ROOT = os.environ["WORKBENCH_RUNS_ROOT"]
SHORT, LONG = " Yes.", " Yes: here is a full answer, with the reasons and one example."


def responder(req):
    # Answers (the base-model completion template) alternate short and long by sample seed, so the length judge
    # scores the two answers of each prompt 1 and 5: the DPO export has a margin to pair on.
    text = req.prompt or ""
    if "Response to grade:" not in text and text.endswith("### Response:\\n"):
        return SHORT if req.params.seed % 2 == 0 else LONG
    return scripted_and_judged(req)


# Two runs of the same prompts for the Compare tab, answered differently.
step = CompletionsStep(prompts_from="list", prompts=["Name a planet with rings.", "Say hello in French.",
                                                     "Give a synonym of quick."])
prompts = step_inputs(step, Recipe(name="compare", steps=[step]), None)
for name in ("compare-a", "compare-b"):
    run_completions(FakeBackend(responder=lambda _req, name=name: f" The {name} answer."),
                    RunStore.create(ROOT, name, resume=True), prompts)

session = Session(FakeBackend(responder=responder), runs_root=ROOT, run="every-tab")
app = Workbench(session=session, generate={"num_instructions": 6, "rounds": 3, "prompts_per_round": 6, "seed": 3})
assert app.generate.run().wait(60).state == "done"
app.answers.k.value = 2
assert app.answers.run().wait(60).state == "done"
app.judge.sample_size.value = 2 * app.answers.prompts().height  # every answer: DPO pairs both answers of a prompt
assert app.judge.run().wait(60).state == "done"
app
"""
REAL_SETUP = """\
import os
from widgets import Workbench

app = Workbench(run="every-tab-answers", runs_root=os.environ["WORKBENCH_RUNS_ROOT"],
                generate={"num_instructions": 2, "rounds": 2, "prompts_per_round": 3, "max_tokens": 32},
                answers={"max_tokens": 16})
app
"""


def _tab(page, title: str) -> None:
    page.locator(".wb-app > .wb-tabs > .lm-TabBar .lm-TabBar-tab", has_text=title).first.click()


def _inner_tab(page, scope: str, title: str) -> None:
    """A tab of a panel's own tab bar (the Judge's Scores / Label / ... ), by its exact title."""
    page.locator(f"{scope} .lm-TabBar-tab").filter(has_text=re.compile(f"^{re.escape(title)}$")).first.click()


def _dropdown(page, scope: str, label: str):
    return page.locator(f"{scope} .widget-dropdown:has(> label:text-is('{label}')) select").first


def _no_app_error(page) -> None:
    error = page.locator(".wb-app .wb-app-error")
    assert not error.is_visible(), error.inner_text()


def _group(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text`, failing with the text when it is not there."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return found.group(1)


@pytest.fixture(scope="module")
def fake_page(lab_server, browser, artifacts):
    """The app on a scripted FakeBackend, with a judged run of 6 instructions x 2 answers and two runs to compare."""
    context, page = open_app(lab_server, browser, FAKE_NOTEBOOK, FAKE_SETUP)
    try:
        yield page
    finally:
        page.screenshot(path=str(artifacts / "every-tab-99-fake-last.png"), full_page=True)
        context.close()


@pytest.mark.timeout(420)
def test_judge_edit_a_criterion_judge_label_three_rows_and_see_agreement(fake_page, artifacts):
    page = fake_page
    _tab(page, "Judge")
    judge = page.locator(".wb-judge")
    judge.wait_for(state="visible", timeout=WAIT)
    parse_rows = page.locator(".wb-judge table.wb-judge-parse tr")
    parse_rows.nth(1).wait_for(timeout=WAIT)
    assert parse_rows.count() == 2  # a header and the version the notebook cell judged with

    # Before any label, the agreement tab says to label rows.
    _inner_tab(page, ".wb-judge", "Agreement & bias")
    judge.get_by_text("Label some rows (Label tab) to measure agreement.").wait_for(timeout=WAIT)

    # 1. Edit a criterion: the editor names the draft a new version edited from the current one.
    editor = page.locator(".wb-rubric-editor")
    criteria = editor.locator("textarea.wb-re-criteria")
    lines = criteria.input_value().splitlines()
    criteria.fill("\n".join([*lines[:-1], "Is clear, concise and polite"]))
    status = editor.locator(".wb-re-status")
    status.filter(has_text="draft version").wait_for(timeout=WAIT)
    assert "edited from" in status.inner_text()
    editor.screenshot(path=str(artifacts / "every-tab-judge-01-criterion-edited.png"))

    # 2. Judge the sample with it: a second version appears in the parse table; the editor calls it current.
    _inner_tab(page, ".wb-judge", "Scores")
    page.locator("button.wb-judge-run").click()
    parse_rows.nth(2).wait_for(timeout=WAIT)
    page.wait_for_selector("button.wb-judge-run:enabled", timeout=WAIT)
    status.filter(has_text="the rubric the next judge run uses").wait_for(timeout=WAIT)
    assert "edited from" in status.inner_text()
    _no_app_error(page)
    page.locator(".wb-app").screenshot(path=str(artifacts / "every-tab-judge-02-judged.png"))

    # 3. Label three rows with the keyboard: click the first card, then per row a digit key and j to move on.
    # The first two get the judge's own score (read from the card's chip), the third one point off it.
    _inner_tab(page, ".wb-judge", "Label")
    labeler = page.locator(".wb-judge-labeler")
    cards = labeler.locator(".wb-card")
    cards.nth(2).wait_for(timeout=WAIT)
    summary = judge.locator(".widget-html", has_text="rows labelled").first
    total = int(_group(r"of (\d+) rows labelled", summary.inner_text()))
    assert total >= 3
    cell_count = page.locator(".jp-NotebookPanel .jp-Cell").count()
    cards.first.locator(".wb-prompt").click()
    for i in range(3):
        if i:
            page.keyboard.press("j")
            page.wait_for_function(
                "(i) => document.querySelectorAll('.wb-judge-labeler .wb-card')[i]?.classList.contains('wb-selected')",
                arg=i, timeout=WAIT,
            )  # fmt: skip
        chip = cards.nth(i).locator(".wb-item .wb-chip", has_text="judge").first.inner_text()
        judged = int(_group(r"judge \w+ (\d+)", chip))
        score = judged if i < 2 else (judged + 1 if judged < 5 else judged - 1)
        page.keyboard.press(str(score))
        summary.filter(has_text=f"{i + 1} of {total} rows labelled").wait_for(timeout=WAIT)
        cards.nth(i).locator(".wb-chip", has_text=f"human {score}").wait_for(timeout=WAIT)
    assert page.locator(".jp-NotebookPanel .jp-Cell").count() == cell_count  # the keys stayed in the labeler
    labeler.screenshot(path=str(artifacts / "every-tab-judge-03-labelled.png"))

    # 4. The agreement tab now measures the judge against the three labels, per rubric version: two exact, one
    # a point off.
    _inner_tab(page, ".wb-judge", "Agreement & bias")
    judge.locator("h4", has_text="Agreement with your labels").wait_for(timeout=WAIT)
    table = judge.locator("table.wb-judge-metrics").first
    # The summary line updates before the agreement table (two messages): wait for the table to count 3 labels.
    table.locator("tr", has_text="accuracy").first.locator("td").last.filter(
        has_text=re.compile(r"^3$")
    ).wait_for(timeout=WAIT)
    for metric, value in (("accuracy", "0.67"), ("within_one", "1.00")):
        rows = table.locator("tr", has_text=metric)
        assert rows.count() == 2  # one row per rubric version
        for r in range(2):
            cells = rows.nth(r).locator("td").all_inner_texts()
            assert cells[2] == value and cells[-1] == "3", cells  # the value and n
    page.locator(".wb-app").screenshot(path=str(artifacts / "every-tab-judge-04-agreement.png"))


@pytest.mark.timeout(420)
def test_export_writes_sft_and_dpo_that_load_with_datasets(fake_page, artifacts):
    from workbench.export import load_export

    page = fake_page
    _tab(page, "Export")
    panel = page.locator(".wb-export")
    panel.wait_for(state="visible", timeout=WAIT)
    path_box = page.locator(".wb-export-path input")
    written: dict[str, tuple[str, int]] = {}
    for fmt, label in (("sft", "SFT messages"), ("dpo", "DPO pairs (prompt/chosen/rejected)")):
        _dropdown(page, ".wb-export", "format").select_option(label=label)
        page.wait_for_function("([e, f]) => e.value.endsWith(`-${f}-parquet`)",
                               arg=[path_box.element_handle(), fmt], timeout=WAIT)  # fmt: skip
        page.locator("button.wb-export-run").click()
        done = page.locator(".wb-export-done", has_text=f" {fmt} rows as parquet")
        done.wait_for(timeout=WAIT)
        found = re.search(rf"Wrote (\d+) {fmt} rows as parquet to (\S+) \(columns", done.inner_text())
        assert found, done.inner_text()
        written[fmt] = (found.group(2), int(found.group(1)))
        _no_app_error(page)
        panel.screenshot(path=str(artifacts / f"every-tab-export-{fmt}.png"))

    # The test process reads what the app wrote, as a trainer would.
    sft_path, sft_rows = written["sft"]
    sft = load_export(sft_path)
    assert "messages" in sft.column_names and sft.num_rows == sft_rows > 0
    roles = [m["role"] for m in sft[0]["messages"]]
    assert roles[0] == "user" and roles[-1] == "assistant"
    dpo_path, dpo_rows = written["dpo"]
    dpo = load_export(dpo_path)
    assert {"prompt", "chosen", "rejected"} <= set(dpo.column_names) and dpo.num_rows == dpo_rows > 0
    for rec in dpo:  # the length judge preferred the long answer every time
        assert rec["chosen_score"] - rec["rejected_score"] >= 1
        assert len(rec["chosen"]) > len(rec["rejected"])


@pytest.mark.timeout(420)
def test_compare_two_runs_side_by_side(fake_page, artifacts):
    page = fake_page
    _tab(page, "Compare")
    panel = page.locator(".wb-compare")
    panel.wait_for(state="visible", timeout=WAIT)
    run_a, run_b = _dropdown(page, ".wb-compare", "run A"), _dropdown(page, ".wb-compare", "run B")
    assert {"compare-a", "compare-b", "every-tab"} <= set(run_a.locator("option").all_inner_texts())
    run_a.select_option(label="compare-a")
    run_b.select_option(label="compare-b")
    page.wait_for_function("(e) => e.value !== '' && e.options[e.selectedIndex].text === 'text'",
                           arg=_dropdown(page, ".wb-compare", "text column").element_handle(), timeout=WAIT)  # fmt: skip
    panel.locator("button", has_text="Diff").click()
    table = panel.locator("table.wb-compare-diff")
    table.wait_for(timeout=WAIT)
    headers = table.locator("th").all_inner_texts()
    assert headers[1:3] == ["A: compare-a", "B: compare-b"]
    rows = table.locator("tbody tr")
    assert rows.count() == 3
    for r in range(3):
        cells = rows.nth(r).locator("td").all_inner_texts()
        assert "The compare-a answer." in cells[1] and "The compare-b answer." in cells[2], cells
    assert "3 prompts in both (3 with different texts)" in panel.inner_text()
    _no_app_error(page)
    panel.screenshot(path=str(artifacts / "every-tab-compare.png"))


@pytest.mark.model
@pytest.mark.timeout(900)
def test_answers_and_previews_on_the_real_model(lab_server, browser, artifacts):
    context, page = open_app(lab_server, browser, REAL_NOTEBOOK, REAL_SETUP)
    try:
        page.wait_for_selector(".wb-app .wb-app-status:has-text('loaded default')", timeout=LONG)
        _tab(page, "Generate")

        # 1. A few kept instructions from the real model (knobs prefilled small by the notebook cell).
        page.locator("button.wb-selfinstruct-run").click()
        si_label = page.locator(".wb-selfinstruct .widget-html", has_text=re.compile(r"^done · \d+ rows"))
        si_label.wait_for(timeout=LONG)
        page.wait_for_selector(".wb-selfinstruct-table td", timeout=WAIT)
        _no_app_error(page)
        page.locator(".wb-app").screenshot(path=str(artifacts / "every-tab-answers-01-instructions.png"))

        # 2. Answers: Run answers every kept instruction; the label says done with the rows it made.
        page.locator("button.wb-answers-run").click()
        label = page.locator(".wb-answers .widget-html", has_text=re.compile(r"^done · \d+ rows"))
        label.wait_for(timeout=LONG)
        answered = int(_group(r"done · (\d+) rows", label.inner_text()))
        assert answered >= 1
        page.wait_for_selector("button.wb-answers-run:enabled", timeout=WAIT)
        _no_app_error(page)
        page.locator(".wb-answers").screenshot(path=str(artifacts / "every-tab-answers-02-done.png"))

        # 3. Answers Preview: a few answers, not saved, and the full run's estimate.
        page.locator("button.wb-answers-preview").click()
        estimate = page.locator(".wb-answers-estimate", has_text="a full run")
        estimate.wait_for(timeout=LONG)
        assert re.search(r"preview: \d+ rows in [\d.]+ s", estimate.inner_text())
        assert page.locator(".wb-answers .wb-preview-table tr").count() >= 2  # a header and a row
        page.locator(".wb-answers").screenshot(path=str(artifacts / "every-tab-answers-03-preview.png"))

        # 4. Self-instruct Preview: one round, not saved, and the full run's estimate.
        page.locator("button.wb-selfinstruct-preview").click()
        si_estimate = page.locator(".wb-selfinstruct-estimate", has_text="a full run")
        si_estimate.wait_for(timeout=LONG)
        assert "instruction" in si_estimate.inner_text()
        _no_app_error(page)
        shot = artifacts / "every-tab-selfinstruct-preview.png"
        page.locator(".wb-selfinstruct").screenshot(path=str(shot))
    finally:
        page.screenshot(path=str(artifacts / "every-tab-99-real-last.png"), full_page=True)
        context.close()
