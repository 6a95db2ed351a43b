"""Preference data from judgments: DPO pairs, multi-aspect ratings, best-of-n.

Completions are grouped by the prompt they answer (`group_column`, `parent_id` on completion rows).
- Absolute judgments: per prompt the best- and worst-scored completions make a pair when their score
  difference is at least `min_margin` (no pair for prompts whose answers all score alike).
- Several rubrics (aspects, e.g. helpfulness, honesty): UltraFeedback-style, each completion's aspect
  scores are averaged (optionally weighted) into `overall`, which ranks the completions.
- Pairwise judgments: a pair whose two orders agree on a winner gives (winner, loser); the margin is
  |2 p - 1| where p is the mean probability the winner wins (0 when no logprobs were recorded).
Unparsed judgments never contribute (they have no score).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from .pairwise import pair_outcomes
from .runner import with_judgment_schema

DPO_SCHEMA = {
    "prompt_id": pl.Utf8,
    "prompt": pl.Utf8,
    "chosen": pl.Utf8,
    "rejected": pl.Utf8,
    "chosen_score": pl.Float64,
    "rejected_score": pl.Float64,
    "margin": pl.Float64,
    "chosen_id": pl.Utf8,
    "rejected_id": pl.Utf8,
    "n_candidates": pl.Int64,
    "source": pl.Utf8,
}


def _prompt_texts(completions: pl.DataFrame, prompt_column: str | None) -> pl.Series:
    col = prompt_column or ("instruction" if "instruction" in completions.columns else "prompt")
    if col not in completions.columns:
        raise ValueError(
            f"completions have no {col!r} column (columns: {completions.columns}); pass prompt_column="
        )
    texts = completions[col].cast(pl.Utf8).fill_null("")
    if prompt_column is None and col == "instruction" and "input" in completions.columns:
        inputs = completions["input"].cast(pl.Utf8).fill_null("")
        texts = pl.Series([f"{t}\n\n{i}" if i.strip() else t for t, i in zip(texts, inputs, strict=True)])
    return texts.alias("_prompt")


def _check_completions(completions: pl.DataFrame, group_column: str) -> None:
    missing = {"id", "text", group_column} - set(completions.columns)
    if missing:
        raise ValueError(f"completions lack columns {sorted(missing)} (have {completions.columns})")


def aggregate_aspects(
    judgments: pl.DataFrame, weights: Mapping[str, float] | None = None, *, score: str = "score"
) -> pl.DataFrame:
    """One row per judged completion (`id`): a column per rubric (aspect) and `overall`, the weighted
    mean of the aspects that parsed (`n_aspects` says how many). One version per rubric name."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    absolute = judgments.filter((pl.col("judge_kind") == "absolute") & pl.col("parse_ok"))
    versions = absolute.group_by("rubric").agg(pl.col("rubric_version").n_unique().alias("n"))
    clash = versions.filter(pl.col("n") > 1)["rubric"].to_list()
    if clash:
        raise ValueError(
            f"rubric(s) {clash} have several versions in these judgments: keep one, e.g. "
            "judgments.filter(pl.col('rubric_version') == ...)"
        )
    names = sorted(absolute["rubric"].unique().to_list())
    w = {n: float((weights or {}).get(n, 1.0)) for n in names}
    if weights and set(weights) - set(names):
        raise ValueError(f"weights name rubrics not in the judgments: {sorted(set(weights) - set(names))}")
    wide = (
        absolute.select(pl.col("parent_id").alias("id"), "rubric", pl.col(score).cast(pl.Float64))
        .unique(["id", "rubric"], keep="first")
        .pivot(on="rubric", index="id", values=score)
    )
    num = sum((pl.col(n).fill_null(0.0) * w[n] for n in names), pl.lit(0.0))
    den = sum((pl.col(n).is_not_null().cast(pl.Float64) * w[n] for n in names), pl.lit(0.0))
    n_aspects = sum((pl.col(n).is_not_null().cast(pl.Int64) for n in names), pl.lit(0))
    return wide.with_columns((num / den).alias("overall"), n_aspects.alias("n_aspects")).select(
        "id", *names, "overall", "n_aspects"
    )


