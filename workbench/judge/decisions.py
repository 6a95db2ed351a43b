"""Turning judgments into one decision per pair: the methods a judge report compares.

A *configuration* is one judge model × rubric version × prompt style × method. Every method gives, per
pair (a, b), a `decision` ('A' = a is better, 'B', or 'tie' = no decision) and where it has one
`p_a`, the probability that a is better. Methods on the same judgments:

- (a) `consistent`: the pairwise verdict in both orders; a winner only when both orders agree. A
  position flip or an unparsed verdict is no decision ('tie'), which is what it is worth to a user.
- (b) `probability`: P(a wins) from the verdict token's logprobs, renormalised over A/B in each order
  and averaged over both orders, so a pure position bias cancels to 0.5; decided against a threshold.
- (c) `pointwise`: each answer graded alone (absolute judge); the difference of expected scores from
  the score distributions decides (ties within `margin`).

Few-shot prompts (d) are a rubric version (`workbench.judge.fewshot`); juries (e) and calibrated
judges (f) combine these decisions (`workbench.judge.jury`, `workbench.judge.calibrated`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .calibration import spearman
from .pairwise import pair_outcomes
from .runner import with_judgment_schema

__all__ = [
    "CONFIG_SCHEMA",
    "DECISION_SCHEMA",
    "Decisions",
    "consistent_decisions",
    "decisions_from_judgments",
    "pointwise_decisions",
    "probability_decisions",
]

DECISION_SCHEMA = {
    "config": pl.Utf8,
    "method": pl.Utf8,
    "pair_id": pl.Utf8,
    "decision": pl.Utf8,
    "p_a": pl.Float64,
}
CONFIG_SCHEMA = {
    "config": pl.Utf8,
    "method": pl.Utf8,
    "model": pl.Utf8,
    "rubric": pl.Utf8,
    "rubric_version": pl.Utf8,
    "prompt_style": pl.Utf8,
    "judgments": pl.Int64,
    "parse_failures": pl.Int64,
    "seconds": pl.Float64,
    "tokens": pl.Int64,
    "position_consistency": pl.Float64,
    "first_position_rate": pl.Float64,
    "score_length_corr": pl.Float64,
}
_GROUP = ["model", "model_sha", "rubric", "rubric_version", "judge_style"]


@dataclass
class Decisions:
    """Per-pair decisions of one or more configurations, and one row per configuration saying what
    produced it and what it cost (judgments, parse failures, seconds, tokens, position statistics)."""

    rows: pl.DataFrame
    """config, method, pair_id, decision ('A'|'B'|'tie'), p_a (probability a is better, may be null)."""
    configs: pl.DataFrame
    """One row per config (`CONFIG_SCHEMA`)."""

    def __add__(self, other: Decisions) -> Decisions:
        return Decisions(pl.concat([self.rows, other.rows]), pl.concat([self.configs, other.configs]))

    @classmethod
    def empty(cls) -> Decisions:
        return cls(pl.DataFrame(schema=DECISION_SCHEMA), pl.DataFrame(schema=CONFIG_SCHEMA))

    @classmethod
    def concat(cls, parts: Iterable[Decisions]) -> Decisions:
        out = cls.empty()
        for part in parts:
            out = out + part
        return out

    def only(self, *configs: str) -> Decisions:
        """The decisions of these configurations (names as in `configs['config']`)."""
        unknown = set(configs) - set(self.configs["config"].to_list())
        if unknown:
            raise ValueError(
                f"unknown configurations {sorted(unknown)}; have {self.configs['config'].to_list()}"
            )
        keep = pl.col("config").is_in(list(configs))
        return Decisions(self.rows.filter(keep), self.configs.filter(keep))


def config_name(model: str, rubric: str, version: str, method: str, style: str) -> str:
    """'model · rubric (version) · method · style': the label a report and its chart show."""
    return f"{model} · {rubric} ({version[:6]}) · {method} · {style}"


def _groups(judgments: pl.DataFrame, kind: str) -> Iterator[tuple[dict[str, Any], pl.DataFrame]]:
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    core = {"model": pl.Utf8, "model_sha": pl.Utf8, "seconds": pl.Float64, "prompt_tokens": pl.Int64,
            "completion_tokens": pl.Int64}  # fmt: skip
    judgments = judgments.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in core.items() if c not in judgments.columns
    )
    part = judgments.filter(pl.col("judge_kind") == kind)
    for key, grp in part.group_by(_GROUP, maintain_order=True):
        yield dict(zip(_GROUP, [str(k) if k is not None else "" for k in key], strict=True)), grp


def _cost(grp: pl.DataFrame) -> dict[str, Any]:
    tokens = int(grp["prompt_tokens"].fill_null(0).sum()) + int(grp["completion_tokens"].fill_null(0).sum())
    return {
        "judgments": grp.height,
        "parse_failures": int((~grp["parse_ok"].fill_null(False)).sum()),
        "seconds": float(grp["seconds"].fill_null(0.0).sum()),
        "tokens": int(tokens),
    }


def _config_row(key: dict[str, Any], method: str, grp: pl.DataFrame, **stats: Any) -> dict[str, Any]:
    name = config_name(key["model"], key["rubric"], key["rubric_version"], method, key["judge_style"])
    row = {"config": name, "method": method, "model": key["model"], "rubric": key["rubric"],
           "rubric_version": key["rubric_version"], "prompt_style": key["judge_style"], **_cost(grp),
           "position_consistency": None, "first_position_rate": None, "score_length_corr": None}  # fmt: skip
    row.update(stats)
    return row


def _order_probs(grp: pl.DataFrame) -> dict[str, dict[str, float]]:
    """pair_id -> {order: P(the pair's a wins | A or B)} from the verdict distributions."""
    out: dict[str, dict[str, float]] = {}
    for rec in grp.filter(pl.col("verdict_distribution").is_not_null()).iter_rows(named=True):
        d = json.loads(rec["verdict_distribution"])
        p_first, p_second = float(d.get("A", 0.0)), float(d.get("B", 0.0))
        if p_first + p_second <= 0:
            continue
        p_shown_first = p_first / (p_first + p_second)
        out.setdefault(rec["pair_id"], {})[rec["pair_order"]] = (
            p_shown_first if rec["pair_order"] == "AB" else 1.0 - p_shown_first
        )
    return out


def _side(winner: str | None, a_id: str, b_id: str) -> str:
    return "A" if winner == a_id else "B" if winner == b_id else "tie"


def consistent_decisions(judgments: pl.DataFrame) -> Decisions:
    """(a) Pairwise verdicts in both orders: a's or b's win only when both orders agree."""
    rows: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    for key, grp in _groups(judgments, "pairwise"):
        outcomes = pair_outcomes(grp)
        probs = _order_probs(grp)
        name = config_name(
            key["model"], key["rubric"], key["rubric_version"], "consistent", key["judge_style"]
        )
        for o in outcomes.iter_rows(named=True):
            p = list(probs.get(o["pair_id"], {}).values())
            rows.append({"config": name, "method": "consistent", "pair_id": o["pair_id"],
                         "decision": _side(o["winner"], o["a_id"], o["b_id"]),
                         "p_a": float(np.mean(p)) if p else None})  # fmt: skip
        both = outcomes.filter(pl.col("both_parsed"))
        verdicts = [v for v in (*outcomes["verdict_ab"].to_list(), *outcomes["verdict_ba"].to_list())
                    if v in ("A", "B")]  # fmt: skip
        configs.append(
            _config_row(
                key,
                "consistent",
                grp,
                position_consistency=float(both["consistent"].mean()) if both.height else None,  # type: ignore[arg-type]
                first_position_rate=verdicts.count("A") / len(verdicts) if verdicts else None,
            )
        )
    return Decisions(pl.DataFrame(rows, schema=DECISION_SCHEMA), pl.DataFrame(configs, schema=CONFIG_SCHEMA))


def probability_decisions(
    judgments: pl.DataFrame, *, threshold: float = 0.5, tie_band: float = 0.0
) -> Decisions:
    """(b) Position-debiased probability: P(a wins) averaged over both orders (from logprobs), 'A' when
    above `threshold` + `tie_band`, 'B' when below `threshold` - `tie_band`, else no decision. Pairs
    without a verdict distribution in either order get no decision."""
    if not 0.0 < threshold < 1.0 or tie_band < 0:
        raise ValueError(f"threshold must be in (0, 1) and tie_band >= 0, got {threshold}, {tie_band}")
    rows: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    for key, grp in _groups(judgments, "pairwise"):
        probs = _order_probs(grp)
        name = config_name(
            key["model"], key["rubric"], key["rubric_version"], "probability", key["judge_style"]
        )
        same_side, first = [], []
        for pid in grp["pair_id"].unique(maintain_order=True).to_list():
            by_order = probs.get(pid, {})
            p = float(np.mean(list(by_order.values()))) if by_order else None
            decision = "tie"
            if p is not None and p > threshold + tie_band:
                decision = "A"
            elif p is not None and p < threshold - tie_band:
                decision = "B"
            rows.append(
                {"config": name, "method": "probability", "pair_id": pid, "decision": decision, "p_a": p}
            )
            if len(by_order) == 2:
                same_side.append((by_order["AB"] > 0.5) == (by_order["BA"] > 0.5))
                first += [by_order["AB"], 1.0 - by_order["BA"]]  # P(whatever was shown first wins)
        configs.append(
            _config_row(
                key,
                "probability",
                grp,
                position_consistency=float(np.mean(same_side)) if same_side else None,
                first_position_rate=float(np.mean(first)) if first else None,
            )
        )
    return Decisions(pl.DataFrame(rows, schema=DECISION_SCHEMA), pl.DataFrame(configs, schema=CONFIG_SCHEMA))


def pointwise_decisions(
    judgments: pl.DataFrame, pairs: pl.DataFrame, *, margin: float = 0.0, score: str = "expected_score"
) -> Decisions:
    """(c) Pointwise: grade a and b alone; 'A' when a's `score` (default the expected score of the
    distribution, falling back to the verdict) exceeds b's by more than `margin`. A pair with an
    unparsed side gets no decision."""
    if score not in ("expected_score", "score"):
        raise ValueError(f"score must be 'expected_score' or 'score', got {score!r}")
    missing = {"pair_id", "a_id", "b_id"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs lack columns {sorted(missing)} (use make_pairs or load_preference_pairs)")
    rows: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    for key, grp in _groups(judgments, "absolute"):
        ok = grp.filter(pl.col("parse_ok"))
        value = pl.col("score").cast(pl.Float64)
        if score == "expected_score":
            value = pl.coalesce(pl.col("expected_score"), value)
        ok = ok.with_columns(value.alias("_v")).unique("parent_id", keep="last")
        by_id = dict(zip(ok["parent_id"].to_list(), ok["_v"].to_list(), strict=True))
        name = config_name(
            key["model"], key["rubric"], key["rubric_version"], "pointwise", key["judge_style"]
        )
        judged = set(grp["parent_id"].to_list())
        for rec in pairs.select("pair_id", "a_id", "b_id").iter_rows(named=True):
            if rec["a_id"] not in judged and rec["b_id"] not in judged:
                continue  # this configuration never saw the pair
            sa, sb = by_id.get(rec["a_id"]), by_id.get(rec["b_id"])
            decision, p = "tie", None
            if sa is not None and sb is not None:
                diff = sa - sb
                decision = "A" if diff > margin else "B" if diff < -margin else "tie"
                p = 1.0 / (1.0 + float(np.exp(-diff)))  # a monotone score of the difference, not calibrated
            rows.append(
                {
                    "config": name,
                    "method": "pointwise",
                    "pair_id": rec["pair_id"],
                    "decision": decision,
                    "p_a": p,
                }
            )
        corr = (
            spearman(ok["_v"].to_numpy(), ok["answer_chars"].cast(pl.Float64).to_numpy())
            if ok.height > 2
            else None
        )
        configs.append(_config_row(key, "pointwise", grp, score_length_corr=corr))
    return Decisions(pl.DataFrame(rows, schema=DECISION_SCHEMA), pl.DataFrame(configs, schema=CONFIG_SCHEMA))


def decisions_from_judgments(
    judgments: pl.DataFrame,
    pairs: pl.DataFrame | None = None,
    *,
    methods: Sequence[str] = ("consistent", "probability", "pointwise"),
    threshold: float = 0.5,
    margin: float = 0.0,
) -> Decisions:
    """Every applicable method on these judgments (pointwise needs `pairs` and absolute judgments)."""
    unknown = set(methods) - {"consistent", "probability", "pointwise"}
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from consistent, probability, pointwise")
    parts = []
    if "consistent" in methods:
        parts.append(consistent_decisions(judgments))
    if "probability" in methods:
        parts.append(probability_decisions(judgments, threshold=threshold))
    if "pointwise" in methods and pairs is not None:
        parts.append(pointwise_decisions(judgments, pairs, margin=margin))
    return Decisions.concat(parts)
