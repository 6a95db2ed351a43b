"""Compare two rubric versions in the Judge tab (headless, scripted judge): the changed rows and the
difference with its paired CI."""

from __future__ import annotations

import polars as pl

from tests.judge.lab_fakes import LabFake
from widgets.judge_versions import VersionCompareView
from workbench.judge import JudgeConfig, likert_rubric, run_absolute_judge
from workbench.session import Session

RUBRIC = likert_rubric(
    "helpful", "Grade the answer.", ("Answers it",), {1: "Bad", 2: "Weak", 3: "Fair", 4: "Good", 5: "Great"}
)
CFG = JudgeConfig(max_tokens=32, max_reasoning_chars=40)


def _rows() -> list[dict]:
    texts = ["Short.", "A somewhat longer answer here.", "A much longer answer that goes on and on and on."]
    return [{"id": f"c{i}", "stage": "completion", "parent_id": f"p{i}", "instruction": f"Task {i}", "input": "",
             "text": t, "status": "kept"} for i, t in enumerate(texts * 2)]  # fmt: skip


class TwoGraders(LabFake):
    """Grades by length; a rubric that says 'Be lenient' gives one point more (at most 5)."""

    def _respond(self, req):
        out = super()._respond(req)
        if "Be lenient" not in self._prompt(req):
            return out
        head, score = out.rsplit("Score: ", 1)
        return f"{head}Score: {min(5, int(score) + 1)}"


def test_two_versions_show_changed_rows_and_the_ci_of_the_difference(tmp_path):
    rows = _rows()
    rows = [dict(r, id=f"c{i}", text=f"{r['text']} #{i}") for i, r in enumerate(rows)]
    backend = TwoGraders([r["text"] for r in rows], lambda a, b: 0.5)
    session = Session(backend, runs_root=tmp_path, run="v")
    session.store.append(rows)
    view = VersionCompareView(session)
    assert view.compare_button.disabled and "need two" in view.summary.value
    frame = pl.DataFrame(rows)
    run_absolute_judge(backend, session.store, frame, RUBRIC, CFG)
    other = RUBRIC.edit(task_description="Grade the answer. Be lenient.")  # every score one point up
    run_absolute_judge(backend, session.store, frame, other, CFG)
    for i, score in enumerate((1, 3, 5, 1, 3, 5)):
        session.store.set_label(f"c{i}", "human_score", score)
    view.refresh()
    assert not view.compare_button.disabled
    assert (view.old.value, view.new.value) == (RUBRIC.version, other.version)
    view.compare_button.click()
    assert "6 of 6</b> rows changed score" in view.summary.value
    out = view.output.value
    mean_row = out.split("data-metric='mean score'")[1].split("</tr>")[0]
    assert "<b>+1.000</b></td><td>[+1.000, +1.000]</td><td>6</td>" in mean_row
    for metric in ("mean score", "accuracy", "within_one", "mean_abs_error"):
        assert f"data-metric='{metric}'" in out
    assert "95% CI (paired)" in out and "Changed rows" in out and "wb-judge-changed" in out
    view.new.value = view.old.value
    view.compare_button.click()
    assert "two different versions" in view.summary.value
