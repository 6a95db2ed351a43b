"""Run/Stop buttons, a progress bar and its label, bound to one background `Job`.

Every panel that starts long work (self-instruct, answers, the judge) shares this wiring: the job
runs in a worker thread, these callbacks only copy its progress into widget traits, and a failure
goes to the panel's `_fail` (its error area and the session's).
"""

from __future__ import annotations

import html

import ipywidgets as W

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
        if self.job is not None:
            self.job.cancel()
            self.progress_label.value = "stopping…"

    def _on_progress(self, p: Progress) -> None:
        self.progress.value = p.rows_done / p.rows_total if p.rows_total else 0.0
        self.progress_label.value = html.escape(p.describe())
        self._after_progress(p)

    def _after_progress(self, p: Progress) -> None:
        """Hook: extra work on each progress report (called from the worker thread)."""

    def _on_done(self, job: Job) -> None:
        self.run_button.disabled, self.stop_button.disabled = False, True
        if job.state == "failed":
            self._fail(f"{self.failure_prefix}: {job.error_text}")
        else:
            described = f" · {job.progress.describe()}" if job.progress else ""
            self.progress_label.value = html.escape(job.state + described)
        self._after_done(job)

    def _after_done(self, job: Job) -> None:
        """Hook: refresh views once the job has ended (in any state)."""
