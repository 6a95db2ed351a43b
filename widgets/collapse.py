"""The collapse experiment as a notebook widget: arms, generations and seeds as knobs, Run/Stop.

A thin view over `workbench.experiments`: the knobs build a `CollapseConfig`, the experiment runs in
a worker thread (`workbench.jobs.Job`) that only reports progress, and when it ends the panel copies
the result into its chart (an `alt.JupyterChart`) and its contrast table. The result is reproducible
from the config alone (every seed is fixed), so the panel keeps nothing a rerun cannot rebuild.
"""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import ipywidgets as widgets
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.ui import row, tips
from workbench.engine import Progress
from workbench.experiments import ARMS, CollapseConfig, CollapseResult, collapse_chart, contrast, run_collapse
from workbench.jobs import Job

__all__ = ["CollapsePanel"]


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"[{low:.4g}, {high:.4g}]"


def contrast_table(result: CollapseResult) -> str:
    """HTML table: every arm minus `accumulate` at the last generation, per metric, with its 95% CI."""
    arms = [a for a in result.config.arms if a != "accumulate"]
    if "accumulate" not in result.config.arms or not arms or result.per_seed.height == 0:
        return "<i>run the accumulate arm and another arm to compare them</i>"
    frames = []
    for arm in arms:
        try:
            frames.append(contrast(result.per_seed, arm, "accumulate"))
        except ValueError:  # cancelled before this arm ran
            continue
    if not frames:
        return "<i>no arm finished a generation next to accumulate</i>"
    table = pl.concat(frames)
    head = "<tr><th>contrast</th><th>gen</th><th>metric</th><th>difference</th><th>95% CI</th><th>CI excludes 0</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(r['contrast'])}</td><td>{r['generation']}</td><td>{html.escape(r['metric'])}</td>"
        f"<td>{r['difference']:.4g}</td>"
        f"<td>{_interval(r['ci_low'], r['ci_high'])}</td>"
        f"<td>{'yes' if r['excludes_zero'] else 'no'}</td></tr>"
        for r in table.iter_rows(named=True)
    )
    return f"<table class='wb-collapse-contrast'>{head}{body}</table>"


class CollapsePanel(JobControlsMixin, widgets.VBox):
    """Knobs for `run_collapse`, Run/Stop with progress, the per-metric chart and the contrasts.

    `corpus` is an optional frame with a `text` column (and `group`, the unit of the held-out split);
    by default the shipped Self-Instruct human text.
    """

    failure_prefix = "collapse run failed"

    def __init__(self, corpus: pl.DataFrame | None = None, *, config: CollapseConfig | None = None) -> None:
        cfg = config or CollapseConfig()
        self.corpus = corpus
        self.job: Job | None = None
        self.result: CollapseResult | None = None
        self.arms = widgets.SelectMultiple(
            options=list(ARMS), value=list(cfg.arms), description="arms", rows=3
        )
        self.generations = widgets.IntSlider(cfg.generations, min=1, max=50, description="generations")
        self.seeds = widgets.IntSlider(cfg.seeds, min=1, max=20, description="seeds")
        self.mix_fraction = widgets.FloatSlider(
            cfg.mix_fraction, min=0.05, max=0.95, step=0.05, description="human share (mix)"
        )
        self.order = widgets.Dropdown(options=[1, 2, 3], value=cfg.order, description="n-gram order")
        self._base = cfg
        self._make_job_controls(
            "collapse",
            "Run",
            "play",
            "Run the experiment in the background.",
            "Stop after the current generation; what was measured is shown.",
        )
        tips(
            (
                (
                    self.arms,
                    "replace: fit on the last samples only; accumulate: keep all data; mix: a fixed human share.",
                ),
                (self.generations, "How many times each model is refit on data its predecessor wrote."),
                (self.seeds, "Independent repetitions; the bands are 95% intervals over seeds."),
                (
                    self.mix_fraction,
                    "mix arm: the share of each generation's sentences drawn fresh from human text.",
                ),
                (self.order, "n of the n-gram model (2: bigrams backing off to single words)."),
            )
        )
        self.error = widgets.HTML()
        self.status = widgets.HTML()
        self.contrasts = widgets.HTML()
        alt.JupyterChart.enable_offline(True)
        self.chart = alt.JupyterChart(alt.Chart(pl.DataFrame({"x": [0]})).mark_point(opacity=0))
        super().__init__(
            [
                row([self.arms, widgets.VBox([self.generations, self.seeds, self.mix_fraction, self.order])]),
                row([self.run_button, self.stop_button, self.progress, self.progress_label]),
                self.error,
                self.status,
                self.chart,
                self.contrasts,
            ]
        )
        self.add_class("wb-collapse")

    def config(self) -> CollapseConfig:
        """The configuration the knobs describe (other fields as given to the panel)."""
        return self._base.model_copy(
            update={
                "arms": tuple(self.arms.value),
                "generations": self.generations.value,
                "seeds": self.seeds.value,
                "mix_fraction": self.mix_fraction.value,
                "order": self.order.value,
            }
        )

    def run(self) -> Job | None:
        """Start the experiment in a worker thread (returns the Job); problems show in the panel."""
        if self._job_busy():
            self._fail("a run is already in progress: press Stop first")
            return None
        try:
            config = CollapseConfig.model_validate(self.config().model_dump())
        except Exception as err:
            self._cannot_start(str(err))
            return None
        if not config.arms:
            self._cannot_start("choose at least one arm")
            return None
        self.error.value = ""
        corpus = self.corpus

        def work(report: Any, cancel: Any) -> CollapseResult:
            return run_collapse(config, corpus, on_progress=report, cancel=cancel)

        return self._launch(Job(work, name="collapse"), "starting…")

    def _fail(self, message: str) -> None:
        self.error.value = f"<span class='wb-error' style='color:#b00020'>{html.escape(message)}</span>"

    def _on_progress(self, p: Progress) -> None:
        # a step is one generation of one arm and seed (fit, sample, measure), not a dataset row
        self.progress.value = p.rows_done / p.rows_total if p.rows_total else 0.0
        eta = "" if p.eta_s is None else f" · ETA {p.eta_s:.0f}s"
        self.progress_label.value = f"{p.rows_done}/{p.rows_total} generations{eta}"

    def _after_done(self, job: Job) -> None:
        p = job.progress
        steps = f"{p.rows_done}/{p.rows_total} generations" if p else "no generation"
        if job.state == "cancelled":
            self.progress_label.value = f"stopped after {steps}: the chart shows what was measured"
        elif job.state == "done" and p is not None:
            self.progress_label.value = f"done · {steps} in {p.elapsed_s:.1f}s"
        if job.state == "failed" or job.result is None:
            return
        self.show(job.result)

    def show(self, result: CollapseResult) -> None:
        """Put a result in the chart, the status line and the contrast table."""
        self.result = result
        if result.per_seed.height == 0:
            self.status.value = "stopped before the first generation finished: nothing to show"
            return
        self.chart.chart = collapse_chart(result.summary, result.reference)
        done = result.per_seed.select("arm", "seed").unique().height
        self.status.value = (
            f"{'stopped · ' if result.cancelled else ''}{done} arm×seed runs · "
            f"{result.corpus['train_words']:,} human training words, {result.corpus['test_words']:,} held out · "
            f"{result.elapsed_s:.1f}s"
        )
        self.contrasts.value = contrast_table(result)
