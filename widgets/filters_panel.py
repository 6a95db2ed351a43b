"""The Filters tab: every filter over the rows already generated, with why each row was dropped.

A thin view over `workbench.filters.apply`: the cheap thresholds (length, keywords, ROUGE-L to the seeds,
near duplicates, decontamination against a benchmark file) re-filter the run's rows as they change, with
no model call; IFD needs the model, so it is scored only on Run (a `Job` worker thread that writes IFD
rows to the run), and its threshold then filters live like the others. Apply records the decisions as
filter rows (`record_filter_drops`): the Inspector, Export and later steps read the drops through
`with_filter_drops`, and no generated row is deleted. Each Apply is also a recipe `filters` step
(`workbench.pipeline.filter_step`, the same functions), which the app logs for Save recipe.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.ui import error_html, row, tips
from workbench.filters import (
    DEFAULT_BLACKLIST,
    Benchmark,
    FilterResult,
    FilterSettings,
    IFDConfig,
    apply_filters,
    load_benchmark,
    record_filter_drops,
    run_ifd,
    with_filter_drops,
)
from workbench.generate.seeds import default_seeds
from workbench.jobs import Job
from workbench.pipeline.filter_step import FiltersStep, filter_frame, reference_texts
from workbench.pipeline.hygiene_steps import BenchmarkSource
from workbench.pipeline.recipe import IFDStep, Recipe
from workbench.pipeline.runner import step_inputs
from workbench.session import Session

__all__ = ["FilterPanel", "filter_frame", "reference_texts"]

STAGES = (("instructions", "instruction"), ("answers", "completion"))
FILTER_NAMES = {"length": "length", "keywords": "keywords", "ifd": "IFD", "rouge_l": "ROUGE-L to seeds",
                "decontam": "decontamination", "near_dup": "near duplicates"}  # fmt: skip


_STYLE = (
    "<style>.wb-filters table{border-collapse:collapse}.wb-filters th,.wb-filters td{padding:2px 10px;"
    "text-align:left;vertical-align:top}.wb-filters tr:nth-child(even) td{background:#f6f6f6}</style>"
)


def _split_words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.replace("\n", ",").split(",") if w.strip())


class FilterPanel(JobControlsMixin, W.VBox):
    """Pick the stage and the thresholds; see counts per filter and every dropped row with its reason;
    Score IFD with the model; Apply records the drops in the run."""

    failure_prefix = "IFD scoring failed"

    def __init__(
        self,
        session: Session,
        *,
        seeds: Callable[[], pl.DataFrame] | None = None,
        table_rows: int = 50,
    ) -> None:
        self.session = session
        self.seeds = seeds or default_seeds
        self.table_rows = table_rows
        self.job: Job | None = None
        self.rows: pl.DataFrame = pl.DataFrame()
        self.result: FilterResult | None = None
        self._bench_key: tuple[str, str, float] | None = None
        self._bench: Benchmark | None = None
        self._applied: list[Callable[[FiltersStep], object]] = []
        lay = W.Layout(width="auto")
        self.stage = W.Dropdown(options=STAGES, value="instruction", description="rows")
        self.use_length = W.Checkbox(True, description="length", indent=False, layout=lay)
        self.min_words = W.BoundedIntText(
            4, min=0, max=100_000, description="min words", layout=W.Layout(width="170px")
        )
        self.max_words = W.BoundedIntText(
            150, min=1, max=100_000, description="max words", layout=W.Layout(width="170px")
        )
        self.use_keywords = W.Checkbox(True, description="keywords", indent=False, layout=lay)
        self.blocklist = W.Text(", ".join(DEFAULT_BLACKLIST), description="blocked words", continuous_update=False,
                                layout=W.Layout(width="520px", max_width="100%"))  # fmt: skip
        self.use_rouge = W.Checkbox(False, description="ROUGE-L to seeds", indent=False, layout=lay)
        self.rouge_max = W.FloatSlider(0.7, min=0.0, max=1.0, step=0.01, description="drop above",
                                      continuous_update=False)  # fmt: skip
        self.use_near_dup = W.Checkbox(True, description="near duplicates", indent=False, layout=lay)
        self.near_dup = W.FloatSlider(
            0.7, min=0.05, max=1.0, step=0.01, description="drop at or above", continuous_update=False
        )  # on release: 20k rows re-filter in ~2.6 s
        self.use_decontam = W.Checkbox(False, description="decontamination", indent=False, layout=lay)
        self.bench_path = W.Text("", description="benchmark file", placeholder="test.jsonl / .json / .parquet / .csv",
                                 continuous_update=False, layout=W.Layout(width="420px", max_width="100%"))  # fmt: skip
        self.bench_column = W.Text("text", description="text column", continuous_update=False,
                                   layout=W.Layout(width="200px"))  # fmt: skip
        self.ngram = W.BoundedIntText(
            13, min=1, max=64, description="n-gram words", layout=W.Layout(width="170px")
        )
        self.use_ifd = W.Checkbox(False, description="IFD", indent=False, layout=lay)
        self.max_ifd = W.BoundedFloatText(1.0, min=0.01, max=1000.0, step=0.05, description="drop at or above IFD",
                                          layout=W.Layout(width="230px"))  # fmt: skip
        self._make_job_controls(
            "filters-ifd", "Score IFD", "calculator",
            "Score each kept answer's IFD with the model (written to the run, resumable).",
            "Stop after the batch in flight; scores already made stay in the run.",
        )  # fmt: skip
        self.apply_button = W.Button(description="Apply to run", icon="check", button_style="warning")
        self.apply_button.add_class("wb-filters-apply")
        tips((
            (self.stage, "Which rows to filter: the instructions or the answers to them."),
            (self.use_length, "Drop rows with too few or too many words."),
            (self.min_words, "Rows with fewer words than this are dropped."),
            (self.max_words, "Rows with more words than this are dropped."),
            (self.use_keywords, "Drop rows that mention a blocked word."),
            (self.blocklist, "Comma-separated words or phrases whose presence drops a row (whole words, any case)."),
            (self.use_rouge, "Drop rows that copy a seed task (answers: a seed's example output) too closely."),
            (self.rouge_max, "Drop a row whose ROUGE-L overlap with its closest seed is above this."),
            (self.use_near_dup, "Drop rows that nearly repeat an earlier kept row of the same stage."),
            (self.near_dup, "Drop a row whose ROUGE-L overlap with an earlier kept row reaches this."),
            (self.use_decontam, "Drop rows that share a long word sequence with a benchmark's test items."),
            (self.bench_path, "Path of the benchmark's test items: a .jsonl, .json, .parquet or .csv file."),
            (self.bench_column, "The benchmark file's column that holds each item's text."),
            (self.ngram, "How many words in a row a row must share with an item to count as contaminated."),
            (self.use_ifd, "Drop answers whose instruction does not help predict them (needs Score IFD first)."),
            (self.max_ifd, "Drop answers whose IFD score is at or above this (1 means the instruction does not help)."),
            (self.apply_button, "Record these drops in the run so the Inspector and Export see them (nothing is deleted)."),
        ))  # fmt: skip
        self.counts = W.HTML()
        self.counts.add_class("wb-filters-counts")
        self.summary = W.HTML()
        self.summary.add_class("wb-filters-summary")
        self.dropped_table = W.HTML()
        self.dropped_table.add_class("wb-filters-dropped")
        self.apply_status = W.HTML()
        self.apply_status.add_class("wb-filters-apply-status")
        self.error = W.HTML()
        self._ifd_box = row(
            [
                self.use_ifd,
                self.max_ifd,
                self.run_button,
                self.stop_button,
                self.progress,
                self.progress_label,
            ]
        )
        for control in (self.stage, self.use_length, self.min_words, self.max_words, self.use_keywords, self.blocklist,
                        self.use_rouge, self.rouge_max, self.use_near_dup, self.near_dup, self.use_decontam,
                        self.bench_path, self.bench_column, self.ngram, self.use_ifd, self.max_ifd):  # fmt: skip
            control.observe(self._on_change, names="value")
        self.stage.observe(lambda _c: self.refresh(), names="value")
        self.apply_button.on_click(lambda _b: self.apply())
        session.subscribe(self._on_session)
        super().__init__([
            W.HTML(_STYLE + "<b>Filters</b>: re-filter the rows already generated; every dropped row says why. "
                   "<b>Apply to run</b> records the drops (no row is deleted)."),
            row([self.stage]),
            row([self.use_length, self.min_words, self.max_words]),
            row([self.use_keywords, self.blocklist]),
            row([self.use_rouge, self.rouge_max]),
            row([self.use_near_dup, self.near_dup]),
            row([self.use_decontam, self.bench_path, self.bench_column, self.ngram]),
            self._ifd_box,
            row([self.apply_button, self.apply_status]),
            self.error, self.summary, self.counts, self.dropped_table,
        ])  # fmt: skip
        self.add_class("wb-filters")
        self.refresh()

    # -- settings ----------------------------------------------------------------------------------
    def settings(self) -> FilterSettings:
        """The thresholds the controls describe (off filters are None)."""
        return FilterSettings(
            stage=self.stage.value,
            min_words=self.min_words.value if self.use_length.value else None,
            max_words=self.max_words.value if self.use_length.value else None,
            blocklist=_split_words(self.blocklist.value) if self.use_keywords.value else (),
            max_ifd=self.max_ifd.value if self.use_ifd.value else None,
            rouge_l_max=self.rouge_max.value if self.use_rouge.value else None,
            near_dup=self.near_dup.value if self.use_near_dup.value else None,
            decontam_n=self.ngram.value,
        )

    def benchmark(self) -> Benchmark | None:
        """The benchmark file's items (read once per path, column and file change), or None when off."""
        path = self.bench_path.value.strip()
        if not self.use_decontam.value:
            return None
        if not path:
            raise ValueError("decontamination is on but no benchmark file is given: type its path")
        p = Path(os.path.expanduser(path))
        if not p.exists():
            raise ValueError(f"benchmark file {p} does not exist: check the path")
        key = (str(p.resolve()), self.bench_column.value.strip(), p.stat().st_mtime)
        if key != self._bench_key:
            self._bench = load_benchmark(p, text_column=key[1] or "text")
            self._bench_key = key
        return self._bench

    def step(self) -> FiltersStep:
        """The recipe step an Apply with the current controls is (what the CLI runs to record the same drops)."""
        settings = self.settings()
        bench = self.benchmark()
        source = None
        if bench is not None:
            path = str(Path(os.path.expanduser(self.bench_path.value.strip())).resolve())
            source = BenchmarkSource(source=path, text_columns=[self.bench_column.value.strip() or "text"],
                                     name=bench.name)  # fmt: skip
        return FiltersStep(settings=settings, rouge_l_to="seeds" if settings.rouge_l_max is not None else None,
                           benchmark=source)  # fmt: skip

    def on_applied(self, callback: Callable[[FiltersStep], object]) -> None:
        """Call `callback(step)` after each Apply that recorded decisions (the app logs it for Save recipe)."""
        self._applied.append(callback)

    # -- views -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the stage's rows from the run (as generated, with IFD scores) and re-filter them."""
        try:
            self.rows = filter_frame(self.session.store.rows(), self.stage.value)
        except Exception as err:
            self._fail(f"cannot read the run: {err}")
            return
        self.update()

    def update(self) -> FilterResult | None:
        """Re-apply the thresholds to the rows already read (no model call) and redraw."""
        self.error.value = ""
        try:
            seeds = self.seeds()
            refs = reference_texts(seeds, self.stage.value) if self.use_rouge.value else None
            self.result = apply_filters(
                self.rows, self.settings(), references=refs, benchmark=self.benchmark()
            )
        except Exception as err:
            self.result = None
            self.error.value = error_html(f"Filters: {err}")
            self.counts.value = self.dropped_table.value = self.summary.value = ""
            return None
        self._draw(self.result)
        return self.result

    def _draw(self, res: FilterResult) -> None:
        stage = dict((v, k) for k, v in STAGES)[self.stage.value]
        notes = []
        if res.skipped:
            notes.append(f"{res.skipped} dropped when generated (not re-filtered)")
        if res.not_scored:
            notes.append(f"{res.not_scored} without an IFD score (kept: press Score IFD)")
        self.summary.value = (
            f"<b>{res.kept}</b> kept · <b>{res.dropped.height}</b> dropped of {res.evaluated} {stage}"
            + (f" · {'; '.join(notes)}" if notes else "")
            + f" · {self._applied_note()}"
        )
        head = "<tr><th>filter</th><th>setting</th><th>checked</th><th>dropped</th></tr>"
        body = "".join(
            f"<tr data-filter='{r['filter']}'><td>{FILTER_NAMES[r['filter']]}</td><td>{html.escape(r['setting'])}</td>"
            f"<td>{r['checked']}</td><td class='wb-filters-n'>{r['dropped']}</td></tr>"
            for r in res.counts.iter_rows(named=True)
        )
        self.counts.value = f"<table class='wb-filters-counts-table'>{head}{body}</table>"
        dropped = res.dropped
        if dropped.height == 0:
            self.dropped_table.value = f"<i>No {stage} dropped at these thresholds.</i>"
            return
        head = "<tr><th>row</th><th>text</th><th>filter</th><th>reason</th><th>why</th></tr>"
        body = "".join(
            f"<tr><td title='{html.escape(r['id'])}'>{html.escape(r['id'][:8])}</td>"
            f"<td>{html.escape((r['text'] or '')[:160])}</td><td>{FILTER_NAMES[r['filter']]}</td>"
            f"<td>{html.escape(r['reason'] or '')}</td><td>{html.escape(r['detail'] or '')}</td></tr>"
            for r in dropped.head(self.table_rows).iter_rows(named=True)
        )
        more = (
            f"<br><small>showing {self.table_rows} of {dropped.height} dropped rows</small>"
            if dropped.height > self.table_rows
            else ""
        )
        self.dropped_table.value = f"<table class='wb-filters-dropped-table'>{head}{body}</table>{more}"

    def _applied_note(self) -> str:
        """How many of this stage's rows an earlier Apply dropped (what the Inspector and Export see now)."""
        view = with_filter_drops(self.session.store.rows())
        if view.height == 0 or "stage" not in view.columns:
            return "nothing applied yet"
        stage_rows = view.filter(pl.col("stage") == self.stage.value)
        raw = self.rows.select("id", pl.col("status").fill_null("kept").alias("__raw"))
        n = (
            stage_rows.join(raw, on="id")
            .filter((pl.col("__raw") == "kept") & (pl.col("status") == "dropped"))
            .height
        )
        return f"{n} dropped in the run by Apply"

    # -- actions -----------------------------------------------------------------------------------
    def apply(self) -> int | None:
        """Record the current decisions in the run (filter rows); returns how many rows were written."""
        res = self.update()
        if res is None:
            return None
        try:
            step = self.step()
            written = record_filter_drops(self.session.store, res)
        except Exception as err:
            self._fail(f"cannot record the drops: {err}")
            return None
        try:
            for callback in self._applied:
                callback(step)
        except Exception as err:  # the drops are recorded; only the recipe's log missed this Apply
            self._fail(f"the drops are recorded, but logging this Apply for Save recipe failed: {err}")
        self.apply_status.value = html.escape(
            f"recorded {written} decision{'s' if written != 1 else ''} in the run"
            if written
            else "the run already has these decisions"
        )
        self.session.notify_rows_changed()  # this panel redraws through its own session event
        return written

    def run(self) -> Job | None:
        """Score IFD of the kept answers with the session's model in a worker thread."""
        if self._job_busy():
            self._fail("IFD is already being scored: press Stop first")
            return None
        try:
            if self.stage.value != "completion":
                raise ValueError("IFD scores an answer given its instruction: set rows to answers above")
            # the kept answers after earlier Applies, as a recipe's ifd step reads them (same rows, same ids)
            step = IFDStep(rows_from="completions")
            frame = step_inputs(step, Recipe(name="workbench", steps=[step]), self.session.store)
            if frame.height == 0:
                raise ValueError("the run has no kept answers yet: generate answers first")
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.error.value = ""

        def work(report: Any, cancel: Any) -> pl.DataFrame:
            return run_ifd(backend, store, frame, IFDConfig(), on_progress=report, cancel=cancel)

        return self._launch(Job(work, name="ifd"), "scoring IFD…")

    def _after_done(self, job: Job) -> None:
        self.session.notify_rows_changed()  # the panel refreshes through its own session event

    def _fail(self, message: str) -> None:
        full = f"Filters: {message}"
        self.error.value = error_html(full)
        self.session.report_error(full)

    def _on_change(self, change: dict[str, Any]) -> None:
        if change["owner"] is not self.stage:  # the stage re-reads rows, then updates
            self.update()

    def _on_session(self, what: str) -> None:
        if what in ("rows", "run"):
            self.refresh()


