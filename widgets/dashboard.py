"""The diversity dashboard: metrics and charts for one run, or a comparison of runs or groups.

A thin view over `workbench.metrics` and `workbench.metrics.charts`: the panel reads rows from the
session's run (and any other runs picked for comparison), computes metrics in the core, and shows
each chart as an `alt.JupyterChart`, whose point selection syncs back to Python. Selecting a bar or
a cluster maps the selection to row ids (`workbench.metrics.charts.select_ids`) and calls every callback
registered with `on_select`: the app wires that to the inspector's `show_ids`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import altair as alt
import ipywidgets as widgets
import polars as pl

from widgets.diversity_embeddings import EmbeddingMetricsPanel
from widgets.diversity_split import AttributeSplitPanel
from widgets.ui import row, tip
from workbench.metrics import (
    charts,
    cluster_keywords,
    compare_sets,
    embed_frame,
    instruction_shapes,
    kmeans_clusters,
    nearest_rouge_l,
    shape_counts,
    split_sets,
    text_lengths,
)
from workbench.runs import RunStore
from workbench.session import Session

__all__ = ["DiversityPanel"]

ALL = "(all)"
NONE = "(none)"
ALL_LABEL = "all stages (mixes instructions, answers and judge outputs)"
# What a person looks at first: the instructions self-instruct made, never judge outputs mixed in.
DEFAULT_STAGES = ("instruction", "completion", "seed", "evolved")
SelectCallback = Callable[[list[str] | None], None]
GLOSSARY = (
    "<details class='wb-glossary'><summary>What these numbers mean</summary><ul>"
    "<li><b>distinct-n</b>: unique n-word sequences divided by all n-word sequences (1 = no repeats).</li>"
    "<li><b>self-BLEU</b>: how much each row's wording overlaps the other rows (lower = more varied).</li>"
    "<li><b>nearest-neighbour ROUGE-L</b>: overlap of each row with its most similar row (near 1 = near-duplicates).</li>"
    "<li><b>mean cosine distance</b> and <b>Vendi score</b>: spread of the rows' embeddings "
    "(higher = more varied; tick <i>embedding metrics</i> and press Compute).</li>"
    "<li><b>compression ratio</b>: raw bytes / gzip bytes of the texts (higher = more repetitive).</li>"
    "<li><b>[low, high]</b>: a 95% interval (bootstrap over rows; jackknife for distinct-n, compression and "
    "Vendi).</li>"
    "<li><b>instruction shape</b>: each instruction's first verb and the noun it acts on.</li>"
    "<li><b>acceptance</b>: of the self-instruct candidates the filters decided on in a round, the share kept "
    "(the same number as in the Generate tab).</li></ul></details>"
)


class DiversityPanel(widgets.VBox):
    """Charts of a run's lengths, lexical and embedding diversity, instruction shape and acceptance.

    Controls: the text column, a stage filter, a column to split the run into sets (round, stage,
    model, ...), other runs to compare against, and whether to cluster embeddings (the session's model).
    Below them, `embedding_metrics` (Vendi and distance per set, from an embedding model of its own, in
    a worker thread) and `split` (every metric per value of a sampled attribute).
    `refresh()` recomputes everything; selecting a bar or cluster calls the `on_select` callbacks
    with the ids of the rows it covers.
    """

    def __init__(
        self, session: Session, *, sample: int = 1000, embed_sample: int = 200, n_boot: int = 300
    ) -> None:
        self.session = session
        self.sample = sample
        self.embed_sample = embed_sample
        self.n_boot = n_boot
        self._callbacks: list[SelectCallback] = []
        self._tables: dict[str, pl.DataFrame] = {}
        self.charts: dict[str, alt.JupyterChart] = {}
        self.frames: dict[str, pl.DataFrame] = {}
        self.selected_ids: list[str] = []
        alt.JupyterChart.enable_offline(True)  # no CDN here: bundle vega with vl-convert

        self._syncing = False
        self._stage_chosen = False  # until a person picks a stage, it follows the run (instructions first)
        self.selection_summary = ""
        self.column = tip(widgets.Dropdown(options=["text"], value="text", description="text column"),
                          "Which text column of the rows the metrics and charts read.")  # fmt: skip
        self.stage = tip(widgets.Dropdown(options=[(ALL_LABEL, ALL)], value=ALL, description="stage"),
                         "Which rows to measure: instructions, answers, judge outputs, or all of them mixed.")  # fmt: skip
        self.compare_by = tip(widgets.Dropdown(options=[NONE], value=NONE, description="compare by"),
                              "Split the rows into sets by this column (round or model, for instance) and compare them.")  # fmt: skip
        self.other_runs = tip(widgets.SelectMultiple(options=[], description="compare with runs", rows=3),
                              "Other runs in the runs folder to compare this run against.")  # fmt: skip
        self.embeddings = tip(widgets.Checkbox(value=False, description="clusters (uses the session's model)", indent=False),
                              "Also embed a sample of rows with the session's model and cluster them (slower).")  # fmt: skip
        self.k = tip(widgets.IntSlider(value=6, min=2, max=20, description="clusters", continuous_update=False),
                     "How many k-means clusters to split the embedded rows into.")  # fmt: skip
        self.refresh_button = tip(widgets.Button(description="Refresh", icon="refresh", button_style="primary"),
                                  "Re-read the run and recompute every chart.")  # fmt: skip
        self.status = widgets.HTML()
        self.status.add_class("wb-diversity-status")
        self.selection_label = widgets.HTML()
        self.selection_label.add_class("wb-diversity-selection")
        self.charts_box = widgets.VBox()
        # Vendi/distance run a model, so they are a job of their own; the split is lexical and immediate.
        self.embedding_metrics = EmbeddingMetricsPanel(
            session, lambda: (self._sets(), self.column.value), embed_sample=embed_sample, n_boot=n_boot
        )
        self.split = AttributeSplitPanel(
            session, lambda: (self._rows_of(self.session.store), self.column.value), n_boot=n_boot
        )
        self.refresh_button.on_click(lambda _: self.refresh())
        for control in (self.column, self.stage, self.compare_by, self.other_runs, self.embeddings, self.k):
            control.observe(self._on_control, names="value")  # a changed knob redraws at once

        column = {"flex": "0 0 auto", "margin": "0 16px 0 0"}  # groups keep their width and wrap as wholes
        controls = row(
            [
                widgets.VBox([self.column, self.stage, self.compare_by], layout=column),
                widgets.VBox([self.other_runs], layout=column),
                widgets.VBox([self.embeddings, self.k, self.refresh_button], layout=column),
            ]
        )
        super().__init__([controls, widgets.HTML(GLOSSARY), self.status, self.selection_label, self.embedding_metrics,
                          self.split, self.charts_box])  # fmt: skip
        self.add_class("wb-diversity")
        session.subscribe(self._on_session_event)
        self._sync_options()

    # -- public API ----------------------------------------------------------------------------
    def on_select(self, callback: SelectCallback) -> None:
        """Call `callback(ids)` whenever a chart selection changes (an empty list clears it)."""
        self._callbacks.append(callback)

    def refresh(self) -> None:
        """Recompute metrics and charts from the run(s). Errors go to the status line and the app's
        error area; nothing in the run is touched."""
        self._sync_options()
        self.embedding_metrics.clear()  # computed on the sets before this refresh
        try:
            self._build()
        except Exception as err:  # show, don't raise: a panel must not kill the app
            message = f"Diversity: {err}"
            self.status.value = f"<span class='wb-error'>{html.escape(message)}</span>"
            self.session.report_error(message)
        self.split.refresh()

    def select(self, key: str, picks: list[dict[str, Any]]) -> list[str]:
        """Apply a selection as if made on chart `key` (what a click does); returns the ids."""
        if key not in self._tables:
            raise KeyError(f"no chart {key!r}; charts shown: {sorted(self._tables)}")
        ids = charts.select_ids(self._tables[key], picks)
        self.selected_ids = ids
        what = ", ".join(", ".join(f"{k}={v}" for k, v in p.items()) for p in picks[:3])
        self.selection_summary = f"{key} chart: {what}" if picks else ""
        self.selection_label.value = (
            f"<b>{len(ids)}</b> rows selected on <i>{html.escape(key)}</i> ({html.escape(what)}): "
            "the Inspect tab shows only these rows until you clear the filter there"
            if picks
            else ""
        )
        for cb in list(self._callbacks):
            try:
                cb(ids if picks else None)  # an emptied selection clears the filter, it hides nothing
            except Exception as err:
                self.session.report_error(f"Diversity selection handler failed: {err}")
        return ids

    # -- internals -----------------------------------------------------------------------------
    def clear_selection(self) -> None:
        """Forget the chart selection (the inspector's "clear" calls this)."""
        self.selected_ids, self.selection_summary = [], ""
        self.selection_label.value = ""

    def _on_control(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        if change["owner"] is self.stage:
            self._stage_chosen = True
        self.refresh()

    def _on_session_event(self, what: str) -> None:
        if what in ("rows", "run"):
            self.status.value = "The run changed: press <b>Refresh</b> to update the charts."

    def _other_run_names(self) -> list[str]:
        root = Path(self.session.runs_root)
        if not root.is_dir():
            return []
        return sorted(
            p.name
            for p in root.iterdir()
            if (p / "manifest.json").exists() and p.name != self.session.run_name
        )

    @staticmethod
    def _set_options(dropdown: widgets.Dropdown, options: list[str], default: str) -> None:
        """Replace a dropdown's options, keeping the user's choice when it is still offered."""
        keep = dropdown.value
        if list(dropdown.options) != options:
            dropdown.options = options
        dropdown.value = keep if keep in options else (default if default in options else options[0])

    def _sync_options(self) -> None:
        """Offer the run's columns, stages and other runs (without redrawing for each change)."""
        self._syncing = True
        try:
            self._sync_options_now()
        finally:
            self._syncing = False

    def _sync_options_now(self) -> None:
        rows = self.session.store.rows()
        skip = ("id", "parent_id", "params", "stage", "status", "model", "model_sha", "created_at", "reason")
        text_cols = [c for c, t in rows.schema.items() if t == pl.Utf8 and c not in skip]
        self._set_options(self.column, text_cols or ["text"], "text")
        stages = sorted(s for s in rows["stage"].unique().to_list() if s) if "stage" in rows.columns else []
        default = next((s for s in DEFAULT_STAGES if s in stages), stages[0] if stages else ALL)
        chosen = self.stage.value if self._stage_chosen else None
        options = [*((st, st) for st in stages), (ALL_LABEL, ALL)]
        if [tuple(o) for o in self.stage.options] != options:
            self.stage.options = options
        self.stage.value = chosen if chosen in [*stages, ALL] else default
        splittable = [c for c in ("round", "stage", "model", "status", "seed") if c in rows.columns]
        self._set_options(self.compare_by, [NONE, *splittable], NONE)
        others = self._other_run_names()
        if list(self.other_runs.options) != others:
            keep = tuple(v for v in self.other_runs.value if v in others)
            self.other_runs.options = others
            self.other_runs.value = keep

    def _rows_of(self, store: RunStore) -> pl.DataFrame:
        rows = store.rows()
        if self.stage.value != ALL and "stage" in rows.columns:
            rows = rows.filter(pl.col("stage") == self.stage.value)
        col = self.column.value
        if col not in rows.columns:
            return pl.DataFrame()
        return rows.filter(pl.col(col).is_not_null() & (pl.col(col).str.strip_chars() != ""))

    def _sets(self) -> dict[str, pl.DataFrame]:
        current = self._rows_of(self.session.store)
        if self.other_runs.value:
            sets = {self.session.run_name: current}
            for name in self.other_runs.value:
                sets[name] = self._rows_of(RunStore.open(Path(self.session.runs_root) / name))
        elif self.compare_by.value != NONE:
            sets = split_sets(current, self.compare_by.value)
        else:
            sets = {self.session.run_name: current}
        return {k: v for k, v in sets.items() if v.height > 0}

    def _show(self, key: str, chart: Any, table: pl.DataFrame) -> widgets.Widget:
        # SVG: crisp at any zoom, and every bar is an element a screen reader or a browser test can reach.
        jchart = alt.JupyterChart(chart, embed_options={"renderer": "svg"})
        jchart.add_class(f"wb-chart-{key}")
        self.charts[key] = jchart
        self._tables[key] = table
        if charts.SELECTION in jchart._vl_selections:
            jchart.selections.observe(
                lambda change, key=key: self.select(key, list(change["new"].value)), [charts.SELECTION]
            )
        return jchart

    def _build(self) -> None:
        col = self.column.value
        sets = self._sets()
        self.charts, self._tables, self.frames = {}, {}, {}
        if not sets:
            self.status.value = (
                f"No rows with text in column <code>{html.escape(col)}</code> yet: generate some first."
            )
            self.charts_box.children = []
            return
        multi = len(sets) > 1
        backend = self.session.backend if self.session.model_loaded else None
        rows = pl.concat(
            [df.with_columns(set=pl.lit(name)) for name, df in sets.items()], how="diagonal_relaxed"
        ).with_columns(pl.col("id").cast(pl.Utf8))
        shown: list[widgets.Widget] = []

        compare = compare_sets(sets, col, backend=backend, sample=self.sample, n_boot=self.n_boot, rouge=True)
        self.frames["compare"] = compare
        shown.append(
            self._show("compare", charts.metric_comparison(compare, select=True), rows.select("id", "set"))
        )

        lengths = text_lengths(rows, col, backend=backend).with_columns(set=rows["set"])
        lengths_b = charts.bin_rows(lengths, "words", bins=30)
        hist = charts.histogram(
            lengths, "words", color="set" if multi else None, normalize=multi, select=True
        )
        shown.append(self._show("lengths", hist, lengths_b))

        nn = pl.concat(
            [
                nearest_rouge_l(df, col, sample=self.sample).with_columns(set=pl.lit(n))
                for n, df in sets.items()
                if df.height >= 2
            ]
            or [pl.DataFrame(schema={"id": pl.Utf8, "nn_rouge_l": pl.Float64, "set": pl.Utf8})]
        )
        if nn.height:
            self.frames["similarity"] = nn
            sim = charts.histogram(
                nn,
                "nn_rouge_l",
                color="set" if multi else None,
                bins=20,
                extent=(0.0, 1.0),
                normalize=multi,
                select=True,
                title="nearest-neighbour ROUGE-L (sampled)",
            )
            shown.append(
                self._show("similarity", sim, charts.bin_rows(nn, "nn_rouge_l", bins=20, extent=(0.0, 1.0)))
            )

        shapes = instruction_shapes(rows, col).with_columns(pl.col("object").fill_null("(none)"))
        self.frames["shape"] = shape_counts(rows, col, top_verbs=15)
        shown.append(self._show("shape", charts.shape_chart(self.frames["shape"], select=True), shapes))

        if {"round", "status"} <= set(rows.columns):
            acceptance = charts.acceptance_table(rows, by="set" if multi else None)
            if acceptance.height:  # only instruction candidates have an acceptance rate
                self.frames["acceptance"] = acceptance
                acc = charts.acceptance_over_rounds(rows, by="set" if multi else None, select=True)
                candidates = (
                    rows.filter(pl.col("stage") == "instruction") if "stage" in rows.columns else rows
                )
                shown.append(self._show("acceptance", acc, candidates.select("id", "round", "set")))

        if self.embeddings.value:
            emb = embed_frame(
                rows.select("id", "set", col), self.session.backend, col, sample=self.embed_sample
            )
            clusters = kmeans_clusters(emb, k=self.k.value)
            keywords = cluster_keywords(clusters, col)
            self.frames["clusters"], self.frames["keywords"] = clusters, keywords
            table = clusters.select("id", "cluster")
            shown.append(
                row(
                    [
                        self._show(
                            "cluster_map",
                            charts.cluster_map(clusters, keywords, text=col, select=True),
                            table,
                        ),
                        self._show("cluster_sizes", charts.cluster_sizes(keywords, select=True), table),
                    ]
                )
            )
        self.charts_box.children = shown
        n_rows = sum(df.height for df in sets.values())
        self.status.value = (
            f"{n_rows} rows in {len(sets)} set(s): {html.escape(', '.join(sets))}. "
            f"Self-BLEU and ROUGE-L use a seeded sample of up to {self.sample} rows per set"
            + (f"; embeddings a sample of {self.embed_sample}." if self.embeddings.value else ".")
        )
