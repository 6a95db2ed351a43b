"""Pairwise grading: which of two answers is better, asked in both orders to expose position bias.

Every pair (a, b) is judged as "A=a, B=b" (order 'AB') and, with `both_orders`, as "A=b, B=a"
(order 'BA'). A verdict is positional ('A', 'B', 'tie'); `preferred_id` maps it back to the answer's
row id. The two orders of a pair agree when they prefer the same answer (or both say tie); the
position-flip rate is the share of pairs, among those with both verdicts parsed, where they do not.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import polars as pl

from ..engine import Backend, Generation, SamplingParams
from ..engine.protocol import ProgressCallback
from ..runs import RunStore, content_hash, row_id
from . import runner
from .config import JudgeConfig
from .distribution import value_distribution
from .grammar import verdict_grammar
from .parsing import parse_verdict
from .rubric import Rubric, record_rubric
from .runner import with_judgment_schema

PAIR_COLUMNS = ("a_id", "a_text", "b_id", "b_text")


def pair_id(a_id: str, b_id: str) -> str:
    """Stable id of the pair (a, b) in the order given (where human 'human_pref' labels are keyed)."""
    return content_hash(["pair", a_id, b_id])


def make_pairs(
    left: pl.DataFrame,
    right: pl.DataFrame,
    *,
    on: str = "instruction",
    answer_column: str = "text",
    keep: tuple[str, ...] = ("input",),
) -> pl.DataFrame:
    """Pair answers to the same instruction: columns pair_id, instruction, a_id, a_text, b_id, b_text
    (+ a_model_id/b_model_id when the frames have model_id). `left` answers are a, `right` are b."""
    for name, df in (("left", left), ("right", right)):
        missing = {"id", on, answer_column} - set(df.columns)
        if missing:
            raise ValueError(f"{name} frame lacks columns {sorted(missing)} (has {df.columns})")
    extra_l = [c for c in keep if c in left.columns and c != on]
    sel_l = [
        pl.col(on),
        pl.col("id").alias("a_id"),
        pl.col(answer_column).alias("a_text"),
        *map(pl.col, extra_l),
    ]
    sel_r = [pl.col(on), pl.col("id").alias("b_id"), pl.col(answer_column).alias("b_text")]
    if "model_id" in left.columns:
        sel_l.append(pl.col("model_id").alias("a_model_id"))
    if "model_id" in right.columns:
        sel_r.append(pl.col("model_id").alias("b_model_id"))
    pairs = left.select(sel_l).join(right.select(sel_r), on=on, how="inner")
    ids = [pair_id(a, b) for a, b in zip(pairs["a_id"], pairs["b_id"], strict=True)]
    front = ["pair_id", on, *extra_l, "a_id", "a_text", "b_id", "b_text"]
    pairs = pairs.with_columns(pl.Series("pair_id", ids, dtype=pl.Utf8))
    return pairs.select(*front, *[c for c in pairs.columns if c not in front])


def pairwise_params(rubric: Rubric, config: JudgeConfig) -> SamplingParams:
    return config.sampling_params(verdict_grammar(rubric.allow_ties, max_reasoning_chars=config.max_reasoning_chars))


def plan_pairwise(
    backend: Backend, pairs: pl.DataFrame, rubric: Rubric, config: JudgeConfig
) -> list[runner.JudgeTask]:
    missing = set(PAIR_COLUMNS) - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs need columns {PAIR_COLUMNS}; missing {sorted(missing)} (use make_pairs)")
    style = runner.judge_style(backend, config)
    params = pairwise_params(rubric, config)
    instructions = runner.instruction_texts(pairs, config)
    a_models = runner.column_or_none(pairs, "a_model_id")
    b_models = runner.column_or_none(pairs, "b_model_id")
    orders = ("AB", "BA") if config.both_orders else ("AB",)
    tasks = []
    for rec, instruction, am, bm in zip(
        pairs.iter_rows(named=True), instructions, a_models, b_models, strict=True
    ):
        pid = rec.get("pair_id") or pair_id(rec["a_id"], rec["b_id"])
        sides = {"a": (rec["a_id"], rec["a_text"] or "", am), "b": (rec["b_id"], rec["b_text"] or "", bm)}
        # Few-shot examples (workbench.judge.fewshot) reach the template as a variable.
        extra = {"fewshot_examples": json.loads(rec["fewshot_examples"])} if rec.get("fewshot_examples") else {}
        for order in orders:
            first, second = (sides["a"], sides["b"]) if order == "AB" else (sides["b"], sides["a"])
            body = rubric.render_pairwise(instruction, first[1], second[1], **extra)
            key = row_id(
                "judgment",
                first[0],
                body,
                {
                    "kind": "pairwise",
                    "rubric": rubric.version,
                    "params": params.as_record(),
                    "other": second[0],
                    "judge": backend.model_id,
                    "style": style,
                    "suffix": config.completion_suffix,
                },
                params.seed,
            )
            request, shown = runner.make_request(style, body, params, key, config)
            sk = runner.skeleton(key, first[0], backend, shown, params, style)
            sk.update(
                judge_kind="pairwise",
                rubric=rubric.name,
                rubric_version=rubric.version,
                pair_id=pid,
                pair_order=order,
                other_id=second[0],
                answer_chars=len(first[1]),
                other_chars=len(second[1]),
                judged_model_id=first[2],
                other_model_id=second[2],
            )
            tasks.append(runner.JudgeTask(key, request, sk))
    return tasks


def pairwise_row(task: runner.JudgeTask, gen: Generation, rubric: Rubric) -> dict[str, Any]:
    row = {**task.skeleton, **runner.generation_fields(gen)}
    if not gen.ok:
        row.update(
            parse_ok=False,
            status="error",
            reason=f"generation {gen.finish_reason}: {gen.error or ''}".strip(),
        )
        return row
    parsed = parse_verdict(gen.text, rubric.allow_ties, finish_reason=gen.finish_reason)
    row.update(parse_ok=parsed.ok, status="kept" if parsed.ok else "error", reason=parsed.reason)
    if parsed.ok:
        row["verdict"] = parsed.value
        row["preferred_id"] = {"A": row["parent_id"], "B": row["other_id"]}.get(str(parsed.value))
    candidates = ["A", "B", "tie"] if rubric.allow_ties else ["A", "B"]
    dist = value_distribution(gen.logprobs, gen.text, parsed.start, candidates)
    if dist is not None and sum(dist.probs.values()) > 0:
        row.update(
            verdict_distribution=runner.dumps({k: round(v, 6) for k, v in dist.probs.items()}),
            score_coverage=dist.coverage,
            distribution_approx=dist.approx,
        )
    return row


def run_pairwise_judge(
    backend: Backend,
    store: RunStore,
    pairs: pl.DataFrame,
    rubric: Rubric,
    config: JudgeConfig | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Judge every pair (columns a_id, a_text, b_id, b_text and the instruction) in both orders.

    Rows go to `store` as they finish (parent_id = the answer shown first, other_id = the second).
    Returns the judgment rows of these pairs, two per pair (AB then BA), resumable like the absolute judge.
    """
    config = config or JudgeConfig()
    tasks = plan_pairwise(backend, pairs, rubric, config)
    record_rubric(store, rubric)

    def make_row(task: runner.JudgeTask, gen: Generation, final: bool) -> dict[str, Any]:
        return pairwise_row(task, gen, rubric)

    runner.run_tasks(backend, store, tasks, make_row, on_progress=on_progress, cancel=cancel)
    return runner.collect(store, [t.id for t in tasks])


