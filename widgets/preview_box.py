"""A Preview button for a generating step: a handful of real rows in seconds and the full run's time.

The panel gives a function that returns a `workbench.pipeline.preview.Preview`; the box runs it in a worker
thread (a `Job`: the thread only sets widget values), then shows the preview's rows (prompt and text) and the
estimate, sub-step by sub-step. Nothing is written to the run: a preview works in a throwaway directory.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.ui import tip
from workbench.jobs import Job
from workbench.pipeline.preview import Preview

__all__ = ["PreviewBox", "preview_table"]

_SHOWN = ("instruction", "prompt_text", "text", "score", "pair_order", "verdict", "status", "reason")
"""The columns a preview row shows when it has them (pairwise judgments: the order shown and the verdict)."""


def preview_table(rows: pl.DataFrame, limit: int = 6, width: int = 160) -> str:
    """The preview's rows as a small HTML table of the columns a person checks (cut to `width` chars)."""
    if rows.height == 0:
        return "<i>The preview made no rows.</i>"
    cols = [c for c in _SHOWN if c in rows.columns and c != "prompt_text"] or rows.columns[:4]
    cells = []
    for r in rows.head(limit).iter_rows(named=True):
        tds = "".join(
            f"<td style='padding:2px 6px;vertical-align:top'>{html.escape(str(r[c] if r[c] is not None else '')[:width])}</td>"
            for c in cols
        )
        cells.append(f"<tr>{tds}</tr>")
    head = "".join(f"<th style='text-align:left;padding:2px 6px'>{html.escape(c)}</th>" for c in cols)
    more = f"<div><small>{rows.height - limit} more rows not shown</small></div>" if rows.height > limit else ""
    return f"<table class='wb-preview-table'><tr>{head}</tr>{''.join(cells)}</table>{more}"


class PreviewBox(W.VBox):
    """Preview button + what the preview made + the estimate of a full run."""

    def __init__(self, name: str, make: Callable[[], Callable[[], Preview]], *, what: str) -> None:
        """`make()` is called on the kernel thread (read the panel's knobs there) and returns the work
        to run in the worker; an exception from it is shown as the preview's error."""
        self._make = make
        self.job: Job | None = None
        self.last: Preview | None = None
        self.button = tip(W.Button(description="Preview", icon="eye"),
                          f"Run {what} on a handful of rows (not saved) and estimate a full run's time.")  # fmt: skip
        self.button.add_class(f"wb-{name}-preview")
        self.estimate = W.HTML()
        self.estimate.add_class(f"wb-{name}-estimate")
        self.rows = W.HTML()
        self.button.on_click(lambda _b: self.start())
        super().__init__([self.estimate, self.rows], layout={"width": "100%"})
        self.add_class("wb-preview")

    def start(self) -> Job | None:
        if self.job is not None and self.job.running:
            return None
        try:
            work = self._make()
        except Exception as err:
            self._show_error(str(err))
            return None

        def run(_report: Any, _cancel: Any) -> Preview:
            return work()

        self.button.disabled = True
        self.estimate.value = "<i>previewing… (the first preview also measures this machine's speed)</i>"
        self.rows.value = ""
        self.job = Job(run, name="preview")
        self.job.on_done.append(self._done)
        return self.job.start()

    def _done(self, job: Job) -> None:
        self.button.disabled = False
        if job.state == "failed":
            self._show_error(str(job.error))
            return
        preview: Preview = job.result
        self.last = preview
        self.estimate.value = html.escape(preview.describe())
        self.rows.value = preview_table(preview.rows)

    def _show_error(self, message: str) -> None:
        self.estimate.value = f"<span class='wb-error' style='color:#b00020'>Preview: {html.escape(message)}</span>"
