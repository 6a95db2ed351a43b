"""Self-instruct panels: edit the seed pool, then grow it with the model and watch every decision.

Thin views over `workbench.generate.seeds` and `workbench.generate.selfinstruct`: all logic lives in the core. The
similarity-threshold slider calls the pure `apply_similarity_threshold` on the rows already generated
(no model call), so counts, table and charts update as it moves. Runs go through a `Job` (worker
thread + cancel event); the job only sets widget values, never displays anything.
"""

from __future__ import annotations

import html
import time
from typing import Any

import altair as alt
import ipywidgets as widgets
import polars as pl

from widgets.job_controls import LiveStepMixin
from widgets.preview_box import PreviewBox
from widgets.sampler_editor import SamplerEditor
from widgets.seeds import SeedsPanel
from widgets.ui import row, tip
from workbench.engine import SamplingParams
from workbench.generate.selfinstruct import SelfInstructConfig, apply_similarity_threshold, run_self_instruct
from workbench.generate.selfinstruct.config import DEFAULT_INSTRUCTION_PARAMS
from workbench.generate.selfinstruct.stats import (
    acceptance_by_round,
    candidate_table,
    instruction_rows,
    similarity_histogram,
    status_counts,
)
from workbench.jobs import Job
from workbench.pipeline.preview import Preview, preview_self_instruct
from workbench.session import Session

__all__ = ["SeedsPanel", "SelfInstructPanel"]


