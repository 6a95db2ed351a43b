"""Absolute grading: one score per answer, constrained by a grammar, with its probability distribution.

For every judged row the judge writes one line of reasoning and `Score: n` (the grammar allows only
the rubric's integers). The parsed score is the verdict; the logprobs at the score token give a
distribution over the scale (see `workbench.judge.distribution`), from which the expected score and
the uncertainty (standard deviation, entropy) follow. Base models get a plain prompt ending in
"Feedback:"; chat models get the same text as a user message. Rows are written to the run as they
finish; their id hashes (judged row, prompt, rubric version, parameters, judge model), so calling
again resumes and a new rubric version judges afresh.
"""

from __future__ import annotations

import threading
from typing import Any

import polars as pl

from ..engine import Backend, Generation, SamplingParams
from ..engine.protocol import ProgressCallback
from ..runs import RunStore, row_id
from . import runner
from .config import JudgeConfig
from .distribution import score_stats, value_distribution
from .grammar import score_grammar
from .parsing import parse_score
from .rubric import Rubric, record_rubric
from .runner import with_judgment_schema


def absolute_params(rubric: Rubric, config: JudgeConfig) -> SamplingParams:
    """Sampling parameters of an absolute judgment (grammar and logprobs included)."""
    return config.sampling_params(score_grammar(rubric.scale, max_reasoning_chars=config.max_reasoning_chars))


def plan_absolute(
    backend: Backend, rows: pl.DataFrame, rubric: Rubric, config: JudgeConfig
) -> list[runner.JudgeTask]:
    """One task per judged row (ids computed up front, nothing run)."""
    if "id" not in rows.columns:
        raise ValueError("the rows to judge need an 'id' column (the judged row id becomes parent_id)")
    if config.answer_column not in rows.columns:
        raise ValueError(
            f"the rows to judge have no {config.answer_column!r} column (columns: {rows.columns}); "
            "set JudgeConfig(answer_column=...)"
        )
    style = runner.judge_style(backend, config)
    params = absolute_params(rubric, config)
    instructions = runner.instruction_texts(rows, config)
    answers = [a if isinstance(a, str) else "" for a in rows[config.answer_column].to_list()]
    references = runner.column_or_none(rows, config.reference_column)
    authors = runner.judged_model_ids(rows)
    tasks = []
    for parent, instruction, answer, ref, author in zip(
        rows["id"].to_list(), instructions, answers, references, authors, strict=True
    ):
        extra = {"reference_answer": ref} if ref else {}
        body = rubric.render(instruction, answer, **extra)
        key = row_id(
            "judgment",
            parent,
            body,
            {
                "kind": "absolute",
                "rubric": rubric.version,
                "params": params.as_record(),
                "judge": backend.model_id,
                "style": style,
                "suffix": config.completion_suffix,
            },
            params.seed,
        )
        request, shown = runner.make_request(style, body, params, key, config)
        sk = runner.skeleton(key, parent, backend, shown, params, style)
        sk.update(
            judge_kind="absolute",
            rubric=rubric.name,
            rubric_version=rubric.version,
            answer_chars=len(answer),
            judged_model_id=author,
        )
        tasks.append(runner.JudgeTask(key, request, sk))
    return tasks


def absolute_row(
    task: runner.JudgeTask,
    gen: Generation,
    rubric: Rubric,
    *,
    backend: Backend | None = None,
    final: bool = True,
) -> dict[str, Any] | None:
    """The judgment row of one finished generation (None: call again with final=True to resolve)."""
    row = {**task.skeleton, **runner.generation_fields(gen)}
    if not gen.ok:
        row.update(
            parse_ok=False,
            status="error",
            reason=f"generation {gen.finish_reason}: {gen.error or ''}".strip(),
        )
        return row
    parsed = parse_score(gen.text, rubric.scale, finish_reason=gen.finish_reason)
    row.update(parse_ok=parsed.ok, status="kept" if parsed.ok else "error", reason=parsed.reason)
    if parsed.ok:
        row["score"] = parsed.value
    candidates = [str(s) for s in rubric.scale]
    multi_digit = any(len(c) > 1 for c in candidates)
    resolver = None
    if multi_digit and backend is not None and parsed.start is not None:
        if not final:
            return None
        resolver = runner.score_resolver(backend, gen, gen.text[: parsed.start])
    dist = value_distribution(gen.logprobs, gen.text, parsed.start, candidates, resolver=resolver)
    if dist is not None and sum(dist.probs.values()) > 0:
        probs = {int(k): v for k, v in dist.probs.items()}
        stats = score_stats(probs)
        row.update(
            score_distribution=runner.dumps({str(k): round(v, 6) for k, v in probs.items()}),
            expected_score=stats.expected,
            score_std=stats.std,
            score_entropy=stats.entropy,
            score_coverage=dist.coverage,
            distribution_approx=dist.approx,
        )
    return row


def run_absolute_judge(
    backend: Backend,
    store: RunStore,
    rows: pl.DataFrame,
    rubric: Rubric,
    config: JudgeConfig | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Grade every row of `rows` (columns `id`, the instruction, the answer) with `rubric`.

    Judgment rows go to `store` as they finish (stage 'judgment', parent_id = judged row id).
    Rows the run already has are skipped. Returns the judgment rows of these inputs in input order
    (cancelled ones are absent). Parse failures are rows with `parse_ok=False`, the raw output in
    `text` and the reason in `reason`.
    """
    config = config or JudgeConfig()
    tasks = plan_absolute(backend, rows, rubric, config)
    record_rubric(store, rubric)
    resolve = config.resolve_multi_digit

    def make_row(task: runner.JudgeTask, gen: Generation, final: bool) -> dict[str, Any] | None:
        return absolute_row(task, gen, rubric, backend=backend if resolve else None, final=final)

    runner.run_tasks(backend, store, tasks, make_row, on_progress=on_progress, cancel=cancel)
    return runner.collect(store, [t.id for t in tasks])


def score_distributions(judgments: pl.DataFrame) -> pl.DataFrame:
    """Long frame (id, rubric, rubric_version, score, probability) from the JSON distributions."""
    judgments = with_judgment_schema(judgments)  # rows straight from a run may lack some columns
    schema = {
        "id": pl.Utf8,
        "rubric": pl.Utf8,
        "rubric_version": pl.Utf8,
        "score": pl.Int64,
        "probability": pl.Float64,
    }
    records = []
    import json

    for rid, name, version, dist in judgments.select(
        "id", "rubric", "rubric_version", "score_distribution"
    ).iter_rows():
        if dist:
            for k, v in json.loads(dist).items():
                records.append(
                    {"id": rid, "rubric": name, "rubric_version": version, "score": int(k), "probability": v}
                )
    return pl.DataFrame(records, schema=schema)
