"""The Diversity tab's "split by" view: every metric per value of a sampled attribute (persona, topic),
with intervals, as a table and a chart (issue 15.2).

The attribute names come from the run's `attributes` column (`workbench.metrics.attribute_names`);
a run generated without samplers has none, and the dropdown says so in its tooltip instead of offering
an empty choice. The numbers are `workbench.metrics.by_attribute`, one row per group and metric,
already aggregated, so the chart draws a handful of bars, never the rows.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import altair as alt
import ipywidgets as W
import polars as pl

from widgets.metric_tables import metrics_html
from widgets.ui import row, tip
from workbench.metrics import attribute_names, by_attribute, charts
from workbench.session import Session

__all__ = ["AttributeSplitPanel"]

NONE = "(none)"
SPLIT_TIP = "Measure the rows separately for each value of this sampled attribute (persona, topic, ...)."
NO_ATTRIBUTES_TIP = (
    "Disabled: this run's rows recorded no sampled attributes; generate with samplers to split by them."
)
CHART_METRICS = ("distinct_2", "compression_ratio", "self_bleu", "nn_rouge_l", "mean_words", "distinct_1")
RowsFn = Callable[[], tuple[pl.DataFrame, str]]


class AttributeSplitPanel(W.VBox):
    """A "split by" dropdown over the run's sampled attributes, a per-group table and a chart.

    `rows()` gives the rows the Diversity tab measures (its stage filter applied) and the text column.
    Choosing an attribute computes at once (lexical metrics on a seeded sample of `sample` rows per
    group; distinct-n and compression ratio with a 50-group jackknife).
    """

    def __init__(self, session: Session, rows: RowsFn, *, sample: int = 500, n_boot: int = 300) -> None:
        self.session, self._rows = session, rows
        self.sample, self.n_boot = sample, n_boot
        self.frame: pl.DataFrame | None = None
        self.chart: alt.JupyterChart | None = None
        self._syncing = False
        self.split_by = tip(W.Dropdown(options=[NONE], value=NONE, description="split by"), SPLIT_TIP)
        self.status = W.HTML()
        self.table = W.HTML()
        self.chart_box = W.VBox()
        self.split_by.observe(self._on_split, names="value")
        super().__init__([row([self.split_by, self.status]), self.table, self.chart_box])
        self.add_class("wb-diversity-split")
        self.sync()

    def sync(self) -> None:
        """Offer the attribute names the run recorded; disable the dropdown (saying why) when none."""
        rows, _ = self._rows()
        names = attribute_names(rows)
        self._syncing = True
        try:
            keep = self.split_by.value
            options = [NONE, *names]
            if list(self.split_by.options) != options:
                self.split_by.options = options
            self.split_by.value = keep if keep in options else NONE
        finally:
            self._syncing = False
        self.split_by.disabled = not names
        self.split_by.tooltip = SPLIT_TIP if names else NO_ATTRIBUTES_TIP

    def refresh(self) -> None:
        """Re-read the attribute names and recompute the split shown (if any)."""
        self.sync()
        self._compute()

    def _on_split(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self._compute()

    def _compute(self) -> None:
        attribute = self.split_by.value
        if attribute == NONE:
            self.frame, self.chart = None, None
            self.status.value, self.table.value, self.chart_box.children = "", "", []
            return
        try:
            rows, column = self._rows()
            frame = by_attribute(rows, attribute, column, sample=self.sample, n_boot=self.n_boot,
                                 jackknife_groups=50)  # fmt: skip
        except Exception as err:  # show, don't raise: a panel must not kill the app
            message = f"Diversity, split by {attribute}: {err}"
            self.status.value = f"<span class='wb-error'>{html.escape(message)}</span>"
            self.session.report_error(message)
            return
        self.frame = frame
        sizes = frame.group_by("group", maintain_order=True).agg(pl.col("n_rows").max())
        self.status.value = html.escape(
            f"{sizes.height} groups of {attribute}: "
            + ", ".join(f"{g} ({n} rows)" for g, n in sizes.iter_rows())
        )
        self.table.value = metrics_html(frame.rename({"group": attribute}), attribute)
        shown = frame.rename({"group": "set"}).filter(pl.col("metric").is_in(CHART_METRICS))
        self.chart = alt.JupyterChart(charts.metric_comparison(shown), embed_options={"renderer": "svg"})
        self.chart.add_class("wb-chart-split-by")
        self.chart_box.children = [self.chart]
