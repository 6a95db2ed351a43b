"""(f) A calibrated judge: a small logistic fit of the human label on judge features and length.

Features per pair: for each chosen member configuration, its P(a wins) - 0.5 (0 where it has none),
and the length difference (len a - len b) / (len a + len b). Two models are fit, each with k-fold
cross-validation (every pair is predicted by a fit that never saw it):

- "calibrated: length only" (the length difference alone), the heuristic a judge must beat;
- "calibrated: length + judges" (length and the judge features).

The difference between their agreements (`compare_configs`) is how much the judge adds beyond length.
Pairs a person called a tie are left out of the fit (the label is binary).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from .decisions import CONFIG_SCHEMA, DECISION_SCHEMA, Decisions

__all__ = ["calibrated_judge", "fit_logistic"]


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iters: int = 50) -> np.ndarray:
    """Weights (intercept first) of an L2-penalised logistic regression by Newton's method."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[0] = 0.0  # the intercept is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(w[0] + x @ w[1:])))


def calibrated_judge(
    decisions: Decisions,
    pairs: pl.DataFrame,
    human: Mapping[str, str],
    members: Sequence[str] | None = None,
    *,
    folds: int = 5,
    l2: float = 1.0,
    seed: int = 0,
) -> Decisions:
    """Cross-validated logistic judges ("length only" and "length + judges") on the labelled pairs.
    `members`: configurations whose P(a wins) are features (default: all with probabilities)."""
    if not {"pair_id", "a_text", "b_text"} <= set(pairs.columns):
        raise ValueError("pairs need pair_id, a_text and b_text (the length feature)")
    with_p = (
        decisions.rows.filter(pl.col("p_a").is_not_null())["config"].unique(maintain_order=True).to_list()
    )
    members = list(members) if members is not None else with_p
    if not members:
        raise ValueError("no member configuration has probabilities (p_a) to calibrate")
    wide = decisions.only(*members).rows.pivot(
        on="config", index="pair_id", values="p_a", aggregate_function="first"
    )
    lab = pairs.filter(pl.col("pair_id").is_in([p for p, v in human.items() if v in ("A", "B")]))
    lab = lab.select("pair_id", "a_text", "b_text").join(wide, on="pair_id", how="left")
    n = lab.height
    if n < 2 * folds:
        raise ValueError(f"calibrating needs at least {2 * folds} labelled pairs with a winner, have {n}")
    la = lab["a_text"].str.len_chars().cast(pl.Float64).to_numpy()
    lb = lab["b_text"].str.len_chars().cast(pl.Float64).to_numpy()
    length = ((la - lb) / np.maximum(la + lb, 1.0))[:, None]
    judge = np.column_stack([lab[m].fill_null(0.5).to_numpy() - 0.5 for m in members])
    y = np.array([1.0 if human[p] == "A" else 0.0 for p in lab["pair_id"]])
    fold = np.random.default_rng(seed).permutation(n) % folds
    rows: list[dict[str, Any]] = []
    for label, x in (("length only", length), ("length + judges", np.hstack([length, judge]))):
        p = np.empty(n)
        for f in range(folds):
            test = fold == f
            p[test] = _predict(fit_logistic(x[~test], y[~test], l2=l2), x[test])
        for pid, pa in zip(lab["pair_id"].to_list(), p, strict=True):
            rows.append({"config": f"calibrated: {label}", "method": "calibrated", "pair_id": pid,
                         "decision": "A" if pa > 0.5 else "B" if pa < 0.5 else "tie", "p_a": float(pa)})  # fmt: skip
    cfg = decisions.only(*members).configs
    runs = cfg.unique(["model", "rubric_version", "prompt_style"], keep="first")
    cost = {"judgments": int(runs["judgments"].sum()), "parse_failures": int(runs["parse_failures"].sum()),
            "seconds": float(runs["seconds"].sum()), "tokens": int(runs["tokens"].sum())}  # fmt: skip
    none = {"position_consistency": None, "first_position_rate": None, "score_length_corr": None}
    configs = [
        {"config": "calibrated: length only", "method": "calibrated", "model": "(none)", "rubric": "", "rubric_version": "",
         "prompt_style": "", "judgments": 0, "parse_failures": 0, "seconds": 0.0, "tokens": 0, **none},
        {"config": "calibrated: length + judges", "method": "calibrated", "model": ", ".join(dict.fromkeys(cfg["model"].to_list())),
         "rubric": "", "rubric_version": "", "prompt_style": "", **cost, **none},
    ]  # fmt: skip
    return Decisions(pl.DataFrame(rows, schema=DECISION_SCHEMA), pl.DataFrame(configs, schema=CONFIG_SCHEMA))