class SelfInstructPanel(LiveStepMixin, widgets.VBox):
    """Knobs, Run/Stop, progress, a threshold slider that re-filters instantly, a live candidates table
    and charts of acceptance per round and of nearest-neighbour similarity."""

    step_name = "Self-instruct"

    def __init__(
        self, session: Session, seeds_panel: SeedsPanel | None = None, *, table_rows: int = 40
    ) -> None:
        self.session = session
        self.table_rows = table_rows
        self.seeds_panel = seeds_panel or SeedsPanel(session)
        self.job: Job | None = None
        self.rows: pl.DataFrame = pl.DataFrame()  # instruction rows as stored
        self.view: pl.DataFrame = pl.DataFrame()  # the same rows re-filtered at the slider's threshold
        self._last_refresh = 0.0
        s = DEFAULT_INSTRUCTION_PARAMS
        self.k_human = widgets.IntSlider(6, min=0, max=12, description="human examples")
        self.m_machine = widgets.IntSlider(2, min=0, max=8, description="model examples")
        self.temperature = widgets.FloatSlider(
            s.temperature, min=0.0, max=2.0, step=0.05, description="temperature"
        )
        self.top_p = widgets.FloatSlider(s.top_p, min=0.05, max=1.0, step=0.05, description="top-p")
        self.max_tokens = widgets.IntSlider(s.max_tokens, min=8, max=256, description="max tokens")
        self.num_instructions = widgets.BoundedIntText(20, min=1, max=100_000, description="instructions wanted")
        self.rounds = widgets.BoundedIntText(5, min=1, max=1000, description="at most rounds")
        self.prompts_per_round = widgets.BoundedIntText(8, min=1, max=10_000, description="prompts per round")
        self.seed = widgets.BoundedIntText(0, min=0, max=2**32 - 1, description="seed")
        self.generate_instances = widgets.Checkbox(False, description="also write an input and answer for each", indent=False)
        self.threshold = widgets.FloatSlider(
            0.7, min=0.0, max=1.0, step=0.01, description="drop if ROUGE-L above", continuous_update=True
        )
        self._make_job_controls(
            "selfinstruct",
            "Run",
            "play",
            "Grow the instruction pool from the seeds with the model.",
            "Stop after the rows in flight; finished rows stay in the run.",
        )
        for control, text in (
            (self.k_human, "How many human-written seed tasks each prompt shows the model as examples."),
            (self.m_machine, "How many instructions the model already wrote each prompt shows as examples."),
            (self.temperature, "Sampling randomness: 0 always picks the likeliest word, higher is more varied."),
            (self.top_p, "Sample only from the likeliest words whose probabilities add up to this share."),
            (self.max_tokens, "The longest a generated instruction may be, in tokens."),
            (self.num_instructions, "Stop once this many new instructions have been kept."),
            (self.rounds, "Stop after this many rounds even if fewer instructions were kept."),
            (self.prompts_per_round, "How many few-shot prompts the model completes in each round."),
            (self.seed, "The random seed that makes a run repeat exactly."),
            (self.generate_instances, "After each round, have the model write an example input and answer per kept instruction."),
            (self.threshold, "Drop a candidate whose word overlap with an earlier one is above this (moves re-filter at once)."),
        ):
            tip(control, text)
        self.counts = widgets.HTML()
        self.error = widgets.HTML()
        self.table = widgets.HTML()
        self.table.add_class("wb-selfinstruct-table")
        alt.JupyterChart.enable_offline(True)
        self.acceptance_chart = alt.JupyterChart(self._acceptance_spec(pl.DataFrame()))
        self.histogram_chart = alt.JupyterChart(self._histogram_spec(pl.DataFrame()))

        self.threshold.observe(lambda _: self.apply_threshold(), names="value")
        session.subscribe(self._on_session_event)

        knobs = widgets.VBox(
            [
                row([self.k_human, self.m_machine]),
                row([self.temperature, self.top_p, self.max_tokens]),
                row([self.num_instructions, self.rounds, self.prompts_per_round]),
                row([self.seed, self.generate_instances]),
            ]
        )
        self.preview = PreviewBox("selfinstruct", self._preview_work, what="one round of self-instruct")
        self.last_config: SelfInstructConfig | None = None  # what the last Run used (for Save recipe)
        self.sampler_editor = SamplerEditor(self._knob_config, lambda: self.seeds_panel.seeds)
        for knob in (self.k_human, self.seed):
            knob.observe(lambda _c: self.sampler_editor.refresh(), names="value")
        self.seeds_panel.on_change(lambda _seeds: self.sampler_editor.refresh())
        seeds_box = widgets.Accordion([self.seeds_panel, self.sampler_editor])
        seeds_box.set_title(0, "Seed tasks")
        seeds_box.set_title(1, "Attribute samplers (topic, persona, …) with a preview of the prompts")
        super().__init__(
            [
                seeds_box,
                knobs,
                row([self.run_button, self.stop_button, self.preview.button, self.progress, self.progress_label]),
                self.preview,
                row([self.threshold, self.counts]),
                self.error,
                row([self.acceptance_chart, self.histogram_chart]),
                self.table,
            ]
        )
        self.add_class("wb-selfinstruct")
        self.refresh()

    # -- config --------------------------------------------------------------------------------
    def config(self) -> SelfInstructConfig:
        """The run configuration the knobs and the sampler editor describe."""
        return self.sampler_editor.apply(self._knob_config())

    def _knob_config(self) -> SelfInstructConfig:
        sampling = SamplingParams(
            **{
                **DEFAULT_INSTRUCTION_PARAMS.model_dump(),
                "temperature": self.temperature.value,
                "top_p": self.top_p.value,
                "max_tokens": self.max_tokens.value,
            }
        )
        return SelfInstructConfig(
            k_human=self.k_human.value,
            m_machine=self.m_machine.value,
            num_instructions=self.num_instructions.value,
            rounds=self.rounds.value,
            prompts_per_round=self.prompts_per_round.value,
            sampling=sampling,
            similarity_threshold=self.threshold.value,
            seed=self.seed.value,
            generate_instances=self.generate_instances.value,
        )

    def _preview_work(self) -> Any:
        config, seeds, backend = self.config(), self.seeds_panel.seeds, self.session.backend

        def work() -> Preview:
            return preview_self_instruct(backend, config, seeds)

        return work

    # -- running -------------------------------------------------------------------------------
    def run(self) -> Job | None:
        """Start a run in a worker thread (returns the Job); errors show in the panel."""
        if self.job is not None and self.job.running:
            self._fail("a run is already in progress: press Stop first")
            return None
        try:
            config = self.config()
            seeds = self.seeds_panel.seeds
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.error.value = ""
        self.last_config = config

        def work(report: Any, cancel: Any) -> pl.DataFrame:
            return run_self_instruct(backend, store, config, seeds=seeds, on_progress=report, cancel=cancel)

        return self._launch(Job(work, name="self-instruct"), "starting…")

    def _on_session_event(self, what: str) -> None:
        if what == "run" and not self._job_busy():
            self.refresh()

    # -- views ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the run's instruction rows and re-apply the slider's threshold."""
        self._last_refresh = time.monotonic()
        try:
            self.rows = instruction_rows(self.session.store.rows())
        except Exception as err:
            self._fail(f"cannot read the run: {err}")
            return
        self.apply_threshold()

    def apply_threshold(self) -> None:
        """Re-filter the generated rows at the slider's threshold (no model call) and redraw."""
        try:
            rows = self.rows
            self.view = apply_similarity_threshold(rows, self.threshold.value) if rows.height else rows
        except Exception as err:
            self._fail(f"cannot apply the threshold: {err}")
            return
        c = status_counts(self.view)
        self.counts.value = f"<b>{c['kept']}</b> kept · <b>{c['dropped']}</b> dropped · {c['error']} errors"
        self.table.value = self._table_html(candidate_table(self.view, self.table_rows))
        self.acceptance_chart.chart = self._acceptance_spec(acceptance_by_round(self.view))
        self.histogram_chart.chart = self._histogram_spec(similarity_histogram(self.view))

    @staticmethod
    def _table_html(df: pl.DataFrame) -> str:
        if df.height == 0:
            return "<i>No candidates yet: press Run.</i>"
        head = "<tr><th>round</th><th>status</th><th>reason</th><th>instruction</th><th>nearest (ROUGE-L)</th></tr>"
        body = []
        for r in df.iter_rows(named=True):
            score = r.get("nearest_score")
            near = (
                "" if score is None else f"{score:.2f} · {html.escape(str(r.get('nearest_text') or '')[:80])}"
            )
            color = {"kept": "#1b7f3b", "dropped": "#b00020"}.get(r["status"], "#666")
            body.append(
                f"<tr><td>{r['round']}</td><td style='color:{color}'>{r['status']}</td>"
                f"<td>{html.escape(r['reason'] or '')}</td><td>{html.escape(r['text'] or '')}</td><td>{near}</td></tr>"
            )
        return f"<table class='wb-selfinstruct-table'>{head}{''.join(body)}</table>"

    @staticmethod
    def _acceptance_spec(df: pl.DataFrame) -> alt.Chart:
        """Acceptance per round, the same definition as the Diversity tab's (`acceptance_by_round`)."""
        empty = [{"round": 0, "rate": 0.0, "kept": 0, "dropped": 0, "errors": 0, "candidates": 0}]
        data = df.to_dicts() if df.height else empty
        return (
            alt.Chart(alt.Data(values=data), title="Acceptance per round (at the slider's threshold)")
            .mark_bar()
            .encode(
                x=alt.X("round:O", title="round"),
                y=alt.Y("rate:Q", title="kept / decided candidates", scale=alt.Scale(domain=[0, 1])),
                tooltip=["round:O", "kept:Q", "dropped:Q", "errors:Q", alt.Tooltip("rate:Q", format=".0%")],
            )
            .properties(width=260, height=180)
        )

    def _histogram_spec(self, df: pl.DataFrame) -> alt.LayerChart:
        data = (
            df.to_dicts()
            if df.height
            else [{"bin_start": 0.0, "bin_end": 0.05, "status": "kept", "count": 0}]
        )
        bars = (
            alt.Chart(alt.Data(values=data), title="Nearest-neighbour ROUGE-L")
            .mark_bar()
            .encode(
                x=alt.X(
                    "bin_start:Q",
                    title="ROUGE-L F1 to nearest pool instruction",
                    scale=alt.Scale(domain=[0, 1]),
                ),
                x2="bin_end:Q",
                y=alt.Y("count:Q", stack=True),
                color=alt.Color("status:N", scale=alt.Scale(domain=["kept", "dropped", "error"])),
                tooltip=["status:N", "count:Q", "bin_start:Q"],
            )
        )
        rule = (
            alt.Chart(alt.Data(values=[{"t": self.threshold.value}])).mark_rule(color="black").encode(x="t:Q")
        )
        return (bars + rule).properties(width=300, height=180)
