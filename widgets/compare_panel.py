"""Compare runs: two runs of the runs folder (or two models' rows inside one run), side by side.

The diff is `workbench.runs.query.diff_runs` over rows matched on a column (the prompt, by default):
for each prompt, side A's text next to side B's, how similar they are, and prompts only one side has,
marked. Below it, each side's diversity metrics with the interval of their difference
(`workbench.metrics.compare_runs`, both sides cut to one budget), computed in a worker thread since
self-BLEU over a few hundred rows takes a while.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.metric_tables import metrics_html
from widgets.ui import row, tip
from workbench.engine import Progress
from workbench.jobs import Job
from workbench.metrics import compare_runs
from workbench.runs import RunStore
from workbench.runs.query import diff_runs, facet_values
from workbench.session import Session

__all__ = ["ComparePanel", "diff_table_html"]

ALL = "(all)"
SHOWS = [
    ("every prompt", "all"),
    ("prompts whose texts differ", "changed"),
    ("prompts only in A", "only_a"),
    ("prompts only in B", "only_b"),
]
MATCH_COLUMNS = ("prompt", "instruction", "input", "parent_id")
SKIP_TEXT = {"id", "parent_id", "params", "stage", "status", "model", "model_sha", "created_at", "reason",
             "attributes", "prompt"}  # fmt: skip
CLIP = 700  # characters of a text shown in a cell; the inspector shows the whole row


def _clip(text: str | None) -> str:
    if text is None:
        return ""
    return html.escape(text if len(text) <= CLIP else text[:CLIP] + " …")


def diff_table_html(diff: pl.DataFrame, on: str, label_a: str, label_b: str) -> str:
    """The rows of a `diff_runs` frame as a table: the matched value, A's and B's first texts side by
    side (with how many samples each has), their similarity; a side without the prompt is marked."""
    head = (
        f"<tr><th>{html.escape(on)}</th><th>A: {html.escape(label_a)}</th>"
        f"<th>B: {html.escape(label_b)}</th><th title='rapidfuzz ratio of the first texts (1 = identical)'>"
        "similarity</th></tr>"
    )
    body = []
    for r in diff.iter_rows(named=True):
        cells = []
        for side, other in (("a", "B"), ("b", "A")):
            if r[f"n_{side}"] is None:
                cells.append(f"<td class='wb-only-{'b' if side == 'a' else 'a'}'><i>only in {other}</i></td>")
                continue
            more = r[f"n_{side}"] - 1
            extra = f"<br><small>(+{more} more sample{'s' if more > 1 else ''})</small>" if more > 0 else ""
            cells.append(f"<td style='white-space:pre-wrap'>{_clip(r[f'text_{side}'])}{extra}</td>")
        sim = "–" if r["similarity"] is None else f"{r['similarity']:.2f}"
        body.append(
            f"<tr class='wb-diff-{r['presence']}'><td style='white-space:pre-wrap'>{_clip(str(r[on]))}</td>"
            f"{''.join(cells)}<td>{sim}</td></tr>"
        )
    return (
        "<div style='overflow-x:auto'><table class='wb-compare-diff' style='table-layout:fixed;width:100%'>"
        "<colgroup><col style='width:22%'><col style='width:34%'><col style='width:34%'>"
        "<col style='width:10%'></colgroup>"
        f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


class ComparePanel(JobControlsMixin, W.VBox):
    """Pick two runs (or two models of one run), see their texts side by side and their metrics.

    `refresh()` re-reads the runs folder and the picked runs' stages, columns and models; `diff()`
    recomputes the side-by-side table (the Diff button); `run()` computes the metrics (the Compute
    button) in a worker thread.
    """

    failure_prefix = "metrics failed"

    def __init__(
        self, session: Session, *, page_size: int = 10, budget: int = 300, n_boot: int = 300
    ) -> None:
        self.session, self.page_size, self.n_boot = session, page_size, n_boot
        self.job: Job | None = None
        self.diff_frame: pl.DataFrame | None = None
        self.metrics: pl.DataFrame | None = None
        self.page = 0
        self._labels = ("A", "B")
        self._syncing = False
        self.mode = tip(W.ToggleButtons(options=[("two runs", "runs"), ("two models in one run", "models")],
                                        value="runs", description="compare"),
                        "Compare two runs of the runs folder, or two models' rows inside one run.")  # fmt: skip
        self.mode.style.button_width = "auto"
        self.run_a = tip(W.Dropdown(description="run A"), "The first run (side A).")
        self.run_b = tip(W.Dropdown(description="run B"), "The second run (side B), when comparing two runs.")
        self.model_a = tip(W.Dropdown(description="model A"), "The model whose rows form side A.")
        self.model_b = tip(W.Dropdown(description="model B"), "The model whose rows form side B.")
        self.stage = tip(W.Dropdown(description="stage"), "Which kind of rows to compare, such as answers or instructions.")
        self.on = tip(W.Dropdown(description="match on"), "The column that pairs a row of A with a row of B.")
        self.text = tip(
            W.Dropdown(description="text column"), "The column whose texts are shown and measured."
        )
        self.show = tip(W.Dropdown(options=SHOWS, value="all", description="show"),
                        "Which prompts the table lists.")  # fmt: skip
        self.diff_button = tip(W.Button(description="Diff", icon="columns", button_style="primary"),
                               "Match the two sides' rows and show their texts side by side.")  # fmt: skip
        self.prev_button = tip(W.Button(description="Previous", icon="arrow-left"), "Show the previous page.")
        self.next_button = tip(W.Button(description="Next", icon="arrow-right"), "Show the next page.")
        self.budget = tip(W.BoundedIntText(value=budget, min=2, max=100_000, description="rows per side"),
                          "Both sides are cut (seeded) to this many rows, or to the smaller side, before measuring.")  # fmt: skip
        self._make_job_controls(
            "compare", "Compute metrics", "calculator",
            "Measure both sides' diversity on one budget, with the interval of each difference.",
            "Stop waiting for the metrics; nothing is shown from them.",
        )  # fmt: skip
        self.summary, self.page_label, self.error = W.HTML(), W.HTML(), W.HTML()
        self.table, self.metrics_table = W.HTML(), W.HTML()
        self.models_row = row([self.model_a, self.model_b])
        self.runs_row = row([self.run_a, self.run_b])
        self.diff_button.on_click(lambda _b: self.diff())
        self.prev_button.on_click(lambda _b: self.set_page(self.page - 1))
        self.next_button.on_click(lambda _b: self.set_page(self.page + 1))
        self.show.observe(lambda _c: self.set_page(0), names="value")
        for control in (self.mode, self.run_a, self.run_b):
            control.observe(self._on_source, names="value")
        super().__init__(
            [
                row([self.mode]), self.runs_row, self.models_row,
                row([self.stage, self.on, self.text, self.diff_button]),
                self.error, self.summary, row([self.show, self.prev_button, self.next_button, self.page_label]),
                self.table,
                W.HTML("<b>Diversity of each side</b> (interval of the difference A − B: jackknife, 95%)"),
                row([self.budget, self.run_button, self.stop_button, self.progress, self.progress_label]),
                self.metrics_table,
            ]
        )  # fmt: skip
        self.add_class("wb-compare")
        session.subscribe(self._on_session_event)
        self.refresh()

    # -- options -------------------------------------------------------------------------------
    def run_names(self) -> list[str]:
        """Run directories in the session's runs folder (those with a manifest), sorted."""
        root = Path(self.session.runs_root)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists())

    def _rows(self, name: str) -> pl.DataFrame:
        if not name:
            return pl.DataFrame()
        if name == self.session.run_name:
            return self.session.store.rows()
        return RunStore.open(Path(self.session.runs_root) / name).rows()

    @staticmethod
    def _offer(dropdown: W.Dropdown, options: list[Any], default: Any) -> None:
        keep = dropdown.value
        if list(dropdown.options) != options:
            dropdown.options = options
        dropdown.value = (
            keep if keep in options else (default if default in options else (options or [None])[0])
        )

    def refresh(self) -> None:
        """Re-read the runs folder and offer the picked runs' stages, match columns, text columns, models."""
        self._syncing = True
        try:
            self._sync()
        except Exception as err:
            self._fail(f"cannot read the runs: {err}")
        finally:
            self._syncing = False

    def _sync(self) -> None:
        names = self.run_names()
        self._offer(self.run_a, names, self.session.run_name)
        others = [n for n in names if n != self.run_a.value]
        self._offer(self.run_b, names, others[0] if others else self.run_a.value)
        models_mode = self.mode.value == "models"
        self.runs_row.children = [self.run_a] if models_mode else [self.run_a, self.run_b]
        self.models_row.layout.display = None if models_mode else "none"
        a = self._rows(self.run_a.value)
        frames = [a] if models_mode else [a, self._rows(self.run_b.value)]
        models = facet_values(a, "model")
        self._offer(self.model_a, models, models[0] if models else None)
        self._offer(self.model_b, models, models[1] if len(models) > 1 else None)
        common = (
            set.intersection(*(set(f.columns) for f in frames)) if all(f.width for f in frames) else set()
        )
        stages = sorted(set().union(*(facet_values(f, "stage") for f in frames)))
        self._offer(
            self.stage, [*stages, ALL], "completion" if "completion" in stages else (stages or [ALL])[0]
        )
        self._offer(self.on, [c for c in MATCH_COLUMNS if c in common], "prompt")
        texts = sorted(
            c for c in common if c not in SKIP_TEXT and all(f.schema[c] == pl.Utf8 for f in frames)
        )
        self._offer(self.text, texts, "text")

    def _on_source(self, _change: dict[str, Any]) -> None:
        if not self._syncing:
            self.refresh()

    def _on_session_event(self, what: str) -> None:
        if what == "run":
            self.refresh()

    # -- the two sides -------------------------------------------------------------------------
    def sides(self) -> tuple[tuple[str, pl.DataFrame], tuple[str, pl.DataFrame]]:
        """(label, rows) of side A and side B: the picked stage, rows with text in the text column."""
        if not self.text.value or not self.on.value:
            raise ValueError("the two sides share no text column or no column to match on (prompt, ...)")
        if self.mode.value == "models":
            if not self.model_a.value or self.model_a.value == self.model_b.value:
                raise ValueError("pick two different models (this run's rows name their model in 'model')")
            rows = self._rows(self.run_a.value)
            sides = [
                (str(m), rows.filter(pl.col("model") == m)) for m in (self.model_a.value, self.model_b.value)
            ]
        else:
            if not self.run_a.value or self.run_a.value == self.run_b.value:
                raise ValueError("pick two different runs (there is one run in the runs folder?)")
            sides = [(n, self._rows(n)) for n in (self.run_a.value, self.run_b.value)]
        col = self.text.value
        out = []
        for label, frame in sides:
            if self.stage.value != ALL and "stage" in frame.columns:
                frame = frame.filter(pl.col("stage") == self.stage.value)
            out.append(
                (label, frame.filter(pl.col(col).is_not_null() & (pl.col(col).str.strip_chars() != "")))
            )
        return out[0], out[1]

    # -- diff ----------------------------------------------------------------------------------
    def diff(self) -> pl.DataFrame | None:
        """Match the two sides and show the first page of the side-by-side table."""
        self.error.value = ""
        try:
            (la, a), (lb, b) = self.sides()
            self.diff_frame = diff_runs(a, b, on=self.on.value, text=self.text.value)
        except Exception as err:
            self.diff_frame = None
            self.table.value = self.summary.value = ""
            self._fail(str(err))
            return None
        self._labels = (la, lb)
        counts = dict(self.diff_frame.group_by("presence").len().iter_rows())
        changed = int(self.diff_frame.filter(pl.col("presence") == "both")["changed"].sum())
        self.summary.value = html.escape(
            f"{counts.get('both', 0)} prompts in both ({changed} with different texts), "
            f"{counts.get('only_a', 0)} only in A ({la}), {counts.get('only_b', 0)} only in B ({lb}); "
            "most different first"
        )
        self.set_page(0)
        return self.diff_frame

    def shown(self) -> pl.DataFrame:
        """The diff rows the `show` choice keeps."""
        if self.diff_frame is None:
            return pl.DataFrame()
        how = self.show.value
        if how == "changed":
            return self.diff_frame.filter(pl.col("changed"))
        if how in ("only_a", "only_b"):
            return self.diff_frame.filter(pl.col("presence") == how)
        return self.diff_frame

    def set_page(self, number: int) -> None:
        rows = self.shown()
        pages = max(1, -(-rows.height // self.page_size))
        self.page = max(0, min(number, pages - 1))
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= pages - 1
        if self.diff_frame is None:
            self.page_label.value = ""
            return
        self.page_label.value = f"page {self.page + 1} of {pages} ({rows.height} prompts)"
        part = rows.slice(self.page * self.page_size, self.page_size)
        self.table.value = diff_table_html(part, self.on.value, *self._labels) if part.height else (
            "<i>no prompts of this kind</i>"
        )  # fmt: skip

    # -- metrics (a job) -----------------------------------------------------------------------
    def run(self) -> Job | None:
        """Measure both sides on one budget (the smaller side or `rows per side`) in a worker thread."""
        if self._job_busy():
            return self.job
        self.error.value = ""
        try:
            (la, a), (lb, b) = self.sides()
        except ValueError as err:
            self._cannot_start(str(err))
            return None
        if min(a.height, b.height) < 2:
            self._cannot_start(
                f"each side needs at least 2 rows with text ({la}: {a.height}, {lb}: {b.height})"
            )
            return None
        budget, col = min(self.budget.value, a.height, b.height), self.text.value

        def work(report: Callable[[Progress], None], cancel: threading.Event) -> pl.DataFrame | None:
            return self._measure(a, b, col, budget, (la, lb), report, cancel)

        return self._launch(Job(work, name="compare-metrics"), f"measuring {budget} rows per side…")

    def _measure(
        self, a: pl.DataFrame, b: pl.DataFrame, col: str, budget: int, names: tuple[str, str],
        report: Callable[[Progress], None], cancel: threading.Event,
    ) -> pl.DataFrame | None:  # fmt: skip
        t0 = time.monotonic()
        report(Progress(0, 2 * budget, 0, 0.0))
        # compare_runs cannot stop halfway; a Stop discards what it returns
        table = compare_runs(a, b, col, budget=budget, names=names, n_boot=self.n_boot)
        if cancel.is_set():
            return None
        report(Progress(2 * budget, 2 * budget, 0, time.monotonic() - t0))
        self.metrics = table
        return table

    def _after_progress(self, p: Progress) -> None:
        self.progress_label.value = "measuring…" if p.rows_done < p.rows_total else "formatting…"

    def _after_done(self, job: Job) -> None:
        if job.state == "cancelled":
            self.progress_label.value = "stopped: the metrics were not shown (Compute starts again)"
        elif job.state == "done" and self.metrics is not None:
            size = int(self.metrics["n_rows"].cast(pl.Int64).max() or 0)  # type: ignore[arg-type]
            self.progress_label.value = html.escape(f"done · {size} rows per side")
            self.metrics_table.value = metrics_html(self.metrics, "set")

    def _fail(self, message: str) -> None:
        full = f"Compare runs: {message}"
        self.error.value = f"<span class='wb-error'>{html.escape(full)}</span>"
        self.session.report_error(full)