def pair_outcomes(judgments: pl.DataFrame) -> pl.DataFrame:
    """One row per (rubric version, pair): both verdicts, whether they agree, the combined winner.

    `winner` is the preferred answer id when both orders agree (or the only order ran), 'tie' when
    both say tie, and null when they disagree (a position flip) or a verdict failed to parse.
    `p_a_wins` averages, over the orders, the probability that the pair's answer a wins.
    """
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    pw = judgments.filter(pl.col("judge_kind") == "pairwise")
    recs = []
    for (name, version, pid), grp in pw.group_by(
        ["rubric", "rubric_version", "pair_id"], maintain_order=True
    ):
        by_order = {r["pair_order"]: r for r in grp.iter_rows(named=True)}
        ab, ba = by_order.get("AB"), by_order.get("BA")
        a_id = ab["parent_id"] if ab else (ba["other_id"] if ba else None)
        b_id = ab["other_id"] if ab else (ba["parent_id"] if ba else None)
        prefs = [_pref(r) for r in (ab, ba) if r is not None]
        parsed = [p for p in prefs if p is not None]
        both = len(parsed) == 2
        agree = both and parsed[0] == parsed[1]
        winner = None
        if parsed and (agree or len(prefs) == 1):
            winner = parsed[0]
        p_a = [x for x in (_p_a_wins(ab, a_id), _p_a_wins(ba, a_id)) if x is not None]
        recs.append(
            {
                "rubric": name,
                "rubric_version": version,
                "pair_id": pid,
                "a_id": a_id,
                "b_id": b_id,
                "verdict_ab": ab["verdict"] if ab else None,
                "verdict_ba": ba["verdict"] if ba else None,
                "both_parsed": both,
                "consistent": agree if both else None,
                "winner": winner,
                "p_a_wins": sum(p_a) / len(p_a) if p_a else None,
            }
        )
    schema = {
        "rubric": pl.Utf8,
        "rubric_version": pl.Utf8,
        "pair_id": pl.Utf8,
        "a_id": pl.Utf8,
        "b_id": pl.Utf8,
        "verdict_ab": pl.Utf8,
        "verdict_ba": pl.Utf8,
        "both_parsed": pl.Boolean,
        "consistent": pl.Boolean,
        "winner": pl.Utf8,
        "p_a_wins": pl.Float64,
    }
    return pl.DataFrame(recs, schema=schema)


