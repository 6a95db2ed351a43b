"""The recipe's `filters` step: what the app's Filters tab does when you press Apply to run.

```yaml
  - kind: filters
    settings: {stage: completion, min_words: 4, max_words: 150, near_dup: 0.7, rouge_l_max: 0.8}
    rouge_l_to: seeds
    benchmark: {source: data/test.jsonl, text_columns: [text]}
```

It re-decides one stage's rows as generated (each id once, with the IFD scores an `ifd` step wrote) with
`filters.apply.apply_filters` and records the decisions with `record_filter_drops`, exactly as the Filters
tab does, so a recipe saved from the app replays its drops to the same filter rows. Decisions are rows of
their own (stage "filter"): nothing generated is rewritten, and applying the same settings twice adds none.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..filters.apply import FilterSettings, apply_filters, record_filter_drops
from ..filters.ifd import with_ifd
from ..runs import RunStore
from .hygiene_steps import BenchmarkSource, load_benchmark_source

__all__ = ["FiltersStep", "filter_frame", "reference_texts", "run_filters_step"]


class FiltersStep(BaseModel):
    """Re-filter one stage's rows with every filter's threshold and record the drops (the Filters tab's Apply)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["filters"] = "filters"
    """Step type."""
    label: str | None = None
    """A name for this step in progress output and the manifest (default: its kind and position)."""
    settings: FilterSettings = Field(default_factory=FilterSettings)
    """Which stage is filtered and each filter's threshold (None turns a filter off; see FilterSettings)."""
    rouge_l_to: Literal["seeds"] | None = None
    """What the ROUGE-L filter compares with: 'seeds' (the seed instructions, or for answers the seeds'
    example outputs), as the Filters tab does; None when `settings.rouge_l_max` is off."""
    benchmark: BenchmarkSource | None = None
    """Test items for decontamination (a file, save_to_disk folder or hf:// dataset); None: off."""


def filter_frame(rows: pl.DataFrame, stage: str) -> pl.DataFrame:
    """The rows of `stage` as generated (each id once), with the IFD scores an IFD step wrote."""
    if rows.height == 0 or "stage" not in rows.columns:
        return pl.DataFrame(schema={"id": pl.Utf8, "text": pl.Utf8, "status": pl.Utf8})
    return with_ifd(rows).filter(pl.col("stage") == stage).unique("id", keep="first", maintain_order=True)


def reference_texts(seeds: pl.DataFrame, stage: str) -> pl.DataFrame:
    """What the ROUGE-L filter compares with: the seed instructions, or (answers) the seeds' example outputs."""
    if stage == "instruction":
        return seeds.select(pl.col("id").cast(pl.Utf8), pl.col("instruction").alias("text"))
    out = seeds.select("id", "instances").explode("instances").drop_nulls("instances")
    out = out.with_columns(pl.col("instances").struct.field("output").alias("text")).drop_nulls("text")
    return out.select(pl.col("id").cast(pl.Utf8) + "/output", "text").filter(
        pl.col("text").str.strip_chars() != ""
    )


def run_filters_step(step: FiltersStep, store: RunStore, seeds: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Apply `step` to the run's rows and record the decisions; returns the decided rows and a line
    saying how many were dropped and how many filter rows were written."""
    if step.settings.rouge_l_max is not None and step.rouge_l_to is None:
        raise ValueError("filters step: settings.rouge_l_max is set but rouge_l_to is not: write rouge_l_to: seeds")
    rows = filter_frame(store.rows(), step.settings.stage)
    refs = reference_texts(seeds, step.settings.stage) if step.rouge_l_to == "seeds" else None
    bench = load_benchmark_source(step.benchmark) if step.benchmark is not None else None
    result = apply_filters(rows, step.settings, references=refs, benchmark=bench)
    written = record_filter_drops(store, result)
    note = (f"filters: {result.dropped.height} of {result.evaluated} {step.settings.stage} rows dropped; "
            f"{written} decision rows written")  # fmt: skip
    return result.rows, note
