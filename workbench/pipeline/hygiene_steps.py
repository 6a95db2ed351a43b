"""Recipe steps that drop rows already in the run: near duplicates (`near_dup`) and benchmark
contamination (`decontam`).

```yaml
  - kind: near_dup
    rows_from: instructions
    threshold: 0.7
    references: [runs/earlier-run, data/old_instructions.jsonl]
  - kind: decontam
    rows_from: completions
    columns: [instruction, text]
    benchmarks:
      - {source: benchmarks/gsm8k_test.jsonl, text_columns: [question, answer], id_column: id}
      - {source: "hf://openai/gsm8k:test", config: main, text_columns: [question, answer]}
```

Both read the kept rows of one stage of the run and decide them with the filter functions
(`filters.near_dup.near_duplicates`, `filters.decontam.decontaminate`). A drop is recorded the way a
Filters Apply records one (`filters.apply`): a row of stage "filter" whose `parent_id` is the dropped
row, `status` "dropped", `reason` the filter's stable reason ("near_duplicate", "contamination:<name>")
and `text` what it matched: the row or reference row and its ROUGE-L, or the benchmark item and the
shared span. `with_filter_drops` applies them wherever the run is read (later steps, Inspector,
Export), and no generated row is rewritten. A resumed run re-decides only rows still kept, so running a
step twice adds no rows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..filters.apply import FILTER_STAGE, with_filter_drops
from ..filters.decontam import Benchmark, DecontamConfig, decontaminate, load_benchmark
from ..filters.near_dup import NEAR_DUPLICATE, NearDupConfig, near_duplicates
from ..runs import RunStore, row_id

__all__ = [
    "BenchmarkSource",
    "DecontamStep",
    "NearDupStep",
    "ReferenceSet",
    "load_benchmark_source",
    "load_reference",
    "run_hygiene_step",
    "step_rows",
]

RowsFrom = Literal["instructions", "completions", "evolutions", "instances"]
RowColumn = Literal["text", "instruction", "input"]
STAGE_OF: dict[str, str] = {
    "instructions": "instruction",
    "completions": "completion",
    "evolutions": "evolution",
    "instances": "instance",
}
_DETAIL_CHARS = 80


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReferenceSet(_Strict):
    """Rows a near duplicate may repeat from outside this run: an earlier run or a dataset."""

    path: str
    """A run directory (its kept rows of `stage`), a dataset file (.jsonl/.json/.parquet/.csv) or a
    `datasets` save_to_disk folder."""
    column: str = "text"
    """Column holding the text (dataset files and folders; run rows always use `text`)."""
    id_column: str | None = None
    """Column naming a row in drop reasons (default: the run's row id, or the row number)."""
    stage: str | None = None
    """Run directories: which stage's rows (default: the stage the step filters)."""
    split: str | None = None
    """save_to_disk folders holding several splits: which one."""
    name: str | None = None
    """Shown in drop reasons (default: the folder or file name)."""


class BenchmarkSource(_Strict):
    """A benchmark's test items: a local file or folder, or a Hugging Face dataset."""

    source: str
    """A file (.jsonl/.json/.parquet/.csv), a `datasets` save_to_disk folder, or 'hf://<dataset>[:split]'
    (loaded with `datasets.load_dataset`, which needs the network or the Hugging Face cache)."""
    text_columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1)
    """Columns holding an item's text, joined with a newline (e.g. [question, answer])."""
    id_column: str | None = None
    """Column naming an item in drop reasons (default: the item's row number)."""
    config: str | None = None
    """hf:// datasets with several configurations: which one (gsm8k's 'main')."""
    split: str | None = None
    """Which split when the source has several (default 'test'; 'hf://name:split' sets it too)."""
    name: str | None = None
    """Shown in drop reasons, 'contamination:<name>' (default: the file, folder or dataset name)."""


class NearDupStep(_Strict):
    """Drop rows that nearly repeat an earlier kept row of the run or a row of a reference set."""

    kind: Literal["near_dup"] = "near_dup"
    """Step type."""
    label: str | None = None
    """A name for this step in progress output and the manifest (default: its kind and position)."""
    rows_from: RowsFrom = "instructions"
    """Which kept rows of this run are decided (in the order they were written)."""
    column: Literal["text", "instruction"] = "text"
    """Which column of those rows is compared (completions: 'text' is the answer)."""
    threshold: float = Field(0.7, gt=0.0, le=1.0)
    """ROUGE-L F1 at which a row counts as a near duplicate."""
    compare: Literal[">=", ">"] = ">="
    """'>=' drops at the threshold itself; '>' is the self-instruct paper's strict rule."""
    references: list[ReferenceSet] = Field(default_factory=list)
    """Earlier runs or datasets a row may not repeat either (a plain string is taken as its `path`)."""
    num_perm: int = Field(128, ge=8, le=2048)
    """MinHash permutations proposing candidate pairs (the exact ROUGE-L decides)."""
    seed: int = 1
    """Seed of the MinHash permutations."""

    @field_validator("references", mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, str) else v for v in value]
        return value