def _pref(row: dict[str, Any] | None) -> str | None:
    if row is None or not row["parse_ok"]:
        return None
    return "tie" if row["verdict"] == "tie" else row["preferred_id"]


def _p_a_wins(row: dict[str, Any] | None, a_id: str | None) -> float | None:
    if row is None or not row.get("verdict_distribution"):
        return None
    d = json.loads(row["verdict_distribution"])
    p_first, p_second = d.get("A", 0.0), d.get("B", 0.0)
    return p_first if row["parent_id"] == a_id else p_second


def flip_rates(judgments: pl.DataFrame) -> pl.DataFrame:
    """Per rubric version: pairs, pairs with both orders parsed, flips, flip_rate, first-position rate
    (share of parsed verdicts that chose whatever was shown first), ties and parse failures."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    outcomes = pair_outcomes(judgments)
    pw = judgments.filter(pl.col("judge_kind") == "pairwise")
    verdicts = pw.group_by(["rubric", "rubric_version"], maintain_order=True).agg(
        pl.len().alias("judgments"),
        (~pl.col("parse_ok")).sum().alias("parse_failures"),
        (pl.col("verdict") == "A").sum().alias("first_position"),
        (pl.col("verdict") == "tie").sum().alias("ties"),
        pl.col("parse_ok").sum().alias("parsed"),
    )
    pairs = outcomes.group_by(["rubric", "rubric_version"], maintain_order=True).agg(
        pl.len().alias("pairs"),
        pl.col("both_parsed").sum().alias("both_parsed"),
        (pl.col("both_parsed") & ~pl.col("consistent").fill_null(True)).sum().alias("flips"),
    )
    return (
        pairs.join(verdicts, on=["rubric", "rubric_version"], how="left")
        .with_columns(
            (pl.col("flips") / pl.col("both_parsed")).alias("flip_rate"),
            (pl.col("first_position") / pl.col("parsed")).alias("first_position_rate"),
        )
        .drop("parsed")
    )


def pairs_within_groups(
    rows: pl.DataFrame, *, group_column: str = "parent_id", answer_column: str = "text"
) -> pl.DataFrame:
    """Pair the first two answers of every group (e.g. two completions of one prompt), in run order,
    as `make_pairs` does: pair_id, instruction/prompt/input, a_id, a_text, b_id, b_text."""
    if group_column not in rows.columns:
        raise ValueError(f"rows have no {group_column!r} column to pair answers by (columns: {rows.columns})")
    ranked = rows.with_columns(pl.int_range(pl.len()).over(group_column).alias("_k"))
    keep = tuple(c for c in ("instruction", "prompt", "input") if c in rows.columns)
    left, right = ranked.filter(pl.col("_k") == 0), ranked.filter(pl.col("_k") == 1)
    return make_pairs(left, right, on=group_column, answer_column=answer_column, keep=keep)
