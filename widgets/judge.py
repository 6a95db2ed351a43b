"""The judge lab panel: edit a rubric, judge a sample, see the scores, label, measure agreement and bias.

All logic lives in `workbench.judge`; this panel only holds the draft rubric and the sample choice.
Judgments, rubric versions (manifest) and human labels are all in the run directory.
"""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import ipywidgets as W
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.judge_notes import METRIC_HELP, metric_table, same_score_note
from widgets.judge_preview import judge_preview_work
from widgets.judge_rows import JUDGE_ROWS, JudgedRun, judge_pairs, judge_pool, judged_rubric, pick_sample
from widgets.judge_sections import JudgeLabSections
from widgets.labeler import CalibrationLabeler, PairwiseLabeler
from widgets.preview_box import PreviewBox
from widgets.rubric_editor import RubricEditor, RubricProblem, check_draft, rubric_draft
from widgets.ui import row, tip
from workbench.jobs import Job
from workbench.judge import (
    JudgeConfig,
    Rubric,
    bias_report,
    flip_rates,
    judgments_in,
    likert_rubric,
    pairs_within_groups,
    parse_counts,
    preference_agreement,
    run_absolute_judge,
    run_pairwise_judge,
    score_agreement,
    score_histogram,
    version_labels,
)
from workbench.session import Session

__all__ = ["DEFAULT_RUBRIC", "METRIC_HELP", "JudgePanel", "RubricEditor", "same_score_note"]

DEFAULT_RUBRIC = likert_rubric(
    "helpfulness",
    "Grade how well the response answers the instruction.",
    ("Does what the instruction asks", "Is correct", "Is clear and concise"),
    {
        1: "Ignores the instruction or is wrong",
        2: "Attempts it but is mostly wrong or unusable",
        3: "Partly answers it, with clear gaps or errors",
        4: "Answers it well, with minor issues",
        5: "Answers it fully, correctly and clearly",
    },
)
_PLACEHOLDER = {
    "id": "example",
    "instruction": "Name three primary colours.",
    "text": "Red, yellow and blue.",
}
_rubric_draft = rubric_draft


def _error_html(message: str) -> str:
    return f"<div style='color:#b00020;white-space:pre-wrap'>{html.escape(message)}</div>"


