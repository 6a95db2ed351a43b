"""(e) A jury: several judge configurations (or models) combined into one decision per pair.

- `majority`: each member votes A or B (a member's 'tie' abstains); more votes wins, equal is no decision.
- `mean`: the mean of the members' P(a wins) (members without one on a pair are left out), decided at 0.5.

A jury costs what its members cost together (judgments of the same run counted once). Whether it
helps is `compare_configs(report, best_member, jury)`: the gain over its best member with a CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from .decisions import CONFIG_SCHEMA, DECISION_SCHEMA, Decisions

__all__ = ["jury"]


def jury(
    decisions: Decisions,
    members: Sequence[str] | None = None,
    *,
    how: Sequence[Literal["majority", "mean"]] = ("majority", "mean"),
    name: str | None = None,
) -> Decisions:
    """Combine `members` (config names; default: every configuration in `decisions`) into one jury
    configuration per rule in `how`. Only pairs every member decided on are judged."""
    members = list(members) if members is not None else decisions.configs["config"].to_list()
    if len(members) < 2:
        raise ValueError(f"a jury needs at least two members, got {members}")
    sub = decisions.only(*members)
    wide = sub.rows.pivot(
        on="config", index="pair_id", values=["decision", "p_a"], aggregate_function="first"
    )
    dec_cols = [c for c in wide.columns if c.startswith("decision")]
    p_cols = [c for c in wide.columns if c.startswith("p_a")]
    wide = wide.drop_nulls(dec_cols)
    label = name or f"jury of {len(members)}"
    rows: list[dict[str, Any]] = []
    for rec in wide.iter_rows(named=True):
        votes = [rec[c] for c in dec_cols]
        a, b = votes.count("A"), votes.count("B")
        probs = [rec[c] for c in p_cols if rec[c] is not None]
        p = float(np.mean(probs)) if probs else None
        if "majority" in how:
            rows.append({"config": f"{label} (majority)", "method": "jury-majority", "pair_id": rec["pair_id"],
                         "decision": "A" if a > b else "B" if b > a else "tie", "p_a": a / (a + b) if a + b else None})  # fmt: skip
        if "mean" in how:
            rows.append({"config": f"{label} (mean p)", "method": "jury-mean", "pair_id": rec["pair_id"],
                         "decision": "tie" if p is None or p == 0.5 else "A" if p > 0.5 else "B", "p_a": p})  # fmt: skip
    cfg = sub.configs
    runs = cfg.unique(["model", "rubric_version", "prompt_style"], keep="first")
    cost = {"judgments": int(runs["judgments"].sum()), "parse_failures": int(runs["parse_failures"].sum()),
            "seconds": float(runs["seconds"].sum()), "tokens": int(runs["tokens"].sum())}  # fmt: skip
    models = ", ".join(dict.fromkeys(cfg["model"].to_list()))
    configs = [
        {"config": f"{label} ({'majority' if h == 'majority' else 'mean p'})", "method": f"jury-{h}", "model": models,
         "rubric": "+".join(dict.fromkeys(cfg["rubric"].to_list())), "rubric_version": "", "prompt_style": "",
         **cost, "position_consistency": None, "first_position_rate": None, "score_length_corr": None}
        for h in how
    ]  # fmt: skip
    return Decisions(pl.DataFrame(rows, schema=DECISION_SCHEMA), pl.DataFrame(configs, schema=CONFIG_SCHEMA))
