"""The judge panel driven headless: edit the rubric, run and stop the judge, label rows, read agreement."""

from __future__ import annotations

import re
import time

import polars as pl
import pytest

from workbench.engine import FakeBackend, GenerationRequest
from workbench.runs import row_id
from workbench.session import Session

judge_mod = pytest.importorskip("widgets.judge")
JudgePanel = judge_mod.JudgePanel


def length_judge(req: GenerationRequest) -> str:
    text = req.prompt or req.messages[-1]["content"]  # type: ignore[index]
    answer = re.search(r"Response to grade:\n(.*?)(?:\n\n|\nFeedback:|\Z)", text, re.S).group(1)  # type: ignore[union-attr]
    return f" By length.\nScore: {min(5, 1 + len(answer) // 15)}"


def _completions(n: int = 6) -> list[dict]:
    out = []
    for i in range(n):
        text = "w" * (5 + 15 * (i % 5))
        out.append(
            {
                "id": row_id("completion", f"p{i}", text),
                "stage": "completion",
                "parent_id": f"p{i}",
                "instruction": f"Task {i}",
                "input": "",
                "text": text,
                "status": "kept",
                "model_id": "gen.gguf",
            }
        )
    out.append(
        {
            "id": "dropped1",
            "stage": "completion",
            "parent_id": "p0",
            "instruction": "Task 0",
            "input": "",
            "text": "x",
            "status": "dropped",
            "model_id": "gen.gguf",
        }
    )
    return out


@pytest.fixture
def session(tmp_path):
    s = Session(FakeBackend(responder=length_judge), runs_root=tmp_path, run="judge-panel")
    s.store.append(_completions())
    s.errors = []
    s.subscribe(lambda what: s.errors.append(s.last_error) if what == "error" else None)
    return s


def test_panel_runs_the_judge_and_shows_versions(session):
    panel = JudgePanel(session, sample_size=4)
    assert "wb-judge" in panel._dom_classes
    assert (
        "wb-judge-run" in panel.run_button._dom_classes and "wb-judge-stop" in panel.stop_button._dom_classes
    )
    assert panel.sample.height == 4 and "dropped1" not in panel.sample["id"].to_list()
    # Live preview of the rendered judge prompt (base model: ends with the feedback cue).
    assert panel.editor.preview.endswith("Feedback:") and "5: Answers it fully" in panel.editor.preview
    assert panel.editor.version == panel.rubric.version
    panel.run_button.click()
    panel.job.wait(20)
    assert panel.job.state == "done", panel.job.error_text
    judgments = panel.judgments()
    assert judgments.height == 4 and judgments["parse_ok"].all()
    assert set(judgments["parent_id"]) == set(panel.sample["id"])
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert "4" in panel.parse_table.value
    spec = panel.chart.chart.to_dict()
    versions = {d["version"] for d in spec["data"]["values"]}
    assert len(versions) == 1 and sum(d["count"] for d in spec["data"]["values"]) == 4

    # Edit criteria and a level description in the editor: a new version, with its parent.
    draft = dict(panel.editor.draft)
    draft["criteria"] = [*draft["criteria"], "Is polite"]
    draft["levels"] = [dict(lv) for lv in draft["levels"]]
    draft["levels"][0]["description"] = "Useless"
    first = panel.rubric.version
    panel.editor.draft = draft
    assert "- Is polite" in panel.editor.preview and "1: Useless" in panel.editor.preview
    assert panel.editor.version != first and panel.editor.parent_version == first
    panel.run()
    panel.job.wait(20)
    judgments = panel.judgments()
    assert set(judgments["rubric_version"]) == {first, panel.rubric.version}
    assert panel.rubric.parent_version == first
    spec = panel.chart.chart.to_dict()
    assert len({d["version"] for d in spec["data"]["values"]}) == 2


def test_bad_edits_show_errors_without_losing_the_form(session):
    panel = JudgePanel(session, sample_size=2)
    draft = dict(panel.editor.draft)
    draft["levels"] = [{"score": 1, "description": "bad"}, {"score": 3, "description": "good"}]
    panel.editor.draft = draft
    assert "consecutive" in panel.editor.error and "2 is missing" in panel.editor.error
    assert panel.editor.error_field == "levels"
    assert panel.editor.draft["levels"][1]["score"] == 3  # the form keeps what was typed


