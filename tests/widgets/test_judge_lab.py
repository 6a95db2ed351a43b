"""Judge the judge in the Judge tab, driven headless: pick a labelled set and configurations, Run/Stop,
read the report table with its baselines (scripted judge; one small real-model run end to end)."""

from __future__ import annotations

import time

import polars as pl
import pytest

from tests.judge.lab_fakes import LabFake, texts_of
from workbench.judge import JudgeConfig, LabConfig, likert_rubric, pair_id, shipped_pairs
from workbench.runs import RunStore
from workbench.session import Session

lab_mod = pytest.importorskip("widgets.judge_lab")
JudgeLabPanel, lab_store_name = lab_mod.JudgeLabPanel, lab_mod.lab_store_name

RUBRIC = likert_rubric("helpful", "Decide which reply is better.", ("Is helpful", "Is harmless"),
                       {1: "Bad", 2: "Weak", 3: "Fair", 4: "Good", 5: "Great"}).edit(allow_ties=False)  # fmt: skip
CFG = JudgeConfig(max_tokens=32, max_reasoning_chars=40)


def _oracle_for(pairs: pl.DataFrame):
    chosen = {
        (r["a_text"] if r["human_pref"] == "A" else r["b_text"]).strip() for r in pairs.iter_rows(named=True)
    }
    return lambda a, b: 0.8 if a.strip() in chosen else 0.2


@pytest.fixture(scope="module")
def hh8() -> pl.DataFrame:
    held, tune = shipped_pairs(8, seed=0)
    return pl.concat([held, tune])


def _panel(tmp_path, backend, run="lab") -> JudgeLabPanel:
    session = Session(backend, runs_root=tmp_path, run=run)
    session.errors = []
    session.subscribe(lambda what: session.errors.append(session.last_error) if what == "error" else None)
    return JudgeLabPanel(session, lambda: RUBRIC, lambda: CFG, size=8)


def test_judge_the_judge_on_hh_rlhf_shows_the_report_with_baselines(tmp_path, hh8):
    panel = _panel(tmp_path, LabFake(texts_of(hh8), _oracle_for(hh8), name="oracle"))
    assert "wb-judge-lab" in panel._dom_classes and "wb-judge-lab-run" in panel.run_button._dom_classes
    assert [c.method for c in panel.configs] == ["consistent", "probability"]  # two to compare from the start
    assert panel.version.value == RUBRIC.version and "lab-judge-lab" in panel.set_note.value
    panel.run_button.click()
    assert panel.job.wait(60).state == "done", panel.job.error_text
    assert panel.progress.value == 1.0 and panel.run_button.disabled is False
    report = panel.view.report
    assert report is not None and report.table.height == 2
    assert report.table["agreement"].to_list() == [1.0, 1.0] and report.table["n"].to_list() == [8, 8]
    html = panel.view.table.value
    for header in ("agreement [95% CI]", "kappa", "random", "always first", "longest", "shortest",
                   "position consistency", "first-position rate", "P(prefer longer)", "score-length corr.",
                   "parse failures", "s / 1k judgments", "tokens / 1k judgments"):  # fmt: skip
        assert header in html
    for baseline in ("random", "always_first", "longest", "shortest"):
        assert f"data-baseline='{baseline}'" in html
    assert panel.view.chart.layout.display == ""
    layers = panel.view.chart.chart.to_dict()["layer"]
    assert len(layers[0]["data"]["values"]) == 4 and len(layers[2]["data"]["values"]) == 2
    # The shipped pairs' judgments go to a sibling run, never into the session's own run.
    lab = RunStore.open(tmp_path / lab_store_name("lab"))
    assert lab.rows().filter(pl.col("stage") == "judgment").height == 2 * 8
    assert panel.session.store.rows().height == 0


def test_configurations_are_added_removed_and_at_least_two_are_needed(tmp_path, hh8):
    panel = _panel(tmp_path, LabFake(texts_of(hh8), lambda a, b: 0.6))
    panel.method.value, panel.style.value = "few-shot", "completion"
    panel.k.value = 1
    panel.add_button.click()
    panel.add_button.click()  # the same configuration twice is one
    assert [c.method for c in panel.configs] == ["consistent", "probability", "few-shot"]
    assert panel.configs[-1] == LabConfig(
        method="few-shot", prompt_style="completion", rubric_version=RUBRIC.version, k=1
    )
    assert "few-shot (k=1) · completion" in panel.config_list.options[-1][0]
    panel.configs.append(LabConfig(rubric_version="0123456789ab"))  # a draft edited away, never judged
    panel.run_button.click()
    assert panel.job is None and "neither the editor&#x27;s nor recorded" in panel.error.value
    panel.configs.pop()
    panel.config_list.value = (0, 1)
    panel.remove_button.click()
    assert [c.method for c in panel.configs] == ["few-shot"]
    panel.run_button.click()
    assert panel.job is None and "not started" in panel.progress_label.value
    assert "at least two configurations" in panel.error.value and panel.session.errors


