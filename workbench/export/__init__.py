"""Export a run as a Hugging Face `datasets` dataset in the formats TRL trainers expect.

```python
from workbench.export import ExportSpec, export_run
export_run(store, ExportSpec(format="sft", kind="parquet", path="exports/sft"))
export_run(store, ExportSpec(format="dpo", kind="jsonl", path="exports/dpo", min_margin=1))
export_run(store, ExportSpec(format="sft", stage="conversation", path="exports/chats"))  # multi-turn
```

Conversation rows (stage "conversation") export as TRL's conversational layouts (see `formats`); DPO
pairs them by `context_id` (alternative last replies to one context).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..filters.apply import with_filter_drops
from ..runs import RunStore
from .card import dataset_card, diversity_table, simple_diversity
from .formats import dpo_frame, judged_completions, prompt_completion_frame, sft_frame
from .io import EXPORT_MARKER, ExportKind, features_for, load_export, push_to_hub, save_dataset, to_dataset
from .versions import RubricChoice, choose_rubric_versions, rubric_versions

__all__ = [
    "EXPORT_MARKER",
    "ExportKind",
    "ExportResult",
    "ExportSpec",
    "RubricChoice",
    "build_export_frame",
    "choose_rubric_versions",
    "dataset_card",
    "diversity_table",
    "dpo_frame",
    "export_run",
    "features_for",
    "judged_completions",
    "load_export",
    "prompt_completion_frame",
    "push_to_hub",
    "rubric_versions",
    "save_dataset",
    "sft_frame",
    "simple_diversity",
    "to_dataset",
]

ExportFormat = Literal["sft", "dpo", "prompt_completion"]


class ExportSpec(BaseModel):
    """One dataset to write from a run."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    """'sft' (conversational messages), 'prompt_completion', or 'dpo' (prompt/chosen/rejected)."""
    path: str
    """Output folder (relative paths are relative to the run directory's parent when run from a recipe)."""
    kind: ExportKind = "parquet"
    """'parquet' or 'jsonl' (Hub layout: data/train.*), or 'disk' (`Dataset.save_to_disk`)."""
    overwrite: bool = False
    """Replace an existing export at `path` (never a folder that is not an export)."""
    stage: Literal["completion", "evolution", "conversation"] = "completion"
    """Which rows are the answers (SFT/prompt-completion) or the candidates (DPO); 'conversation': the
    multi-turn rows (whole conversations; DPO candidates are alternative last replies)."""
    rubric: str | None = None
    """Rubric whose scores to use when the run was judged with several."""
    rubric_version: str | None = None
    """Version hash (or a unique prefix) of the rubric whose scores to use; it also picks the rubric.
    None: the latest version of each rubric (the version of its most recently written judgment). Scores
    of different versions are never mixed; the dataset card states the version used."""
    min_score: float | None = None
    """SFT/prompt-completion: keep only answers a judge scored at least this (None: keep all kept rows)."""
    best_of: int | None = Field(None, ge=1)
    """SFT/prompt-completion: keep only the n best-scored answers of each prompt (best-of-n / rejection
    sampling; needs judged answers). None: every answer."""
    min_margin: float = Field(1.0, gt=0)
    """DPO: smallest score difference between the chosen and the rejected answer."""
    score: Literal["score", "expected_score"] = "score"
    """DPO: rank answers by the judge's parsed score, or by its expected score under the score-token
    distribution (finer-grained: fewer ties among answers of a small model)."""
    conversational: bool = False
    """DPO/prompt-completion: message lists instead of plain strings (SFT is always conversational)."""
    system_prompt: str | None = None
    """SFT: a system message put first in every conversation (None: none)."""


@dataclass
class ExportResult:
    """Where an export went and what it holds."""

    path: Path
    format: str
    kind: str
    rows: int
    frame: pl.DataFrame


def build_export_frame(rows: pl.DataFrame, spec: ExportSpec) -> pl.DataFrame:
    """The export's rows as a polars frame (before conversion to a `datasets.Dataset`). Rows a Filters
    Apply dropped are not kept rows here (`with_filter_drops`)."""
    rows = with_filter_drops(rows)
    choice = choose_rubric_versions(rows, rubric=spec.rubric, rubric_version=spec.rubric_version)
    rows = choice.apply(rows)
    rubric = spec.rubric or (next(iter(choice.versions)) if spec.rubric_version else None)
    if spec.format == "dpo":
        from ..judge import build_dpo_pairs

        answers = rows.filter((pl.col("stage") == spec.stage) & (pl.col("status") == "kept"))
        answers = answers.unique("id", keep="first", maintain_order=True)
        judgments = rows.filter((pl.col("stage") == "judgment") & (pl.col("status") == "kept"))
        if "parent_id" in judgments.columns:
            judgments = judgments.filter(pl.col("parent_id").is_in(answers["id"].to_list()))
        if rubric is not None and "rubric" in judgments.columns:
            judgments = judgments.filter(pl.col("rubric") == rubric)
        if judgments.height == 0:
            raise ValueError(
                f"DPO export needs parsed judgments of the {spec.stage} rows, and this run has none"
                + (f" from rubric {rubric!r}" if rubric else "")
                + ": add a judge step (or run the judge) first"
            )
        group = "context_id" if spec.stage == "conversation" else "parent_id"  # same context, other replies
        pairs = build_dpo_pairs(judgments, answers, min_margin=spec.min_margin, score=spec.score, group_column=group)
        return dpo_frame(pairs, answers, judgments, conversational=spec.conversational)
    scored = judged_completions(rows, stage=spec.stage, rubric=rubric)
    if spec.min_score is not None:
        scored = scored.filter(pl.col("score") >= spec.min_score)
    if spec.best_of is not None:
        scored = _best_of(rows, scored, spec)
    if spec.format == "sft":
        return sft_frame(scored, system_prompt=spec.system_prompt)
    return prompt_completion_frame(scored, conversational=spec.conversational)


def _best_of(rows: pl.DataFrame, scored: pl.DataFrame, spec: ExportSpec) -> pl.DataFrame:
    """The `spec.best_of` best-scored answers of each prompt (ranked by the judge's best_of_n)."""
    from ..judge import best_of_n

    judgments = rows.filter((pl.col("stage") == "judgment") & (pl.col("status") == "kept"))
    if judgments.height == 0 or scored["score"].drop_nulls().len() == 0:
        raise ValueError("best_of needs judged answers: run an absolute judge on them first")
    judgments = judgments.filter(pl.col("rubric") == scored["rubric"].drop_nulls()[0])
    best = best_of_n(judgments, scored.filter(pl.col("score").is_not_null()), spec.best_of or 1,
                     score="score" if spec.score == "score" else "expected_score")  # fmt: skip
    return scored.filter(pl.col("id").is_in(best["id"].to_list()))


def _answer_texts(frame: pl.DataFrame, fmt: str) -> list[str]:
    if fmt == "sft":
        return [m[-1]["content"] for m in frame["messages"].to_list() if m]
    col = "chosen" if fmt == "dpo" else "completion"
    values = frame[col].to_list()
    return [v[-1]["content"] if isinstance(v, list) else v for v in values if v]


def export_run(
    store: RunStore | pl.DataFrame,
    spec: ExportSpec,
    *,
    recipe: dict[str, Any] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> ExportResult:
    """Build the dataset `spec` asks for from a run (or its rows) and write it with its card."""
    rows = with_filter_drops(store.rows() if isinstance(store, RunStore) else store)  # Filters drops count
    if recipe is None and isinstance(store, RunStore):
        recipe = store.manifest.get("recipe")
    frame = build_export_frame(rows, spec)
    uses_scores = spec.format == "dpo" or spec.min_score is not None or spec.best_of is not None
    choice = choose_rubric_versions(rows, rubric=spec.rubric, rubric_version=spec.rubric_version)
    if frame.height == 0:
        raise ValueError(
            f"nothing to export as {spec.format}: no kept {spec.stage} rows"
            + (" with a score margin that large" if spec.format == "dpo" else "")
            + (f" scoring at least {spec.min_score}" if spec.min_score is not None else "")
        )
    out = Path(spec.path)
    if not out.is_absolute() and base_dir is not None:
        out = Path(base_dir) / out
    name = title or (store.path.name if isinstance(store, RunStore) else "synthetic data")
    card = dataset_card(
        title=f"{name} ({spec.format})",
        fmt=spec.format,
        dataset=frame,
        source_rows=rows,
        recipe=recipe,
        diversity_texts=_answer_texts(frame, spec.format),
        description=(recipe or {}).get("description", ""),
        rubric_notes=choice.notes if (uses_scores or "score" in frame.columns) else None,
    )
    tags = ["synthetic", "trl", spec.format.replace("_", "-")]
    save_dataset(to_dataset(frame), out, spec.kind, card=card, tags=tags, overwrite=spec.overwrite)
    return ExportResult(out, spec.format, spec.kind, frame.height, frame)
