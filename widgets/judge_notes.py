"""What the judge lab says in words: plain names for its metrics, and the warning about a judge that
gives every row the same score (the default 270M base model does)."""

from __future__ import annotations

import html

import polars as pl

__all__ = ["METRIC_HELP", "metric_table", "same_score_note"]

METRIC_HELP = {
    "kappa_quadratic": "agreement with you beyond chance, near misses counting partly (1 = perfect, 0 = chance)",
    "kappa": "agreement with you beyond chance (1 = perfect, 0 = chance)",
    "spearman": "whether the judge ranks answers in your order (1 = same order, 0 = unrelated)",
    "accuracy": "share of rows where the judge gave exactly your score",
    "within_one": "share of rows where the judge was at most one point from your score",
    "length_spearman": "whether longer answers get higher scores (near 0 = length does not matter)",
    "self_score_gap": "how much higher the judge scores answers its own model wrote than others' answers",
    "longer_preferred_rate": "share of pairs where the judge picked the longer answer (0.5 = no length bias)",
    "self_win_rate": "share of pairs where the judge picked its own model's answer (0.5 = no self-preference)",
    "flip_rate": "share of pairs whose winner changed when the two answers swapped places",
    "first_position_rate": "share of verdicts that picked whichever answer was shown first (0.5 = no position bias)",
}
"""One phrase per metric the agreement and bias tables show; the exact metric name stays beside it."""


def metric_table(df: pl.DataFrame, names: dict[str, str]) -> str:
    """An agreement or bias frame (rubric_version, metric, value, ci_low, ci_high, n) as an HTML table
    whose metric column says in words what each number means."""
    if df.height == 0:
        return "<i>not enough data</i>"
    rows = []
    for r in df.iter_rows(named=True):
        ci = "" if r["ci_low"] is None else f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        value = "n/a" if r["value"] is None or r["value"] != r["value"] else f"{r['value']:.2f}"
        metric = str(r["metric"])
        help_text = METRIC_HELP.get(metric, "")
        label = f"{html.escape(help_text)} <small><code>{html.escape(metric)}</code></small>" if help_text else metric
        version = html.escape(names.get(r["rubric_version"], r["rubric_version"]))
        rows.append(f"<tr><td>{version}</td><td title='{html.escape(help_text)}'>{label}</td><td>{value}</td>"
                    f"<td>{ci}</td><td>{r['n']}</td></tr>")  # fmt: skip
    head = "<tr><th>version</th><th>what it measures</th><th>value</th><th>95% CI</th><th>n</th></tr>"
    return f"<table class='wb-judge-metrics'>{head}{''.join(rows)}</table>"


def same_score_note(judgments: pl.DataFrame, version: str) -> str:
    """A warning when every parsed judgment of `version` gave the same score: such a judge cannot
    tell answers apart, so its calibration and agreement numbers mean nothing yet."""
    if judgments.height == 0 or "rubric_version" not in judgments.columns:
        return ""
    mine = judgments.filter((pl.col("rubric_version") == version) & pl.col("parse_ok"))
    scores = mine["score"].drop_nulls().unique().to_list() if mine.height else []
    if mine.height < 3 or len(scores) != 1:
        return ""
    return (
        "<div class='wb-judge-warning' style='border-left:4px solid #e65100;padding:4px 8px;margin:4px 0'>"
        f"<b>Every one of the {mine.height} judged rows got score {scores[0]}</b>: this judge does not tell "
        "answers apart, so the score chart, agreement and bias below mean nothing yet. The default model is "
        "a small base model and a poor judge. Load a better judge in the model picker at the top (a GGUF "
        "path, <code>hf://owner/repo/file.gguf</code>, or an endpoint URL; in Python "
        "<code>load_backend(\"hf://repo/file.gguf\")</code>) and judge again.</div>"
    )
