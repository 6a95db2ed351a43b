"""Run/Stop buttons, a progress bar and its label, bound to one background `Job`.

Every panel that starts long work (self-instruct, answers, the judge) shares this wiring: the job
runs in a worker thread, these callbacks only copy its progress into widget traits, and a failure
goes to the panel's `_fail` (its error area and the session's). The label always describes the
current state: a live ETA only while the job runs; "done", "cancelled" or "failed" with what was kept
once it ends; "not started" when a run was refused, never the previous run's "done" beside it.
"""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as W

from widgets.ui import error_html, tip
from workbench.engine import Progress
from workbench.jobs import Job


class JobControlsMixin:
    """Mix into a panel that has `run_button`, `stop_button`, `progress`, `progress_label` and `_fail`."""

    run_button: W.Button
    stop_button: W.Button
    progress: W.FloatProgress
    progress_label: W.HTML
    job: Job | None
    failure_prefix = "run failed"
    """How a failed job's message starts in the panel's error area."""

    def _fail(self, message: str) -> None:
        raise NotImplementedError

    def run(self) -> object:
        """Start the panel's job (each panel defines it)."""
        raise NotImplementedError

    def _make_job_controls(self, css: str, run_label: str, icon: str, run_tip: str, stop_tip: str) -> None:
        """Create the Run/Stop buttons (classes `wb-<css>-run`/`-stop` for the browser tests), the
        progress bar and its label, with tooltips, and bind the buttons to `run` and `stop`."""
        self.run_button = tip(W.Button(description=run_label, icon=icon, button_style="primary"), run_tip)
        self.stop_button = tip(W.Button(description="Stop", icon="stop", disabled=True), stop_tip)
        self.run_button.add_class(f"wb-{css}-run")
        self.stop_button.add_class(f"wb-{css}-stop")
        self.progress = W.FloatProgress(0.0, min=0.0, max=1.0)
        self.progress_label = W.HTML()
        self.run_button.on_click(lambda _b: self.run())
        self.stop_button.on_click(lambda _b: self.stop())

    def _job_busy(self) -> bool:
        return self.job is not None and self.job.running

    def _launch(self, job: Job, starting: str) -> Job:
        job.on_progress.append(self._on_progress)
        job.on_done.append(self._on_done)
        self.job = job
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.value, self.progress_label.value = 0.0, starting
        return job.start()

    def stop(self) -> None:
        """Ask the job to stop; rows already finished stay in the run, and a re-run resumes."""
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.progress_label.value = "stopping…"

    def _cannot_start(self, reason: str) -> None:
        """A run was refused before it began: reset the bar and label, then show why in the error area."""
        self.progress.value = 0.0
        self.progress_label.value = "not started: see the message below"
        self._fail(f"cannot start: {reason}")

    def _on_progress(self, p: Progress) -> None:
        self.progress.value = p.rows_done / p.rows_total if p.rows_total else 0.0
        self.progress_label.value = html.escape(p.describe())
        self._after_progress(p)

    def _after_progress(self, p: Progress) -> None:
        """Hook: extra work on each progress report (called from the worker thread)."""

    def _on_done(self, job: Job) -> None:
        self.run_button.disabled, self.stop_button.disabled = False, True
        self.progress_label.value = html.escape(finished_summary(job.state, job.progress))
        if job.state == "done":
            self.progress.value = 1.0  # a run that met its target early still finished
        if job.state == "failed":
            self._fail(f"{self.failure_prefix}: {job.error_text}")
        self._after_done(job)

    def _after_done(self, job: Job) -> None:
        """Hook: refresh views once the job has ended (in any state)."""


class LiveStepMixin(JobControlsMixin):
    """A generating step's panel whose table fills in while its job runs: what self-instruct, Evolve,
    Magpie and Conversation share. Needs `session`, `error` (an HTML widget), `refresh()` and
    `_last_refresh`; `step_name` prefixes its messages. `check_model` is the hook of panels that need a
    chat model (called when the session's model changes and after each run)."""

    session: Any
    error: W.HTML
    _last_refresh: float
    step_name = "Step"

    def refresh(self) -> None:
        raise NotImplementedError

    def check_model(self) -> str | None:
        """Hook: re-check that the session's model can run this step; the reason it cannot, or None."""
        return None

    def _after_progress(self, p: Progress) -> None:
        if time.monotonic() - self._last_refresh > 1.0:  # a live table, redrawn at most once a second
            self.refresh()

    def _after_done(self, job: Job) -> None:
        self.check_model()
        self.refresh()
        self.session.notify_rows_changed()

    def _fail(self, message: str) -> None:
        full = f"{self.step_name}: {message}"
        self.error.value = error_html(full)
        self.session.report_error(full)

    def _on_session_event(self, what: str) -> None:
        if what == "model":
            self.check_model()
        if what in ("run", "rows") and not self._job_busy():
            self.refresh()


def finished_summary(state: str, p: Progress | None) -> str:
    """What an ended job's status line says: its state and what it made, never a stale ETA."""
    if p is None:
        return {"failed": "failed: see the message below"}.get(state, state)
    rows = f"{p.rows_done}/{p.rows_total} rows"
    speed = f"{p.tokens_generated} tokens in {p.elapsed_s:.1f}s ({p.tokens_per_s:.0f} tok/s)"
    errors = f" · {p.errors} errors" if p.errors else ""
    if state == "cancelled":
        return f"cancelled after {rows}: they are kept in the run, and Run resumes from there{errors}"
    if state == "failed":
        return f"failed after {rows}: see the message below (finished rows are kept)"
    return f"{state} · {p.rows_done} rows · {speed}{errors}"  # the planned total no longer matters