def test_a_rubric_error_is_one_plain_message_in_one_place(session):
    """Issue 18.4: a duplicate score level showed pydantic's `input_value={…}` text and an
    errors.pydantic.dev link in the editor, the panel's error line and the app's error area at once."""
    panel = JudgePanel(session, sample_size=2)
    first = panel.rubric.version
    draft = dict(panel.editor.draft)
    draft["levels"] = [{"score": 1, "description": "bad"}, {"score": 3, "description": "ok"},
                       {"score": 3, "description": "good"}, {"score": 2, "description": "fine"}]  # fmt: skip
    panel.editor.draft = draft
    assert panel.editor.error == "score 3 appears twice in the levels"
    assert panel.editor.error_field == "levels"
    assert "draft" in panel.editor.header and "problem" in panel.editor.header  # not a stale version
    assert first not in panel.editor.header
    panel.run_button.click()
    assert panel.job is None
    assert panel.error.value == "" and session.errors == []  # shown once: in the editor, not three times
    assert "rubric" in panel.progress_label.value and "not started" in panel.progress_label.value
    for bad in ({"score": None, "description": "x"}, {"score": 4, "description": ""}):
        d = dict(draft, levels=[{"score": 1, "description": "a"}, {"score": 2, "description": "b"},
                                {"score": 3, "description": "c"}, bad])  # fmt: skip
        panel.editor.draft = d
        assert panel.editor.error_field == "levels"
        assert "pydantic" not in panel.editor.error and "input_value" not in panel.editor.error
    panel.set_rubric(panel.rubric)  # back to a valid rubric: the message goes, the header is current
    assert panel.editor.error == "" and panel.editor.error_field == ""
    assert panel.editor.header.startswith(f"version {first}")


def test_the_prompt_template_is_editable_with_a_live_preview(session):
    """Issue 18.4: the template could only be changed from Python; the sandbox's error belongs at the field."""
    panel = JudgePanel(session, sample_size=2)
    draft = dict(panel.editor.draft)
    assert "{{ instruction }}" in draft["template"]
    panel.editor.draft = dict(draft, template="Grade this.\n{{ instruction }}\n{{ response }}\nScore:")
    assert panel.editor.preview.startswith("Grade this.") and panel.editor.error == ""
    assert "edited from" in panel.editor.header
    panel.editor.draft = dict(draft, template="{{ instruction }} {{ answer }}")
    assert panel.editor.error_field == "template"
    assert "answer" in panel.editor.error and "response" in panel.editor.error  # the name and what exists
    panel.editor.draft = dict(draft, template="{% if %}")
    assert panel.editor.error_field == "template" and "line 1" in panel.editor.error
    panel.editor.draft = dict(draft, template="{{ instruction.__class__.__mro__ }}")
    assert panel.editor.error_field == "template" and "unsafe" in panel.editor.error  # the sandbox said no
    assert "pydantic" not in panel.editor.error
    panel.editor.draft = dict(draft, template="Judge: {{ instruction }}\n\nResponse to grade:\n{{ response }}\n\nScore:")
    panel.run_button.click()
    assert panel.job.wait(20).state == "done", panel.job.error_text
    assert panel.rubric.template.startswith("Judge:")  # the edited template is what was judged with


def test_labelling_by_keyboard_actions_and_agreement(session):
    panel = JudgePanel(session, sample_size=5)
    panel.run()
    panel.job.wait(20)
    view = panel.labeler.view
    assert [a["key"] for a in view.actions] == ["1", "2", "3", "4", "5"]
    assert len(view.cards) == 5 and view.cards[0]["items"][0]["meta"][0][0].startswith("judge")
    ids = panel.sample["id"].to_list()
    judged = dict(zip(panel.judgments()["parent_id"], panel.judgments()["score"], strict=True))
    for rid in ids:  # the human agrees with the judge everywhere
        view.handle_message({"type": "action", "name": f"score:{judged[rid]}", "card": rid, "item": rid})
    assert session.store.label_values("human_score") == judged
    assert "score:" in view.cards[0]["items"][0]["active"][0]
    assert (
        "kappa_quadratic" in panel.agreement.value
        and "<code>accuracy</code></small></td><td>1.00</td>" in panel.agreement.value
    )
    assert "length_spearman" in panel.agreement.value
    # Pressing the same score again clears the label.
    view.handle_message({"type": "action", "name": f"score:{judged[ids[0]]}", "card": ids[0], "item": ids[0]})
    assert ids[0] not in session.store.label_values("human_score")
    assert "4</b> of 5 rows labelled" in panel.labeler.summary.value


def test_stop_keeps_finished_judgments_and_rerun_resumes(tmp_path):
    backend = FakeBackend(responder=length_judge, delay_s=0.15)
    s = Session(backend, runs_root=tmp_path, run="slow")
    s.store.append(_completions(6))
    panel = JudgePanel(s, sample_size=6)
    job = panel.run()
    assert job is not None

    while len(backend.calls) < 2:
        time.sleep(0.02)
    panel.stop_button.click()
    job.wait(20)
    assert job.state == "cancelled"
    done = panel.judgments().height
    assert 1 <= done < 6
    panel.run()
    panel.job.wait(20)
    assert panel.judgments().height == 6
    assert len(backend.calls) == 6  # finished rows were not judged twice