class DecontamStep(_Strict):
    """Drop rows that share a word n-gram with a benchmark's test items."""

    kind: Literal["decontam"] = "decontam"
    """Step type."""
    label: str | None = None
    """A name for this step in progress output and the manifest (default: its kind and position)."""
    rows_from: RowsFrom = "completions"
    """Which kept rows of this run are checked."""
    columns: list[RowColumn] = Field(default_factory=lambda: list[RowColumn](["text"]), min_length=1)
    """Columns of those rows that are checked; a row is dropped when any of them overlaps."""
    n: int = Field(13, ge=1, le=64)
    """Words per n-gram (13: GPT-3 and lm-evaluation-harness). Smaller flags more."""
    short_items: Literal["skip", "whole"] = "skip"
    """Benchmark items shorter than `n` words: 'skip' them, or match the 'whole' item."""
    benchmarks: list[BenchmarkSource] = Field(min_length=1)
    """The benchmarks (a plain string is taken as its `source`)."""

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _source_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"source": v} if isinstance(v, str) else v for v in value]
        return value


HygieneStep = NearDupStep | DecontamStep


# -- reading ------------------------------------------------------------------------------------------
def step_rows(step: HygieneStep, store: RunStore | None) -> pl.DataFrame:
    """The kept rows of the step's stage (each id once, in write order), Filters drops applied."""
    if store is None:
        return pl.DataFrame(schema={"id": pl.Utf8, "text": pl.Utf8})
    rows = with_filter_drops(store.rows())
    kept = rows.filter(
        (pl.col("stage") == STAGE_OF[step.rows_from]) & (pl.col("status").fill_null("kept") == "kept")
    )
    return kept.unique("id", keep="first", maintain_order=True)


def _load_disk(path: Path, split: str | None, what: str) -> Any:
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(str(path))
    if isinstance(data, DatasetDict):
        if split is None:
            split = "test" if "test" in data else (next(iter(data)) if len(data) == 1 else None)
        if split is None or split not in data:
            raise ValueError(f"{what} {path} holds splits {list(data)}: set split: to one of them")
        data = data[split]
    return data


def load_reference(ref: ReferenceSet, stage: str) -> tuple[str, pl.DataFrame]:
    """(name, frame of id and text) of one reference set."""
    path = Path(ref.path)
    if not path.exists():
        raise ValueError(
            f"near_dup reference {ref.path} does not exist: give a run directory or a dataset file"
        )
    name = ref.name or path.name
    if (path / "manifest.json").exists():
        rows = with_filter_drops(RunStore.open(path).rows())
        want = ref.stage or stage
        rows = rows.filter((pl.col("stage") == want) & (pl.col("status").fill_null("kept") == "kept"))
        ids = pl.col(ref.id_column).cast(pl.Utf8) if ref.id_column else pl.col("id")
        return name, rows.select(ids.alias("id"), pl.col("text").cast(pl.Utf8)).unique(
            "id", keep="first", maintain_order=True
        )
    source: Any = _load_disk(path, ref.split, "near_dup reference") if path.is_dir() else path
    bench = load_benchmark(source, text_column=ref.column, id_column=ref.id_column, name=name)
    return name, bench.items


def load_benchmark_source(spec: BenchmarkSource) -> Benchmark:
    """The benchmark's items, from a file, a save_to_disk folder or `datasets.load_dataset`."""
    src = spec.source
    if src.startswith("hf://"):
        dataset, _, split_part = src[len("hf://") :].partition(":")
        split = split_part or spec.split or "test"
        if not dataset:
            raise ValueError(
                f"benchmark source {src!r}: write hf://<dataset>[:split], e.g. hf://openai/gsm8k:test"
            )
        try:
            from datasets import load_dataset

            data: Any = load_dataset(dataset, spec.config, split=split)
        except Exception as exc:  # offline, unknown name or split: say what to do instead
            raise ValueError(
                f"could not load benchmark {src} (config {spec.config!r}, split {split!r}) with "
                f"datasets.load_dataset: {type(exc).__name__}: {exc}. Offline? Load it once where there is "
                "network and save_to_disk, then give that folder as source"
            ) from exc
        name = spec.name or f"{dataset.rsplit('/', 1)[-1]}-{split}"
    else:
        path = Path(src)
        if not path.exists():
            raise ValueError(f"benchmark {src} does not exist: give a .jsonl/.json/.parquet/.csv file, a "
                             "save_to_disk folder or hf://<dataset>[:split]")  # fmt: skip
        data = _load_disk(path, spec.split, "benchmark") if path.is_dir() else os.fspath(path)
        name = spec.name or path.stem
    return load_benchmark(data, text_column=spec.text_columns, id_column=spec.id_column, name=name)


# -- deciding and recording ---------------------------------------------------------------------------
def _short(text: str | None) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= _DETAIL_CHARS else t[: _DETAIL_CHARS - 1] + "…"