class JudgePanel(JobControlsMixin, W.VBox):
    """Rubric editor, Run/Stop over a sample, score distributions per version, labelling, agreement and bias."""

    failure_prefix = "judge failed"

    def __init__(self, session: Session, rubric: Rubric | None = None, *, sample_size: int = 8) -> None:
        self.session = session
        self.rubric = rubric or DEFAULT_RUBRIC  # the last version judged with (edits derive from it)
        self.job: Job | None = None
        self.sample: pl.DataFrame = pl.DataFrame()
        self._given_rows: pl.DataFrame | None = None
        self.last_judged: JudgedRun | None = None
        """The last Run as it ran (Save recipe records it, so the recipe judges those rows the same way)."""
        self.editor = RubricEditor(draft=_rubric_draft(self.rubric))
        self.sample_size = W.BoundedIntText(
            sample_size, min=1, max=100_000, description="sample size", layout=W.Layout(width="auto")
        )
        self.seed = W.BoundedIntText(0, min=0, max=2**31, description="seed", layout=W.Layout(width="auto"))
        self.max_tokens = W.IntSlider(48, min=16, max=512, description="max tokens")
        self.reasoning_chars = W.IntSlider(100, min=10, max=1000, description="feedback at most (chars)")
        self.mode = W.ToggleButtons(options=["absolute", "pairwise"], value="absolute", description="judge mode",
                                tooltips=["Grade each answer on the scale.", "Pick the better of two answers."])
        self.mode.style.button_width = "80px"
        self.rows_from = W.Dropdown(options=JUDGE_ROWS, value="completions", description="what to judge",
                                    layout=W.Layout(width="300px"))  # fmt: skip
        self.run_button = W.Button(description="Judge sample", icon="gavel", button_style="primary")
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True)
        self.run_button.add_class("wb-judge-run")
        self.stop_button.add_class("wb-judge-stop")
        self.progress = W.FloatProgress(0.0, min=0.0, max=1.0)
        self.progress_label = W.HTML()
        self.error = W.HTML()
        self.parse_table = W.HTML()
        self.same_score_note = W.HTML()
        self.same_score_note.add_class("wb-judge-same-score")
        alt.JupyterChart.enable_offline(True)
        self.chart = alt.JupyterChart(self._chart_spec(pl.DataFrame(), {}))
        self.labeler = CalibrationLabeler(lambda: self.session.store)
        self.pair_labeler = PairwiseLabeler(lambda: self.session.store)
        self.agreement = W.HTML()
        self.refresh_button = W.Button(description="refresh", icon="refresh")
        self.preview = PreviewBox("judge", lambda: judge_preview_work(self), what="the judge with the draft rubric")
        for control, text in (
            (self.sample_size, "How many answers (or prompts, in pairwise mode) to judge."),
            (self.seed, "The random seed that picks the sample and makes judging repeat exactly."),
            (self.max_tokens, "The longest the judge's feedback and score may be, in tokens."),
            (self.reasoning_chars, "The most characters of feedback the judge may write before its score."),
            (self.mode, "Absolute grades each answer on the scale; pairwise picks the better of two answers."),
            (self.rows_from, "What to judge: the answers, or conversations (the last reply in context, or all of it)."),
            (self.run_button, "Judge the sample with the rubric above."),
            (self.stop_button, "Stop after the rows in flight; finished judgments stay in the run."),
            (self.refresh_button, "Re-read the run's judgments and labels."),
        ):
            tip(control, text)

        self.editor.observe(lambda _c: self._update_preview(), names="draft")
        self.rows_from.observe(lambda _c: self.set_rows(self._given_rows), names="value")  # re-pick the sample
        self.run_button.on_click(lambda _b: self.run())
        self.stop_button.on_click(lambda _b: self.stop())
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.labeler.on_change(self._update_agreement)
        self.pair_labeler.on_change(self._update_agreement)
        session.subscribe(self._on_session)

        controls = W.VBox([
            row([self.mode, self.rows_from, self.sample_size, self.seed]),
            row([self.max_tokens, self.reasoning_chars]),
            row([self.run_button, self.stop_button, self.preview.button, self.progress, self.progress_label,
                 self.refresh_button]),
            self.preview,
            self.error,
        ])  # fmt: skip
        tabs = W.Tab(
            [W.VBox([self.same_score_note, self.chart, self.parse_table]), self.labeler, self.pair_labeler,
             self.agreement]
        )
        for i, title in enumerate(("Scores", "Label", "Label pairs", "Agreement & bias")):
            tabs.set_title(i, title)
        # Judge the judge, version comparison, best-of-n / aspects: each a thin view of its own module.
        self.lab = JudgeLabSections(session, self._lab_rubric, lambda: self.sample, self.config)
        super().__init__([W.HTML("<h3>Judge lab</h3>"), self.editor, controls, tabs, self.lab])
        self.add_class("wb-judge")
        self.refresh()

    # -- rubric --------------------------------------------------------------------------------
    def draft_rubric(self) -> Rubric:
        """The rubric the editor describes: the current version, or a new version edited from it.
        Raises `RubricProblem` (a plain message and the field it concerns) for a draft not usable yet."""
        return check_draft(self.rubric, dict(self.editor.draft))[0]

    def _lab_rubric(self) -> Rubric:
        """The rubric the lab sections use: the editor's draft when it is valid, else the last one judged."""
        try:
            return self.draft_rubric()
        except RubricProblem:
            return self.rubric

    def set_rubric(self, rubric: Rubric) -> None:
        """Load a rubric version into the editor (it becomes the base of later edits)."""
        self.rubric = rubric
        self.editor.draft = _rubric_draft(rubric)
        self._update_preview()

    def _update_preview(self) -> None:
        """Validate the draft and render its judge prompt on the first sample row (or a placeholder);
        a problem goes to the editor only, at its field, and the header never names a stale version."""
        ed = self.editor
        try:
            rubric, _ = check_draft(self.rubric, dict(ed.draft), pairwise=self.mode.value == "pairwise")
            rec = self.sample.row(0, named=True) if self.sample.height else _PLACEHOLDER
            instruction = rec.get("instruction") or rec.get("prompt") or ""
            if rec.get("input"):
                instruction = f"{instruction}\n\n{rec['input']}"
            body = rubric.render(instruction, rec.get("text") or "")
        except (RubricProblem, ValueError) as err:  # a half-typed level, a Jinja typo: say what to fix
            problem = err if isinstance(err, RubricProblem) else RubricProblem("template", str(err))
            ed.error, ed.error_field = str(problem), problem.field
            ed.version = ed.parent_version = ""
            ed.header = "This draft has a problem (shown at its field): fix it to get a rubric version."
            return
        chat = self.session.model_loaded and self.session.backend.chat_template is not None
        ed.preview = body if chat else body + JudgeConfig().completion_suffix
        ed.error, ed.error_field = "", ""
        ed.version, ed.parent_version = rubric.version, rubric.parent_version or ""
        if rubric.version == self.rubric.version:
            ed.header = f"version {rubric.version}: the rubric the next judge run uses" + (
                f" (edited from {rubric.parent_version})" if rubric.parent_version else ""
            )
        else:
            ed.header = (f"draft version {rubric.version}, edited from {self.rubric.version}: "
                         "judging with it records it as a new version")  # fmt: skip

    # -- sample & running ----------------------------------------------------------------------
    def set_rows(self, rows: pl.DataFrame | None) -> None:
        """Judge these rows (id, instruction/prompt, text) instead of a sample of the run's completions."""
        self._given_rows = rows
        try:
            self.sample = self._pick_sample()
        except Exception as err:
            self._fail(f"cannot use these rows: {err}")
            return
        self.refresh()

    def _pool(self) -> pl.DataFrame:
        return self._given_rows if self._given_rows is not None else judge_pool(self.session.store.rows(),
                                                                                 self.rows_from.value)  # fmt: skip

    def _pick_sample(self, pool: pl.DataFrame | None = None) -> pl.DataFrame:
        """The sample the knobs pick from `pool` (default: the rows the panel judges now)."""
        return pick_sample(self._pool() if pool is None else pool, int(self.sample_size.value),
                           int(self.seed.value), pairwise=self.mode.value == "pairwise")  # fmt: skip

    def config(self) -> JudgeConfig:
        cap = max(10, int(2.5 * (self.max_tokens.value - 8)))
        return JudgeConfig(max_tokens=self.max_tokens.value, max_reasoning_chars=min(self.reasoning_chars.value, cap),
                           seed=int(self.seed.value))  # fmt: skip

    def run(self) -> Job | None:
        """Judge the sample with the draft rubric in a worker thread (returns the Job)."""
        if self.job is not None and self.job.running:
            self._fail("the judge is already running: press Stop first")
            return None
        try:
            rubric = self.draft_rubric()
        except RubricProblem:  # already shown, once, at its field in the editor
            self._update_preview()
            self.progress.value = 0.0
            self.progress_label.value = "not started: the rubric above has a problem to fix first"
            return None
        try:
            config, what, pool = self.config(), self.rows_from.value, self._pool()
            self.sample = self._pick_sample(pool)
            pairs = judge_pairs(self.sample, what, self.mode.value == "pairwise")
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.rubric = rubric  # the editor's base; a conversation judge grades with it wrapped for its target
        rubric = judged_rubric(rubric, what)
        self.error.value = ""
        sample = self.sample
        self.last_judged = JudgedRun(sample["id"].to_list(), pool.height, config, self.mode.value, rubric, what)

        def work(report: Any, cancel: Any) -> pl.DataFrame:
            if pairs is not None:  # both orders of each pair
                return run_pairwise_judge(
                    backend, store, pairs, rubric, config, on_progress=report, cancel=cancel
                )
            return run_absolute_judge(
                backend, store, sample, rubric, config, on_progress=report, cancel=cancel
            )

        return self._launch(Job(work, name="judge"), "judging…")

    def _after_done(self, job: Job) -> None:
        self.refresh()
        self.session.notify_rows_changed()

    def _fail(self, message: str) -> None:
        self.error.value = _error_html(f"Judge: {message}")
        self.session.report_error(f"Judge: {message}")

    def _on_session(self, what: str) -> None:
        if what in ("run", "rows") and not (self.job is not None and self.job.running):
            self.refresh()

    # -- views ---------------------------------------------------------------------------------
    def judgments(self) -> pl.DataFrame:
        """Absolute judgments of the run (all versions)."""
        return judgments_in(self.session.store, "absolute")

    def refresh(self) -> None:
        """Re-read the run: chart, parse counts, labelling cards, agreement and bias."""
        try:
            if self.sample.height == 0:
                self.sample = self._pick_sample()
            judgments = self.judgments()
        except Exception as err:
            self._fail(f"cannot read the run: {err}")
            return
        names = version_labels(judgments) if judgments.height else {}
        self.same_score_note.value = same_score_note(judgments, self.rubric.version)
        self.chart.chart = self._chart_spec(score_histogram(judgments, self.rubric.scale), names)
        everything = judgments_in(self.session.store)
        all_names = version_labels(everything) if everything.height else {}
        self.parse_table.value = self._parse_html(parse_counts(everything), all_names) + self._flip_html(
            everything, all_names
        )
        self.labeler.show(self.sample, judgments, self.rubric.scale)
        self.pair_labeler.show(self._sample_pairs())
        self._update_preview()
        self._update_agreement()
        self.lab.refresh()

    def _sample_pairs(self) -> pl.DataFrame:
        """The sample's answers paired by prompt (what pairwise judging and pair labels use)."""
        if self.sample.height == 0 or "parent_id" not in self.sample.columns:
            return pl.DataFrame()
        return pairs_within_groups(self.sample)

    def _update_agreement(self) -> None:
        judgments = judgments_in(self.session.store)  # absolute and pairwise: bias covers both
        if judgments.height == 0:
            self.agreement.value = "<i>No judgments yet.</i>"
            return
        names = version_labels(judgments)
        labels = self.session.store.label_values("human_score")
        parts = [self.same_score_note.value] if self.same_score_note.value else []
        if labels:
            agr = score_agreement(judgments, labels, scale=self.rubric.scale, n_boot=500)
            parts.append("<h4>Agreement with your labels</h4>" + self._metric_html(agr, names))
        else:
            parts.append("<i>Label some rows (Label tab) to measure agreement.</i>")
        prefs = self.session.store.label_values("human_pref")
        if prefs and judgments.filter(pl.col("judge_kind") == "pairwise").height:
            agr = preference_agreement(judgments, prefs, n_boot=500)
            parts.append("<h4>Pairwise agreement with your preferences</h4>" + self._metric_html(agr, names))
        parts.append("<h4>Bias</h4>" + self._metric_html(bias_report(judgments, n_boot=500), names))
        self.agreement.value = "".join(parts)

    @staticmethod
    def _metric_html(df: pl.DataFrame, names: dict[str, str]) -> str:
        return metric_table(df, names)

    @staticmethod
    def _parse_html(df: pl.DataFrame, names: dict[str, str]) -> str:
        if df.height == 0:
            return ""
        rows = "".join(
            f"<tr><td>{html.escape(names.get(r['rubric_version'], r['rubric_version']))}</td><td>{r['n']}</td>"
            f"<td>{r['parsed']}</td><td>{r['failed']}</td><td>{r['truncated']}</td></tr>"
            for r in df.iter_rows(named=True)
        )
        head = (
            "<tr><th>version</th><th>judged</th><th>parsed</th><th>parse failures</th><th>truncated</th></tr>"
        )
        return f"<table class='wb-judge-parse'>{head}{rows}</table>"

    @staticmethod
    def _flip_html(judgments: pl.DataFrame, names: dict[str, str]) -> str:
        if judgments.filter(pl.col("judge_kind") == "pairwise").height == 0:
            return ""

        def fmt(x: float | None) -> str:
            return "n/a" if x is None or x != x else f"{x:.2f}"

        rows = "".join(
            f"<tr><td>{html.escape(names.get(r['rubric_version'], r['rubric_version']))}</td><td>{r['pairs']}</td>"
            f"<td>{r['both_parsed']}</td><td>{r['flips']}</td><td>{fmt(r['flip_rate'])}</td>"
            f"<td>{fmt(r['first_position_rate'])}</td><td>{r['ties']}</td></tr>"
            for r in flip_rates(judgments).iter_rows(named=True)
        )
        head = ("<tr><th>version</th><th>pairs</th><th>both orders parsed</th><th>flips</th><th>flip rate</th>"
                "<th>first-position rate</th><th>ties</th></tr>")  # fmt: skip
        return f"<h4>Pairwise position bias</h4><table class='wb-judge-flips'>{head}{rows}</table>"

    @staticmethod
    def _chart_spec(hist: pl.DataFrame, names: dict[str, str]) -> alt.Chart:
        if hist.height:
            data = hist.with_columns(
                pl.col("rubric_version")
                .replace_strict(names, default=pl.col("rubric_version"))
                .alias("version")
            ).to_dicts()
        else:
            data = [{"version": "(none yet)", "score": 0, "count": 0, "share": 0.0, "mean_probability": 0.0}]
        return (
            alt.Chart(alt.Data(values=data), title="Scores per rubric version")
            .mark_bar()
            .encode(
                x=alt.X("score:O", title="score"),
                xOffset="version:N",
                y=alt.Y("share:Q", title="share of parsed judgments", axis=alt.Axis(format="%")),
                color=alt.Color("version:N", title="rubric version"),
                tooltip=["version:N", "score:O", "count:Q", alt.Tooltip("share:Q", format=".0%"),
                         alt.Tooltip("mean_probability:Q", format=".2f", title="mean P(score)")],
            )
            .properties(width=360, height=200)
        )  # fmt: skip