def test_set_rows_judges_a_given_frame(session):
    panel = JudgePanel(session, sample_size=3)
    rows = pl.DataFrame({"id": ["x1", "x2"], "instruction": ["Q", "Q"], "text": ["short", "a" * 40]})
    panel.set_rows(rows)
    assert panel.sample["id"].to_list() == ["x1", "x2"] and len(panel.labeler.view.cards) == 2
    panel.run()
    panel.job.wait(20)
    assert set(panel.judgments()["parent_id"]) == {"x1", "x2"}


def pair_judge(req: GenerationRequest) -> str:
    return " The first.\nWinner: A"


def _paired_session(tmp_path, run: str) -> Session:
    """A run where prompts p0-p2 have two answers each (what pairwise judging pairs up)."""
    s = Session(FakeBackend(responder=pair_judge), runs_root=tmp_path, run=run)
    rows = _completions(6)
    for r in rows[3:6]:
        r["parent_id"] = rows[int(r["parent_id"][1]) - 3]["parent_id"]
        r["instruction"] = "shared"
    s.store.append(rows)
    return s


def test_pairwise_mode_judges_both_orders_and_shows_flip_rate(tmp_path):
    s = _paired_session(tmp_path, "pairs")
    panel = JudgePanel(s, sample_size=2)
    panel.mode.value = "pairwise"
    panel.run_button.click()
    panel.job.wait(20)
    assert panel.job.state == "done", panel.job.error_text
    pairwise = s.store.rows().filter(pl.col("judge_kind") == "pairwise")
    assert pairwise.height == 4 and sorted(pairwise["pair_order"].to_list()) == ["AB", "AB", "BA", "BA"]
    assert "Pairwise position bias" in panel.parse_table.value and "<td>1.00</td>" in panel.parse_table.value
    assert "flip_rate" in panel.agreement.value


def test_pair_labels_by_keyboard_actions_feed_pairwise_agreement(tmp_path):
    s = _paired_session(tmp_path, "pair-labels")
    panel = JudgePanel(s, sample_size=2)
    panel.mode.value = "pairwise"
    panel.run_button.click()
    panel.job.wait(20)
    assert panel.job.state == "done", panel.job.error_text
    view = panel.pair_labeler.view
    cards = view.cards
    assert len(cards) == 2 and all(len(c["items"]) == 2 for c in cards)  # the two answers side by side
    # Pressing "1" on a card (what the view sends) saves the preference in the run, keyed by pair_id.
    view.handle_message({"type": "action", "name": "pref:A", "card": cards[0]["key"], "item": None})
    view.handle_message({"type": "action", "name": "pref:tie", "card": cards[1]["key"], "item": None})
    assert s.store.label_values("human_pref") == {cards[0]["key"]: "A", cards[1]["key"]: "tie"}
    assert "Pairwise agreement with your preferences" in panel.agreement.value
    # The same key again clears the label.
    view.handle_message({"type": "action", "name": "pref:tie", "card": cards[1]["key"], "item": None})
    assert cards[1]["key"] not in s.store.label_values("human_pref")
    with pytest.raises(ValueError, match="'A', 'B' or 'tie'"):
        panel.pair_labeler.set_preference(cards[0]["key"], "C")


def test_a_judge_that_gives_every_row_the_same_score_is_called_out(session):
    """Issue 18.6: the default judge gave every row the same score, so the calibration view meant
    nothing at first sight and nothing said so."""
    session.use_model(FakeBackend(responder=lambda req: " Fine.\nScore: 3"))
    panel = JudgePanel(session, sample_size=5)
    assert panel.same_score_note.value == ""
    panel.run_button.click()
    assert panel.job.wait(20).state == "done", panel.job.error_text
    note = panel.same_score_note.value
    assert "every one of the 5 judged rows got score 3" in note.lower()
    assert "hf://" in note and "model picker" in note  # where to get a better judge
    assert "score 3" in panel.agreement.value.lower() and "hf://" in panel.agreement.value
    # A judge that tells rows apart shows no such note.
    session.use_model(FakeBackend(responder=length_judge))
    draft = dict(panel.editor.draft, task_description="Grade it by length.")
    panel.editor.draft = draft
    panel.run_button.click()
    assert panel.job.wait(20).state == "done"
    assert panel.same_score_note.value == ""


def test_agreement_and_bias_metrics_are_named_in_plain_words(session):
    """Issue 18.7: `kappa_quadratic` and `self_score_gap` stood in the table unexplained."""
    panel = JudgePanel(session, sample_size=5)
    panel.run()
    panel.job.wait(20)
    for rid in panel.sample["id"].to_list():
        panel.labeler.set_label(rid, 3)
    shown = panel.agreement.value
    assert "kappa_quadratic" in shown  # the exact name stays, for looking it up
    for metric in ("kappa_quadratic", "spearman", "accuracy", "within_one", "length_spearman"):
        assert judge_mod.METRIC_HELP[metric] in shown
    names = ("kappa", "self_score_gap", "longer_preferred_rate", "self_win_rate", "flip_rate", "first_position_rate")
    assert all(len(judge_mod.METRIC_HELP[m]) > 20 for m in names)
