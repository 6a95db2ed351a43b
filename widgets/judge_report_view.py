"""The judge report as a view: one row per configuration, its agreement with people and CI beside the
baselines on the same pairs, and the chart of agreement against the baseline lines.

Everything shown is `workbench.judge.judge_report`'s table and `report_chart`; this module only formats.
"""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import ipywidgets as W
import polars as pl

from workbench.judge import BASELINES, JudgeReport, report_chart

__all__ = ["REPORT_COLUMNS", "JudgeReportView", "report_html"]

# (column, header, what it means): the order the table shows them in.
REPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("config", "configuration", "model · rubric (version) · method · prompt style"),
    ("n", "n", "labelled pairs this configuration was measured on"),
    ("agreement", "agreement [95% CI]", "share of pairs where the judge chose what the person chose (no decision counts as wrong)"),
    ("kappa", "kappa", "Cohen's kappa with the person (0 = chance, 1 = perfect)"),
    ("random", "random", "baseline on the same pairs: a fair coin (expected agreement)"),
    ("always_first", "always first", "baseline on the same pairs: always pick the answer shown first"),
    ("longest", "longest", "baseline on the same pairs: always pick the longer answer"),
    ("shortest", "shortest", "baseline on the same pairs: always pick the shorter answer"),
    ("gain_vs_length", "gain vs length [95% CI]", "agreement minus the better length baseline, paired bootstrap CI"),
    ("decided", "decided", "share of pairs the judge gave a winner on"),
    ("position_consistency", "position consistency", "share of pairs with the same winner in both orders"),
    ("first_position_rate", "first-position rate", "how often the answer shown first wins (0.5 = no position bias)"),
    ("p_prefer_longer", "P(prefer longer)", "how often the judge's winner is the longer answer"),
    ("score_length_corr", "score-length corr.", "absolute judges: Spearman correlation of score and answer length"),
    ("parse_failures", "parse failures", "judge outputs with no readable verdict or score"),
    ("seconds_per_1k", "s / 1k judgments", "seconds per 1,000 judgments (wall clock)"),
    ("tokens_per_1k", "tokens / 1k judgments", "prompt and generated tokens per 1,000 judgments"),
)  # fmt: skip


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    return html.escape(str(v))


def _cell(col: str, r: dict[str, Any]) -> str:
    if col == "agreement":
        return f"<b>{_num(r['agreement'])}</b> [{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
    if col == "gain_vs_length":
        sign = "+" if (r["gain_vs_length"] or 0) > 0 else ""
        return f"{sign}{_num(r['gain_vs_length'])} [{_num(r['gain_ci_low'])}, {_num(r['gain_ci_high'])}]"
    return _num(r.get(col))


def report_html(report: JudgeReport) -> str:
    """The report table (baseline columns marked) and the baselines on every labelled pair."""
    head = "".join(
        f"<th title='{html.escape(tip)}' class='{'wb-baseline' if col in BASELINES else ''}'>{html.escape(name)}</th>"
        for col, name, tip in REPORT_COLUMNS
    )
    body = []
    for r in report.table.iter_rows(named=True):
        cells = "".join(
            f"<td data-col='{col}' class='{'wb-baseline' if col in BASELINES else ''}'>{_cell(col, r)}</td>"
            for col, _n, _t in REPORT_COLUMNS
        )
        body.append(f"<tr class='wb-judge-report-row'>{cells}</tr>")
    base = report.baselines
    lines = "".join(
        f"<tr data-baseline='{html.escape(b['baseline'])}'><td>{html.escape(b['baseline'].replace('_', ' '))}</td>"
        f"<td>{_num(b['agreement'])}</td><td>[{_num(b['ci_low'])}, {_num(b['ci_high'])}]</td><td>{b['n']}</td></tr>"
        for b in base.iter_rows(named=True)
    )  # fmt: skip
    style = ("<style>.wb-judge-report-table td,.wb-judge-report-table th{padding:2px 6px;font-size:12px;"
             "text-align:right}.wb-judge-report-table .wb-baseline{background:#f3f3f3;color:#555}"
             ".wb-judge-report-table td:first-child{text-align:left;min-width:220px;max-width:320px}"
             ".wb-judge-report-table td[data-col=agreement],.wb-judge-report-table td[data-col=gain_vs_length]"
             "{white-space:nowrap}</style>")  # fmt: skip
    return (
        f"{style}<div style='overflow-x:auto'><table class='wb-judge-report-table'><tr>{head}</tr>{''.join(body)}"
        "</table></div><p><small>Grey columns are judges that read no content, scored on exactly the pairs of "
        "that row. A judge is worth running only where its CI clears them.</small></p>"
        "<h4>Baselines on every labelled pair</h4><table class='wb-judge-baselines'><tr><th>baseline</th>"
        f"<th>agreement</th><th>95% CI</th><th>n</th></tr>{lines}</table>"
    )


def _empty_chart() -> alt.LayerChart:
    table = pl.DataFrame({"config": ["(no report yet)"], "agreement": [0.0], "ci_low": [0.0], "ci_high": [0.0],
                          "n": [0], "kappa": [0.0]})  # fmt: skip
    base = pl.DataFrame({"baseline": list(BASELINES), "agreement": [0.5, 0.5, 0.5, 0.5]})
    return report_chart(table.head(0), base.head(0))


class JudgeReportView(W.VBox):
    """`show(report)`: the table, the baselines and the chart of a judge report (or a note)."""

    def __init__(self) -> None:
        self.table = W.HTML("<i>No report yet: run the judge on a labelled set.</i>")
        self.table.add_class("wb-judge-report")
        alt.JupyterChart.enable_offline(True)
        self.chart = alt.JupyterChart(_empty_chart())
        self.chart.layout.display = "none"
        self.report: JudgeReport | None = None
        super().__init__([self.table, self.chart])

    def show(self, report: JudgeReport | None, note: str = "") -> None:
        self.report = report
        if report is None or report.table.height == 0:
            self.table.value = f"<i>{html.escape(note or 'No report yet.')}</i>"
            self.chart.layout.display = "none"
            return
        self.table.value = (f"<p>{html.escape(note)}</p>" if note else "") + report_html(report)
        self.chart.chart = report.chart(width=380)
        self.chart.layout.display = ""
