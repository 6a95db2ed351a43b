"""The judge report view: every report column with its plain header, baselines marked, n/a where a
statistic does not apply, and the chart shown only with a report."""

from __future__ import annotations

from tests.judge.lab_fakes import LabFake, texts_of
from widgets.judge_report_view import REPORT_COLUMNS, JudgeReportView, report_html
from workbench.judge import JudgeConfig, LabConfig, judge_the_judge, likert_rubric, load_preference_pairs
from workbench.runs import RunStore

RUBRIC = likert_rubric(
    "helpful",
    "Pick the better reply.",
    ("Is helpful",),
    {1: "Bad", 2: "Weak", 3: "Fair", 4: "Good", 5: "Great"},
)


def test_the_table_has_a_row_per_configuration_and_the_baselines_beside_it(tmp_path):
    pairs = load_preference_pairs("hh-rlhf", limit=10, seed=2)
    backend = LabFake(texts_of(pairs), lambda a, b: 0.9 if len(a) > len(b) else 0.1)
    configs = [LabConfig(method="consistent"), LabConfig(method="pointwise")]
    report = judge_the_judge(
        backend,
        RunStore.create(tmp_path, "r"),
        pairs,
        configs,
        RUBRIC,
        JudgeConfig(max_tokens=32),
        n_boot=100,
    ).report
    html = report_html(report)
    assert html.count("class='wb-judge-report-row'") == 2
    for col, _name, _tip in REPORT_COLUMNS:
        assert html.count(f"data-col='{col}'") == 2
    assert html.count("<td data-col='longest' class='wb-baseline'>") == 2
    first = html.split("class='wb-judge-report-row'")[1]
    corr = first.split("data-col='score_length_corr' class=''>")[1].split("</td>")[0]
    assert corr == "n/a"  # a pairwise judge has no score-length correlation
    longest = report.table.row(0, named=True)["longest"]
    assert f"data-col='longest' class='wb-baseline'>{longest:.3f}</td>" in first

    view = JudgeReportView()
    assert view.chart.layout.display == "none" and "No report yet" in view.table.value
    view.show(report, "10 labelled pairs")
    assert view.chart.layout.display == "" and view.table.value.startswith("<p>10 labelled pairs</p>")
    view.show(None, "Stopped.")
    assert view.chart.layout.display == "none" and "Stopped." in view.table.value
