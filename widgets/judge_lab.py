"""Judge the judge: pick a labelled set and two or more judge configurations, run them, see the report.

A thin view over `workbench.judge.judge_the_judge`: the labelled set is the shipped hh-rlhf pairs (a
size knob) or this run's own labels (`labelled_pairs`); a configuration is a method × prompt style ×
rubric version, the model is the session's. Judgments of the shipped pairs go to a sibling run
(`<run>-judge-lab`) so the run's own judge views only show its own rows; a rerun resumes there.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.judge_report_view import JudgeReportView
from widgets.ui import row, tips
from workbench.jobs import Job
from workbench.judge import (
    LAB_METHODS,
    JudgeConfig,
    LabConfig,
    LabResult,
    Rubric,
    judge_the_judge,
    labelled_pairs,
    load_rubrics,
    shipped_pairs,
)
from workbench.runs import RunStore
from workbench.session import Session

__all__ = ["DEFAULT_LAB_CONFIGS", "JudgeLabPanel", "lab_store_name"]

DEFAULT_LAB_CONFIGS = (LabConfig(method="consistent"), LabConfig(method="probability"))
SOURCES = (("hh-rlhf pairs", "hh-rlhf"), ("this run's labels", "run"))


def lab_store_name(run_name: str) -> str:
    """The sibling run that holds judgments of the shipped pairs."""
    return f"{run_name}-judge-lab"


class JudgeLabPanel(JobControlsMixin, W.VBox):
    """Labelled set, configurations, Run/Stop with progress, and the report."""

    failure_prefix = "judging the judge failed"

    def __init__(
        self,
        session: Session,
        rubric: Callable[[], Rubric],
        judge_config: Callable[[], JudgeConfig],
        *,
        size: int = 12,
    ) -> None:
        self.session, self._rubric, self._judge_config = session, rubric, judge_config
        self.job: Job | None = None
        self.result: LabResult | None = None
        self.source = W.ToggleButtons(options=SOURCES, value="hh-rlhf", description="labelled set")
        self.source.style.button_width = "150px"
        self.size = W.BoundedIntText(size, min=2, max=400, description="pairs", layout=W.Layout(width="auto"))
        self.max_chars = W.BoundedIntText(1500, min=200, max=20_000, description="at most (chars)",
                                          layout=W.Layout(width="auto"))  # fmt: skip
        self.seed = W.BoundedIntText(0, min=0, max=2**31, description="seed", layout=W.Layout(width="auto"))
        self.set_note = W.HTML()
        self.method = W.Dropdown(options=LAB_METHODS, value="consistent", description="method")
        self.style = W.Dropdown(
            options=("auto", "completion", "chat"), value="auto", description="prompt style"
        )
        self.version = W.Dropdown(options=[], description="rubric")
        self.k = W.BoundedIntText(2, min=1, max=8, description="examples (k)", layout=W.Layout(width="auto"))
        self.add_button = W.Button(description="Add", icon="plus")
        self.remove_button = W.Button(description="Remove selected", icon="minus")
        self.config_list = W.SelectMultiple(options=[], rows=4, description="configurations",
                                            layout=W.Layout(width="60%"), style={"description_width": "initial"})  # fmt: skip
        self.configs: list[LabConfig] = []
        self._make_job_controls("judge-lab", "Judge the judge", "balance-scale",
                                "Judge the labelled pairs with every configuration, then compare each with people.",
                                "Stop after the judgments in flight; they are kept and a rerun resumes.")  # fmt: skip
        self.error = W.HTML()
        self.view = JudgeReportView()
        tips((
            (self.source, "Shipped hh-rlhf pairs a person compared, or the pairs you labelled in this run."),
            (self.size, "How many hh-rlhf pairs to judge (each is judged in both orders)."),
            (self.max_chars, "Only hh-rlhf pairs whose conversation and replies fit in this many characters."),
            (self.seed, "Which hh-rlhf pairs are drawn, and the seed of the few-shot examples."),
            (self.method, "How the judge's verdicts become one decision per pair."),
            (self.style, "Chat messages, a plain completion prompt, or auto (chat when the model has a template)."),
            (self.version, "The rubric version the judge uses (this run's versions and the editor's)."),
            (self.k, "few-shot only: labelled example pairs shown before the pair to judge."),
            (self.add_button, "Add the method, prompt style and rubric chosen above as one configuration to compare."),
            (self.remove_button, "Drop the configurations selected in the list."),
            (self.config_list, "The configurations the next run compares (two or more)."),
        ))  # fmt: skip
        self.add_button.on_click(lambda _b: self.add_config())
        self.remove_button.on_click(lambda _b: self._remove_selected())
        self.source.observe(lambda _c: self._update_set_note(), names="value")
        self.size.observe(lambda _c: self._update_set_note(), names="value")
        super().__init__([
            row([self.source, self.size, self.max_chars, self.seed]), self.set_note,
            row([self.method, self.style, self.version, self.k, self.add_button]),
            row([self.config_list, self.remove_button]),
            row([self.run_button, self.stop_button, self.progress, self.progress_label]),
            self.error, self.view,
        ])  # fmt: skip
        self.add_class("wb-judge-lab")
        self.refresh()
        for cfg in DEFAULT_LAB_CONFIGS:
            self.add_config(cfg)

    # -- choices -------------------------------------------------------------------------------
    def rubrics(self) -> dict[str, Rubric]:
        """The editor's rubric first, then every version recorded in the run."""
        current = self._rubric()
        out = {current.version: current}
        with contextlib.suppress(Exception):  # a run without a manifest yet has no recorded versions
            out.update({v: r for v, r in load_rubrics(self.session.store).items() if v not in out})
        return out

    def refresh(self) -> None:
        """Re-read the rubric versions (keeping the choice when it still exists) and the set size."""
        options = [(f"{r.name} ({v[:6]})" + (" · editor" if i == 0 else ""), v)
                   for i, (v, r) in enumerate(self.rubrics().items())]  # fmt: skip
        keep = self.version.value
        self.version.options = options
        self.version.value = keep if keep in [v for _l, v in options] else options[0][1]
        self._update_set_note()

    def _update_set_note(self) -> None:
        if self.source.value == "run":
            try:
                n = labelled_pairs(self.session.store).height
            except Exception as err:
                self.set_note.value = f"<small>cannot read this run's labels: {html.escape(str(err))}</small>"
                return
            self.set_note.value = (f"<small>{n} labelled pairs in this run (Label pairs tab, or two scored answers "
                                   "of one prompt).</small>")  # fmt: skip
        else:
            self.set_note.value = (f"<small>{self.size.value} held-out hh-rlhf pairs; judgments go to the run "
                                   f"<code>{html.escape(lab_store_name(self.session.run_name))}</code>.</small>")  # fmt: skip

    def add_config(self, config: LabConfig | None = None) -> LabConfig | None:
        """Add a configuration (default: the one the dropdowns describe); a repeat is ignored."""
        try:
            cfg = config or LabConfig(method=self.method.value, prompt_style=self.style.value,
                                      rubric_version=self.version.value, k=int(self.k.value))  # fmt: skip
        except ValueError as err:
            self._fail(str(err))
            return None
        if config is not None and cfg.rubric_version is None:
            cfg = cfg.model_copy(update={"rubric_version": self.version.value})
        if cfg not in self.configs:
            self.configs.append(cfg)
            self._sync_list()
        return cfg

    def _remove_selected(self) -> None:
        picked = set(self.config_list.value)
        self.configs = [c for i, c in enumerate(self.configs) if i not in picked]
        self._sync_list()

    def _sync_list(self) -> None:
        self.config_list.options = [(c.label(), i) for i, c in enumerate(self.configs)]

    # -- running -------------------------------------------------------------------------------
    def labelled_set(self) -> tuple[pl.DataFrame, pl.DataFrame | None, RunStore]:
        """(pairs to judge, few-shot tuning pairs, the run their judgments go to)."""
        s = self.session
        if self.source.value == "run":
            pairs = labelled_pairs(s.store)
            if pairs.height < 2:
                raise ValueError(f"this run has {pairs.height} labelled pairs: label at least 2 in the "
                                 "'Label pairs' tab (or score both answers of a prompt), or use the hh-rlhf pairs")  # fmt: skip
            return pairs, None, s.store
        held, tune = shipped_pairs(
            int(self.size.value), seed=int(self.seed.value), max_chars=int(self.max_chars.value)
        )
        store = RunStore.create(s.runs_root, lab_store_name(s.run_name), resume=True,
                                manifest={"model_spec": s.model_spec, "purpose": "judge lab on hh-rlhf pairs"})  # fmt: skip
        return held, tune, store

    def run(self) -> Job | None:
        if self._job_busy():
            self._fail("already running: press Stop first")
            return None
        try:
            configs: Sequence[LabConfig] = list(self.configs)
            if len(configs) < 2:
                raise ValueError(
                    f"choose at least two configurations to compare (have {len(configs)}): use Add"
                )
            rubrics, config = self.rubrics(), self._judge_config()
            stale = [c.label() for c in configs if c.rubric_version not in rubrics]
            if stale:  # a draft version edited away before it was ever judged
                raise ValueError(f"{', '.join(stale)}: that rubric version is neither the editor's nor recorded "
                                 "in this run; remove it and Add the configuration again")  # fmt: skip
            pairs, tune, store = self.labelled_set()
            backend = self.session.backend
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.error.value = ""

        def work(report: Any, cancel: Any) -> LabResult:
            return judge_the_judge(backend, store, pairs, configs, rubrics, config, tune=tune, n_boot=500,
                                   on_progress=report, cancel=cancel)  # fmt: skip

        return self._launch(Job(work, name="judge-lab"), "judging the judge…")

    def _after_done(self, job: Job) -> None:
        if job.state == "done" and isinstance(job.result, LabResult) and job.result.report is not None:
            self.result = job.result
            n = job.result.report.baselines["n"][0] if job.result.report.baselines.height else 0
            self.view.show(job.result.report, f"{n} labelled pairs, {job.result.judgments.height} judgments.")
        elif job.state == "cancelled":
            self.view.show(None, "Stopped: the judgments so far are kept; Judge the judge again resumes.")
        if self.source.value == "run":
            self.session.notify_rows_changed()

    def _fail(self, message: str) -> None:
        self.error.value = (
            f"<div style='color:#b00020;white-space:pre-wrap'>{html.escape('Judge lab: ' + message)}</div>"
        )
        self.session.report_error(f"Judge: {message}")
