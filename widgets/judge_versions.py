"""Compare two rubric versions of the run: the rows whose score changed, and the difference with its CI.

A thin view over `workbench.judge.compare_versions` (changed rows, each version's agreement) and
`version_difference` (paired bootstrap CI of new - old: mean score, and with your labels accuracy,
within-one and mean absolute error).
"""

from __future__ import annotations

import html

import ipywidgets as W
import polars as pl

from widgets.ui import row, tips
from workbench.judge import compare_versions, judgeable_rows, judgments_in, version_difference, version_labels
from workbench.session import Session

__all__ = ["VersionCompareView", "changed_rows_html", "difference_html"]

_HELP = {
    "mean score": "mean score of the new version minus the old, on rows both scored",
    "accuracy": "change in exact agreement with your scores",
    "within_one": "change in agreement within one point of your scores",
    "mean_abs_error": "change in mean distance from your scores (negative = closer to you)",
}


def _f(v: float | None, sign: bool = False) -> str:
    if v is None or v != v:
        return "n/a"
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def difference_html(diff: pl.DataFrame) -> str:
    """The difference table: old, new, new - old and its paired 95% CI per metric."""
    if diff.height == 0:
        return "<i>The two versions scored no row in common: judge the same rows with both.</i>"
    rows = "".join(
        f"<tr data-metric='{html.escape(r['metric'])}'><td title='{html.escape(_HELP.get(r['metric'], ''))}'>"
        f"{html.escape(r['metric'])}</td><td>{_f(r['old'])}</td><td>{_f(r['new'])}</td>"
        f"<td><b>{_f(r['difference'], True)}</b></td><td>[{_f(r['ci_low'], True)}, {_f(r['ci_high'], True)}]</td>"
        f"<td>{r['n']}</td></tr>"
        for r in diff.iter_rows(named=True)
    )  # fmt: skip
    head = (
        "<tr><th>metric</th><th>old</th><th>new</th><th>new − old</th><th>95% CI (paired)</th><th>n</th></tr>"
    )
    return f"<table class='wb-judge-version-diff'>{head}{rows}</table>"


def changed_rows_html(rows: pl.DataFrame, texts: dict[str, str], limit: int = 50) -> str:
    """The rows whose score changed (old → new, your score), with the start of the answer."""
    changed = rows.filter(pl.col("changed"))
    if changed.height == 0:
        return "<i>No row changed score.</i>"
    out = []
    for r in changed.head(limit).iter_rows(named=True):
        text = html.escape((texts.get(r["parent_id"]) or "")[:120])
        human = "" if r["human"] is None else f"{r['human']:g}"
        out.append(f"<tr><td><code>{html.escape(str(r['parent_id'])[:10])}</code></td><td>{r['score_old']}</td>"
                   f"<td>{r['score_new']}</td><td>{human}</td><td style='text-align:left'>{text}</td></tr>")  # fmt: skip
    more = f"<p><small>{changed.height - limit} more not shown.</small></p>" if changed.height > limit else ""
    head = "<tr><th>row</th><th>old</th><th>new</th><th>your score</th><th>answer</th></tr>"
    return f"<table class='wb-judge-changed'>{head}{''.join(out)}</table>{more}"


class VersionCompareView(W.VBox):
    """Two dropdowns of the run's absolute rubric versions, Compare, and the result."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.old = W.Dropdown(options=[], description="old version")
        self.new = W.Dropdown(options=[], description="new version")
        self.compare_button = W.Button(description="Compare", icon="exchange")
        self.compare_button.add_class("wb-judge-compare")
        self.summary = W.HTML()
        self.output = W.HTML("<i>Judge the same rows with two rubric versions, then compare them here.</i>")
        tips((
            (self.old, "The version to compare from."),
            (self.new, "The version to compare to (its score minus the old one's)."),
            (self.compare_button, "Show the rows that changed score and the difference with a paired CI."),
        ))  # fmt: skip
        self.compare_button.on_click(lambda _b: self.compare())
        super().__init__([row([self.old, self.new, self.compare_button]), self.summary, self.output])
        self.add_class("wb-judge-versions")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the run's absolute rubric versions (oldest first; new defaults to the latest)."""
        try:
            names = version_labels(judgments_in(self.session.store, "absolute"))
        except Exception:  # an empty run has no judgments to read yet
            names = {}
        options = [(label, v) for v, label in names.items()]
        keep_old, keep_new = self.old.value, self.new.value
        self.old.options, self.new.options = options, options
        values = [v for _l, v in options]
        if len(values) >= 2:
            self.old.value = keep_old if keep_old in values else values[-2]
            self.new.value = keep_new if keep_new in values else values[-1]
        self.compare_button.disabled = len(values) < 2
        if len(values) < 2:
            self.summary.value = (
                f"<small>{len(values)} absolute rubric version(s) judged in this run: need two.</small>"
            )

    def compare(self) -> None:
        old, new = self.old.value, self.new.value
        if not old or not new or old == new:
            self.summary.value = "<span style='color:#b00020'>Pick two different versions.</span>"
            return
        store = self.session.store
        try:
            cmp = compare_versions(judgments_in(store, "absolute"), old, new, labels=store, n_boot=500)
            diff = version_difference(cmp, n_boot=500)
        except ValueError as err:
            self.summary.value = f"<span style='color:#b00020'>{html.escape(str(err))}</span>"
            return
        rows = judgeable_rows(store.rows())
        texts = dict(rows.select("id", "text").iter_rows()) if rows.height else {}
        self.summary.value = (f"<b>{cmp.changed} of {cmp.n}</b> rows changed score between "
                              f"{html.escape(self.old.label)} and {html.escape(self.new.label)}.")  # fmt: skip
        self.output.value = (
            difference_html(diff) + "<h4>Changed rows</h4>" + changed_rows_html(cmp.rows, texts)
        )
