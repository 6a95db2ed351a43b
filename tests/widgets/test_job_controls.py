"""Status lines of long steps always describe the current state (issue 18.5): after a failed judge,
after a cancel, and when a second run cannot start beside a finished one."""

from __future__ import annotations

import re
import time

import polars as pl

from tests.generate.selfinstruct.test_pipeline import scripted
from tests.widgets.test_judge_panel import _completions, length_judge
from widgets.judge import JudgePanel
from widgets.selfinstruct import SelfInstructPanel
from workbench.engine import FakeBackend
from workbench.session import Session


def _slow_panel(tmp_path) -> tuple[SelfInstructPanel, FakeBackend]:
    backend = FakeBackend(responder=scripted, delay_s=0.05)
    panel = SelfInstructPanel(Session(backend, runs_root=tmp_path, run="slow"))
    panel.num_instructions.value, panel.rounds.value, panel.prompts_per_round.value = 200, 50, 4
    return panel, backend


def test_a_failed_judge_does_not_keep_saying_judging(tmp_path):
    class Broken(FakeBackend):
        def generate(self, requests, **kw):
            raise RuntimeError("llama.cpp died")

    s = Session(Broken(), runs_root=tmp_path, run="broken")
    s.store.append(_completions())
    panel = JudgePanel(s, sample_size=3)
    panel.run_button.click()
    assert panel.job.wait(20).state == "failed"
    label = panel.progress_label.value
    assert "judging" not in label and label.startswith("failed")
    assert "llama.cpp died" in panel.error.value


def test_cancel_leaves_no_eta_and_says_what_was_kept(tmp_path):
    panel, backend = _slow_panel(tmp_path)
    panel.run_button.click()
    while len(backend.calls) < 2:
        time.sleep(0.02)
    panel.stop_button.click()
    assert panel.job.wait(30).state == "cancelled"
    label = panel.progress_label.value
    assert label.startswith("cancelled") and "ETA" not in label and "kept" in label
    assert panel.progress.value < 1.0
    panel.stop_button.click()  # a stray Stop after the end changes nothing ("stopping…" would be stale)
    assert panel.progress_label.value == label


def test_cannot_start_replaces_the_previous_runs_done(tmp_path):
    s = Session(FakeBackend(responder=scripted), runs_root=tmp_path, run="twice")
    panel = SelfInstructPanel(s)
    panel.num_instructions.value, panel.rounds.value, panel.prompts_per_round.value = 4, 2, 4
    panel.run_button.click()
    assert panel.job.wait(30).state == "done"
    assert panel.progress_label.value.startswith("done") and "ETA" not in panel.progress_label.value
    assert re.search(r"done · \d+ rows", panel.progress_label.value)  # not "4/8 rows" once the target is met
    assert panel.progress.value == 1.0  # a finished run's bar is full, even when it met its target early
    panel.k_human.value, panel.m_machine.value = 0, 0  # invalid knobs
    assert panel.run() is None
    label = panel.progress_label.value
    assert "done" not in label and label.startswith("not started")
    assert panel.progress.value == 0.0


def test_judge_cannot_start_without_rows_clears_the_old_status(tmp_path):
    s = Session(FakeBackend(responder=length_judge), runs_root=tmp_path, run="empty-judge")
    s.store.append(_completions(5))
    panel = JudgePanel(s, sample_size=5)
    panel.run_button.click()
    assert panel.job.wait(20).state == "done"
    assert panel.progress_label.value.startswith("done")
    panel.set_rows(pl.DataFrame(schema={"id": pl.Utf8, "instruction": pl.Utf8, "text": pl.Utf8}))
    panel.run_button.click()  # nothing to judge: cannot start
    assert panel.progress_label.value.startswith("not started") and "done" not in panel.progress_label.value
