"""Judge biases that can be measured without human labels.

- Length: does the score follow the answer's length (Spearman of score vs characters; for pairwise,
  how often the longer answer is preferred)?
- Position: the pairwise flip rate and how often the first-shown answer wins (`pairwise.flip_rates`).
- Self-preference: when the judge and the generator are the same model file (the judgment's
  `model_sha` equals the judged row's `model_id`), are its own answers scored higher / preferred?
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from .calibration import AGREEMENT_SCHEMA, Estimate, bootstrap, spearman
from .pairwise import flip_rates
from .runner import with_judgment_schema


def _mean_gap(x: np.ndarray, y: np.ndarray) -> float:
    """Mean of the scores flagged 1 (own answers) minus the mean of those flagged 0."""
    score, own = x.astype(float), y.astype(bool)
    if own.all() or not own.any():
        return float("nan")
    return float(score[own].mean() - score[~own].mean())


def _rate(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(x.astype(float))) if len(x) else float("nan")


def _record(name: str, version: str, metric: str, est: Estimate) -> dict[str, Any]:
    return {"rubric": name, "rubric_version": version, "metric": metric, **est.__dict__}


def bias_report(judgments: pl.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pl.DataFrame:
    """One row per (rubric version, metric): value, bootstrap 95% CI, n. Metrics (when applicable):
    length_spearman, self_score_gap (absolute); longer_preferred_rate, self_win_rate, flip_rate,
    first_position_rate (pairwise; the last two without CI)."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    records: list[dict[str, Any]] = []
    parsed = judgments.filter(pl.col("parse_ok"))
    absolute = parsed.filter(pl.col("judge_kind") == "absolute")
    for (name, version), grp in absolute.group_by(["rubric", "rubric_version"], maintain_order=True):
        scores, chars = grp["score"].to_list(), grp["answer_chars"].to_list()
        records.append(
            _record(
                name, version, "length_spearman", bootstrap(spearman, scores, chars, n_boot=n_boot, seed=seed)
            )
        )
        own = (grp["judged_model_id"] == grp["model_sha"]).fill_null(False).to_list()
        if any(own):
            est = bootstrap(_mean_gap, scores, own, n_boot=n_boot, seed=seed)
            records.append(_record(name, version, "self_score_gap", est))
    pairwise = parsed.filter((pl.col("judge_kind") == "pairwise") & (pl.col("verdict") != "tie"))
    for (name, version), grp in pairwise.group_by(["rubric", "rubric_version"], maintain_order=True):
        chose_first = (grp["verdict"] == "A").to_numpy()
        first, second = grp["answer_chars"].to_numpy(), grp["other_chars"].to_numpy()
        differ = first != second
        longer = np.where(chose_first, first > second, second > first)[differ]
        records.append(
            _record(
                name,
                version,
                "longer_preferred_rate",
                bootstrap(_rate, list(longer), list(longer), n_boot=n_boot, seed=seed),
            )
        )
        first_own = (grp["judged_model_id"] == grp["model_sha"]).fill_null(False).to_numpy()
        second_own = (grp["other_model_id"] == grp["model_sha"]).fill_null(False).to_numpy()
        one_own = first_own != second_own
        if one_own.any():
            chose_own = np.where(chose_first, first_own, second_own)[one_own]
            est = bootstrap(_rate, list(chose_own), list(chose_own), n_boot=n_boot, seed=seed)
            records.append(_record(name, version, "self_win_rate", est))
    if judgments.filter(pl.col("judge_kind") == "pairwise").height:
        for rec in flip_rates(judgments).iter_rows(named=True):
            for metric, n_col in (("flip_rate", "both_parsed"), ("first_position_rate", "judgments")):
                value = rec[metric]
                records.append(
                    {
                        "rubric": rec["rubric"],
                        "rubric_version": rec["rubric_version"],
                        "metric": metric,
                        "value": float("nan") if value is None else float(value),
                        "ci_low": None,
                        "ci_high": None,
                        "n": int(rec[n_col] or 0),
                    }
                )
    return pl.DataFrame(records, schema=AGREEMENT_SCHEMA)