_Drop = tuple[str, str, str, str | None, float | None, str | None]
"""(row id, reason, detail in words, matched id, matched ROUGE-L, matched span)."""


def _drop_rows(rows: pl.DataFrame, drops: list[_Drop], params: str, name: str) -> list[dict[str, Any]]:
    """Filter rows (see `filters.apply`) dropping each row of `drops`, by filter `name`."""
    rounds = dict(
        zip(
            rows["id"].to_list(),
            rows["round"].to_list() if "round" in rows.columns else [None] * rows.height,
            strict=True,
        )
    )
    return [
        {"id": row_id(FILTER_STAGE, rid, f"{why}\x1f{detail}", params), "stage": FILTER_STAGE, "parent_id": rid,
         "round": rounds.get(rid), "text": detail, "status": "dropped", "reason": why, "params": params,
         "filter_name": name, "matched_id": matched, "matched_score": score, "matched_span": span}
        for rid, why, detail, matched, score, span in drops
    ]  # fmt: skip


def _near_dup(step: NearDupStep, rows: pl.DataFrame) -> list[_Drop]:
    refs = dict(load_reference(r, STAGE_OF[step.rows_from]) for r in step.references)
    frame = rows.select(pl.col("id"), pl.col(step.column).cast(pl.Utf8).fill_null("").alias("text"))
    cfg = NearDupConfig(
        threshold=step.threshold, compare=step.compare, num_perm=step.num_perm, seed=step.seed
    )
    marked = near_duplicates(frame, cfg, references=refs or None)
    text_of = dict(zip(frame["id"].to_list(), frame["text"].to_list(), strict=True))
    out: list[_Drop] = []
    for name, ref in refs.items():
        text_of.update(
            {f"{name}\x1f{i}": t for i, t in zip(ref["id"].to_list(), ref["text"].to_list(), strict=True)}
        )
    for rid, dup, dset, sim in marked.select("id", "dup_of", "dup_set", "dup_similarity").iter_rows():
        if dup is None:
            continue
        where, key = ("row", dup) if dset == "self" else (f"{dset} row", f"{dset}\x1f{dup}")
        detail = f"ROUGE-L {sim:.2f} with {where} {dup}: {_short(text_of.get(key))!r}"
        out.append((rid, NEAR_DUPLICATE, detail, dup if dset == "self" else f"{dset}:{dup}", float(sim), None))
    return out


def _decontam(step: DecontamStep, rows: pl.DataFrame) -> list[_Drop]:
    benches = [load_benchmark_source(b) for b in step.benchmarks]
    cfg = DecontamConfig(n=step.n, short_items=step.short_items)
    out: dict[str, _Drop] = {}
    for col in step.columns:
        if col not in rows.columns:
            raise ValueError(
                f"decontam: the {step.rows_from} rows have no {col!r} column (columns: {rows.columns})"
            )
        todo = rows.filter(~pl.col("id").is_in(list(out)))
        frame = todo.select(pl.col("id"), pl.col(col).cast(pl.Utf8).fill_null("").alias("text"))
        flagged = decontaminate(frame, benches, cfg).filter(pl.col("status") == "dropped")
        for rid, item, span, name in flagged.select(
            "id", "contaminated_by", "contamination_span", "contamination_benchmark"
        ).iter_rows():
            why, detail = f"contamination:{name}", f"{col} shares {_short(span)!r} with {name} item {item}"
            out[rid] = (rid, why, detail, None if item is None else str(item), None, span)
    order = {r: k for k, r in enumerate(rows["id"].to_list())}
    return sorted(out.values(), key=lambda d: order[d[0]])


def run_hygiene_step(step: HygieneStep, store: RunStore) -> pl.DataFrame:
    """Decide the step's rows and append a filter row for each drop; returns the drop rows written."""
    rows = step_rows(step, store)
    params = json.dumps({"step": step.model_dump(mode="json", exclude={"label"})}, sort_keys=True)
    if rows.height == 0:
        return pl.DataFrame(schema={"id": pl.Utf8})
    drops = _near_dup(step, rows) if isinstance(step, NearDupStep) else _decontam(step, rows)
    new = _drop_rows(rows, drops, params, "near_dup" if isinstance(step, NearDupStep) else "decontam")
    have = store.ids(FILTER_STAGE)
    new = [r for r in new if r["id"] not in have]
    if new:
        store.append(new)
    return pl.DataFrame(new) if new else pl.DataFrame(schema={"id": pl.Utf8})


def plan_note(step: HygieneStep) -> str:
    """One line for the dry run: what the step compares against."""
    if isinstance(step, NearDupStep):
        refs = ", ".join(r.name or Path(r.path).name for r in step.references)
        return f"filter: ROUGE-L {step.compare} {step.threshold:g} within the run" + (
            f" and vs {refs}" if refs else ""
        )
    names = ", ".join(b.name or b.source for b in step.benchmarks)
    return f"filter: {step.n}-gram overlap of {'/'.join(step.columns)} with {names}"
