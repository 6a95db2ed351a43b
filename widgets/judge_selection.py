"""Best-of-n and multi-aspect ratings of the run's answers, as tables.

A thin view over `workbench.judge.best_of_n` (the n best-scored answers of each prompt) and
`aggregate_aspects` (several rubrics, one per criterion or aspect, rated separately and combined by a
mean into `overall`). Pick one version per rubric: each rubric name is one aspect. "Rate each
criterion" judges the panel's sample once per criterion of the editor's rubric, so the aspects exist.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.ui import row, tips
from workbench.jobs import Job
from workbench.judge import (
    JudgeConfig,
    Rubric,
    aggregate_aspects,
    best_of_n,
    judgeable_rows,
    judgments_in,
    run_absolute_judge,
    version_labels,
)
from workbench.session import Session

__all__ = ["SelectionView", "aspect_rubrics", "frame_html", "latest_versions"]


def latest_versions(judgments: pl.DataFrame) -> list[str]:
    """The last-judged version of each rubric name (one aspect each), in order of first appearance."""
    if judgments.height == 0:
        return []
    last: dict[str, str] = {}
    for name, version in judgments.select("rubric", "rubric_version").iter_rows():
        last.pop(name, None)
        last[name] = version
    order = list(dict.fromkeys(judgments["rubric"].to_list()))
    return [last[n] for n in order]


def aspect_rubrics(rubric: Rubric) -> list[Rubric]:
    """One rubric per criterion of `rubric` (named 'name: criterion'): the aspects rated separately."""
    if len(rubric.criteria) < 2:
        raise ValueError("the rubric has one criterion: add criteria in the editor to rate them separately")
    return [rubric.edit(name=f"{rubric.name}: {c[:40]}", criteria=(c,)) for c in rubric.criteria]


def frame_html(df: pl.DataFrame, css: str, limit: int = 50, text_chars: int = 100) -> str:
    """A small frame as an HTML table (long texts cut, floats to 2 decimals)."""
    if df.height == 0:
        return "<i>nothing to show</i>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)

    def cell(v: Any) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.2f}"
        text = str(v)
        return html.escape(text if len(text) <= text_chars else text[: text_chars - 1] + "…")

    body = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in df.head(limit).rows()
    )
    more = f"<p><small>{df.height - limit} more rows not shown.</small></p>" if df.height > limit else ""
    return f"<table class='{css}'><tr>{head}</tr>{body}</table>{more}"


class SelectionView(JobControlsMixin, W.VBox):
    """Versions (aspects), n and a minimum score; Show gives the best-of-n and the aspect tables.
    "Rate each criterion" judges `sample()` with one rubric per criterion of `rubric()`."""

    failure_prefix = "rating the criteria failed"

    def __init__(
        self,
        session: Session,
        rubric: Callable[[], Rubric],
        sample: Callable[[], pl.DataFrame],
        judge_config: Callable[[], JudgeConfig],
    ) -> None:
        self.session, self._rubric, self._sample, self._judge_config = session, rubric, sample, judge_config
        self.last_rated: tuple[list[Rubric], list[str], JudgeConfig] | None = None
        """The last "Rate each criterion": its per-criterion rubrics, the answer ids it rated, its config."""
        self.job: Job | None = None
        self._aspects: list[str] = []
        self._make_job_controls("judge-aspects", "Rate each criterion", "list",
                                "Judge the sample once per criterion of the rubric above (each becomes an aspect).",
                                "Stop after the judgments in flight; they are kept.")  # fmt: skip
        self.versions = W.SelectMultiple(
            options=[], rows=4, description="aspects", layout=W.Layout(width="55%")
        )
        self.n = W.BoundedIntText(1, min=1, max=50, description="best n", layout=W.Layout(width="auto"))
        self.min_score = W.FloatText(0.0, description="score at least", layout=W.Layout(width="auto"))
        self.show_button = W.Button(description="Show", icon="table")
        self.show_button.add_class("wb-judge-selection-show")
        self.note = W.HTML()
        self.best = W.HTML()
        self.aspects = W.HTML()
        tips((
            (self.versions, "Rubric versions to combine, at most one per rubric name (each name is an aspect)."),
            (self.n, "How many of each prompt's answers to keep, best first."),
            (self.min_score, "Keep only answers whose (combined) score is at least this (0 keeps all)."),
            (self.show_button, "Rank the answers by judge score and combine the aspects."),
        ))  # fmt: skip
        self.show_button.on_click(lambda _b: self.show())
        super().__init__([
            row([self.run_button, self.stop_button, self.progress, self.progress_label]),
            row([self.versions, W.VBox([self.n, self.min_score, self.show_button])]), self.note,
            W.HTML("<h4>Best of n per prompt</h4>"), self.best,
            W.HTML("<h4>Multi-aspect ratings</h4>"), self.aspects,
        ])  # fmt: skip
        self.add_class("wb-judge-selection")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the run's absolute rubric versions; the default choice is the latest of each rubric."""
        try:
            judgments = judgments_in(self.session.store, "absolute")
        except Exception:  # an empty run has no judgments to read yet
            judgments = pl.DataFrame()
        names = version_labels(judgments) if judgments.height else {}
        keep = [v for v in self.versions.value if v in names]
        self.versions.options = [(label, v) for v, label in names.items()]
        self.versions.value = tuple(keep or latest_versions(judgments))

    def show(self) -> None:
        picked = list(self.versions.value)
        if not picked:
            self.note.value = "<i>No absolute judgments yet: judge a sample (absolute mode) first.</i>"
            return
        store = self.session.store
        judgments = judgments_in(store, "absolute").filter(pl.col("rubric_version").is_in(picked))
        completions = judgeable_rows(store.rows())
        min_score = float(self.min_score.value) or None
        try:
            best = best_of_n(judgments, completions, int(self.n.value), min_score=min_score)
            aspects = aggregate_aspects(judgments)
        except ValueError as err:
            self.note.value = f"<span style='color:#b00020'>{html.escape(str(err))}</span>"
            return
        texts = completions.select("id", "text")
        aspects = aspects.join(texts, on="id", how="left").sort("overall", descending=True, nulls_last=True)
        self.note.value = (f"<small>{best.height} answers kept from {best['prompt_id'].n_unique()} prompts; "
                           f"{aspects.height} answers rated on {len(picked)} aspect(s).</small>")  # fmt: skip
        self.best.value = frame_html(best.drop("id"), "wb-judge-best-of-n")
        self.aspects.value = frame_html(aspects, "wb-judge-aspects")

    def run(self) -> Job | None:
        """Judge the sample with one rubric per criterion, one after the other (returns the Job)."""
        if self._job_busy():
            self._fail("already running: press Stop first")
            return None
        try:
            rubrics, sample, config = aspect_rubrics(self._rubric()), self._sample(), self._judge_config()
            if sample.height == 0:
                raise ValueError("there are no answers to rate: generate some first")
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.note.value = ""
        self._aspects = [r.version for r in rubrics]
        self.last_rated = (rubrics, sample["id"].to_list(), config)  # what Save recipe records (app_recipe)

        def work(report: Any, cancel: Any) -> None:
            for r in rubrics:
                if cancel.is_set():
                    return
                run_absolute_judge(backend, store, sample, r, config, on_progress=report, cancel=cancel)

        return self._launch(Job(work, name="judge-aspects"), f"rating {len(rubrics)} criteria…")

    def _after_done(self, job: Job) -> None:
        self.refresh()
        known = {v for _label, v in self.versions.options}
        self.versions.value = tuple(v for v in self._aspects if v in known)  # the aspects just rated
        self.session.notify_rows_changed()
        if job.state == "done":
            self.show()

    def _fail(self, message: str) -> None:
        self.note.value = f"<span style='color:#b00020'>{html.escape(message)}</span>"
        self.session.report_error(f"Judge: {message}")