def scored_completions(
    judgments: pl.DataFrame,
    completions: pl.DataFrame,
    *,
    score: str = "score",
    group_column: str = "parent_id",
    prompt_column: str | None = None,
    weights: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Completions with their `score` (one rubric) or aspect-aggregated `overall` (several rubrics)."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    _check_completions(completions, group_column)
    absolute = judgments.filter(pl.col("judge_kind") == "absolute")
    names = absolute["rubric"].unique().to_list()
    if not names:
        raise ValueError("no absolute judgments given (run_absolute_judge first, or use pairwise judgments)")
    agg = aggregate_aspects(absolute, weights, score=score)
    # Equal scores are ordered by the judges' mean expected score (from the logprob distributions),
    # then by id, so ties break on the judge's own probabilities rather than on row order.
    tiebreak = (
        absolute.filter(pl.col("parse_ok"))
        .group_by(pl.col("parent_id").alias("id"))
        .agg(pl.col("expected_score").cast(pl.Float64).mean().fill_null(0.0).alias("_tiebreak"))
    )
    base = completions.select(
        "id",
        pl.col(group_column).cast(pl.Utf8).alias("_group"),
        "text",
        _prompt_texts(completions, prompt_column),
    )
    scored = base.join(agg.select("id", pl.col("overall").alias("_score")), on="id", how="inner")
    scored = scored.join(tiebreak, on="id", how="left").with_columns(pl.col("_tiebreak").fill_null(0.0))
    return scored.filter(pl.col("_score").is_not_null())


def build_dpo_pairs(
    judgments: pl.DataFrame,
    completions: pl.DataFrame,
    min_margin: float = 1.0,
    *,
    score: str = "score",
    group_column: str = "parent_id",
    prompt_column: str | None = None,
    weights: Mapping[str, float] | None = None,
    min_pref_margin: float = 0.0,
) -> pl.DataFrame:
    """DPO pairs (prompt, chosen, rejected, chosen_score, rejected_score, margin, ...).

    From absolute judgments (one rubric, or several aggregated): best vs worst completion per prompt,
    kept when the score difference >= `min_margin`. From pairwise judgments only: consistent winners,
    kept when |2p - 1| >= `min_pref_margin`.
    """
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    if judgments.filter(pl.col("judge_kind") == "absolute").height == 0:
        return _pairs_from_pairwise(judgments, completions, min_pref_margin, group_column, prompt_column)
    scored = scored_completions(
        judgments,
        completions,
        score=score,
        group_column=group_column,
        prompt_column=prompt_column,
        weights=weights,
    )
    source = (
        "absolute"
        if judgments.filter(pl.col("judge_kind") == "absolute")["rubric"].n_unique() == 1
        else "multi-aspect"
    )
    ranked = scored.sort(["_group", "_score", "_tiebreak", "id"], descending=[False, True, True, False])
    out = (
        ranked.group_by("_group", maintain_order=True)
        .agg(
            pl.col("_prompt").first().alias("prompt"),
            pl.col("text").first().alias("chosen"),
            pl.col("text").last().alias("rejected"),
            pl.col("_score").first().alias("chosen_score"),
            pl.col("_score").last().alias("rejected_score"),
            pl.col("id").first().alias("chosen_id"),
            pl.col("id").last().alias("rejected_id"),
            pl.len().cast(pl.Int64).alias("n_candidates"),
        )
        .with_columns(
            (pl.col("chosen_score") - pl.col("rejected_score")).alias("margin"),
            pl.lit(source).alias("source"),
        )
        .rename({"_group": "prompt_id"})
        .filter((pl.col("n_candidates") >= 2) & (pl.col("margin") >= min_margin))
    )
    return out.select(list(DPO_SCHEMA)).cast(DPO_SCHEMA)  # type: ignore[arg-type]


def _pairs_from_pairwise(
    judgments: pl.DataFrame,
    completions: pl.DataFrame,
    min_pref_margin: float,
    group_column: str,
    prompt_column: str | None,
) -> pl.DataFrame:
    _check_completions(completions, group_column)
    outcomes = pair_outcomes(judgments).filter(pl.col("winner").is_not_null() & (pl.col("winner") != "tie"))
    info = completions.select(
        "id",
        "text",
        pl.col(group_column).cast(pl.Utf8).alias("_group"),
        _prompt_texts(completions, prompt_column),
    )
    by_id = {r["id"]: r for r in info.iter_rows(named=True)}
    recs = []
    for o in outcomes.iter_rows(named=True):
        winner = o["winner"]
        loser = o["b_id"] if winner == o["a_id"] else o["a_id"]
        if winner not in by_id or loser not in by_id:
            continue
        p_a = o["p_a_wins"]
        p_win = None if p_a is None else (p_a if winner == o["a_id"] else 1.0 - p_a)
        margin = 0.0 if p_win is None else abs(2 * p_win - 1)
        if margin < min_pref_margin:
            continue
        w, lo = by_id[winner], by_id[loser]
        recs.append(
            {
                "prompt_id": w["_group"],
                "prompt": w["_prompt"],
                "chosen": w["text"],
                "rejected": lo["text"],
                "chosen_score": p_win,
                "rejected_score": None if p_win is None else 1.0 - p_win,
                "margin": margin,
                "chosen_id": winner,
                "rejected_id": loser,
                "n_candidates": 2,
                "source": "pairwise",
            }
        )
    return pl.DataFrame(recs, schema=DPO_SCHEMA)


def best_of_n(
    judgments: pl.DataFrame,
    completions: pl.DataFrame,
    n: int = 1,
    *,
    min_score: float | None = None,
    score: str = "score",
    group_column: str = "parent_id",
    prompt_column: str | None = None,
    weights: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """The `n` best-scored completions of each prompt (rank 1 = best), optionally only those
    scoring at least `min_score`: rejection sampling / best-of-n filtering for SFT data."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    scored = scored_completions(
        judgments,
        completions,
        score=score,
        group_column=group_column,
        prompt_column=prompt_column,
        weights=weights,
    )
    if min_score is not None:
        scored = scored.filter(pl.col("_score") >= min_score)
    ranked = scored.sort(
        ["_group", "_score", "_tiebreak", "id"], descending=[False, True, True, False]
    ).with_columns(pl.int_range(1, pl.len() + 1).over("_group").alias("rank"))
    return ranked.filter(pl.col("rank") <= n).select(
        pl.col("_group").alias("prompt_id"),
        pl.col("_prompt").alias("prompt"),
        "id",
        "text",
        pl.col("_score").alias("score"),
        "rank",
    )
