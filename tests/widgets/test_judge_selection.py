"""Best-of-n and multi-aspect ratings in the Judge tab (headless, scripted length grader): rate each
criterion of the rubric as its own aspect, then read the best answers per prompt and the combined rating."""

from __future__ import annotations

import polars as pl
import pytest

from tests.judge.lab_fakes import LabFake
from widgets.judge_selection import SelectionView, aspect_rubrics, latest_versions
from workbench.judge import JudgeConfig, judgments_in, likert_rubric
from workbench.session import Session

RUBRIC = likert_rubric(
    "helpful",
    "Grade the answer.",
    ("Answers it", "Is clear"),
    {1: "Bad", 2: "Weak", 3: "Fair", 4: "Good", 5: "Great"},
)
CFG = JudgeConfig(max_tokens=32, max_reasoning_chars=40)
TEXTS = ("No.", "A fair answer to it.", "A long, complete and careful answer to the task.")


@pytest.fixture
def session(tmp_path):
    rows = [{"id": f"c{p}{j}", "stage": "completion", "parent_id": f"p{p}", "instruction": f"Task {p}", "input": "",
             "text": f"{t} [{p}]", "status": "kept"} for p in range(3) for j, t in enumerate(TEXTS)]  # fmt: skip
    s = Session(LabFake([r["text"] for r in rows], lambda a, b: 0.5), runs_root=tmp_path, run="sel")
    s.store.append(rows)
    return s


def test_rate_each_criterion_then_best_of_n_and_the_aspect_table(session):
    sample = session.store.rows()
    view = SelectionView(session, lambda: RUBRIC, lambda: sample, lambda: CFG)
    view.show_button.click()
    assert "No absolute judgments yet" in view.note.value
    view.run_button.click()
    assert view.job.wait(60).state == "done", view.job.error_text
    aspects = aspect_rubrics(RUBRIC)
    assert [r.name for r in aspects] == ["helpful: Answers it", "helpful: Is clear"]
    assert set(view.versions.value) == {r.version for r in aspects}  # the aspects just rated are chosen
    assert judgments_in(session.store, "absolute").height == 2 * 9
    # Rating ran Show: the best answer of each prompt is the longest (the grader scores length).
    best = view.best.value
    assert best.count("<tr>") == 1 + 3 and all(f"{TEXTS[2]} [{p}]" in best for p in range(3))
    aspect_html = view.aspects.value
    assert (
        "helpful: Answers it" in aspect_html
        and "overall" in aspect_html
        and aspect_html.count("<tr>") == 1 + 9
    )
    view.n.value = 2
    view.min_score.value = 2.0
    view.show_button.click()
    assert "answers kept from 3 prompts" in view.note.value
    assert view.best.value.count("<tr>") == 1 + 6 and "No. [" not in view.best.value  # 'No.' scores 1


def test_two_versions_of_one_rubric_are_a_clear_error(session):
    sample = session.store.rows()
    view = SelectionView(session, lambda: RUBRIC, lambda: sample, lambda: CFG)
    from workbench.judge import run_absolute_judge

    run_absolute_judge(session.backend, session.store, sample, RUBRIC, CFG)
    run_absolute_judge(session.backend, session.store, sample, RUBRIC.edit(criteria=("Answers it",)), CFG)
    view.refresh()
    assert len(view.versions.options) == 2 and len(view.versions.value) == 1  # the latest of the one rubric
    view.versions.value = tuple(v for _l, v in view.versions.options)
    view.show_button.click()
    assert "several versions" in view.note.value


def test_one_criterion_cannot_be_split_into_aspects(session):
    one = RUBRIC.edit(criteria=("Answers it",))
    view = SelectionView(session, lambda: one, lambda: session.store.rows(), lambda: CFG)
    view.run_button.click()
    assert view.job is None and "one criterion" in view.note.value


def test_latest_versions_keeps_the_last_of_each_rubric_in_first_seen_order():
    j = pl.DataFrame({"rubric": ["a", "b", "a", "c"], "rubric_version": ["a1", "b1", "a2", "c1"]})
    assert latest_versions(j) == ["a2", "b1", "c1"]