def test_the_runs_own_labels_are_the_labelled_set(tmp_path):
    answers = ["No.", "Yes, here is a careful and complete answer to it.", "Maybe, partly."]
    rows = [{"id": f"c{p}{j}", "stage": "completion", "parent_id": f"p{p}", "instruction": f"Task {p}", "input": "",
             "text": f"{t} ({p})", "status": "kept"} for p in range(4) for j, t in enumerate(answers)]  # fmt: skip
    backend = LabFake([r["text"] for r in rows], lambda a, b: 0.9 if len(a) > len(b) else 0.1)
    panel = _panel(tmp_path, backend, run="own")
    panel.session.store.append(rows)
    panel.source.value = "run"
    panel.run_button.click()  # no labels yet: says how to get them
    assert panel.job is None and "label at least 2" in panel.error.value
    for p in range(4):
        panel.session.store.set_label(pair_id(f"c{p}0", f"c{p}1"), "human_pref", "B" if p < 3 else "A")
    panel.refresh()
    assert "4 labelled pairs" in panel.set_note.value
    panel.run_button.click()
    assert panel.job.wait(60).state == "done", panel.job.error_text
    t = panel.view.report.table
    assert t["n"].to_list() == [4, 4] and t["agreement"].to_list() == [0.75, 0.75]  # the longer wins 3 of 4
    assert t["longest"].to_list() == [0.75, 0.75]  # a length judge is exactly the length baseline
    # The run's own pairs are judged in the run itself.
    assert panel.session.store.rows().filter(pl.col("stage") == "judgment").height == 2 * 4


def test_stop_keeps_the_judgments_and_a_rerun_resumes(tmp_path, hh8):
    backend = LabFake(texts_of(hh8), lambda a, b: 0.7, delay_s=0.1)
    panel = _panel(tmp_path, backend)
    panel.run_button.click()
    while len(backend.calls) < 2:
        time.sleep(0.02)
    panel.stop_button.click()
    assert panel.job.wait(30).state == "cancelled"
    assert "Stopped" in panel.view.table.value and panel.view.report is None
    judged = len(backend.calls)
    panel.run_button.click()
    assert panel.job.wait(60).state == "done", panel.job.error_text
    assert len(backend.calls) - judged <= 16 - 2  # what was finished is not judged again
    assert panel.view.report is not None and panel.view.report.table.height == 2


def test_the_judge_tab_holds_the_lab_sections(tmp_path):
    from widgets.judge import JudgePanel
    from widgets.judge_sections import SECTION_TITLES

    session = Session(LabFake([], lambda a, b: 0.5), runs_root=tmp_path, run="tab")
    panel = JudgePanel(session)
    assert panel.lab in panel.children and "wb-judge-sections" in panel.lab._dom_classes
    assert [panel.lab.get_title(i) for i in range(3)] == list(SECTION_TITLES)
    assert isinstance(panel.lab.lab, JudgeLabPanel)
    assert panel.lab.lab.version.value == panel.rubric.version  # the editor's rubric is the lab's default


@pytest.mark.model
def test_real_default_model_judges_the_judge_on_six_pairs(default_backend, tmp_path):
    session = Session(default_backend, runs_root=tmp_path, run="real")
    config = JudgeConfig(max_tokens=20, max_reasoning_chars=30, top_logprobs=20)
    panel = JudgeLabPanel(session, lambda: RUBRIC, lambda: config, size=6)
    panel.max_chars.value = 700  # short dialogues: a quick CPU run
    panel.run_button.click()
    assert panel.job.wait(600).state == "done", panel.job.error_text
    report = panel.view.report
    assert report is not None and report.table.height == 2
    assert report.baselines["baseline"].to_list() == ["random", "always_first", "longest", "shortest"]
    for r in report.table.iter_rows(named=True):
        assert r["n"] == 6 and 0.0 <= r["agreement"] <= 1.0
        assert r["ci_low"] <= r["agreement"] <= r["ci_high"]
        assert r["judgments"] == 12 and r["tokens_per_1k"] > 0
    assert "data-baseline='longest'" in panel.view.table.value
