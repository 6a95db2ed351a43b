"""Seed task pools: load them from JSONL, JSON, CSV, Parquet, a polars frame, a `datasets.Dataset` or a
list of dicts, in the self-instruct format, into one normalised polars frame.

Every seed row has: `id`, `name`, `instruction`, `instances` (list of {input, output}),
`is_classification`, `category`. Malformed input raises `SeedFormatError` naming the file, the line and
the field at fault, so the user knows what to fix.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from .hub_seeds import is_saved_dataset, load_hub_rows

__all__ = ["SEED_SCHEMA", "SeedFormatError", "default_seeds", "load_seeds", "seeds_to_records", "self_instruct_seeds"]

INSTANCE_DTYPE = pl.List(pl.Struct({"input": pl.Utf8, "output": pl.Utf8}))
SEED_SCHEMA: dict[str, Any] = {
    "id": pl.Utf8,
    "name": pl.Utf8,
    "instruction": pl.Utf8,
    "instances": INSTANCE_DTYPE,
    "is_classification": pl.Boolean,
    "category": pl.Utf8,
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


class SeedFormatError(ValueError):
    """A seed file or record is malformed; the message names the source, line and field."""


def _where(source: str, line: int | None) -> str:
    return f"{source} line {line}" if line is not None else source


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SeedFormatError(f"{where}: field 'is_classification' must be true or false, got {value!r}")


def _as_text(value: Any, field: str, where: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise SeedFormatError(f"{where}: field '{field}' is missing")
        return ""
    if not isinstance(value, str):
        raise SeedFormatError(f"{where}: field '{field}' must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise SeedFormatError(f"{where}: field '{field}' is empty")
    return value


def _instances(record: Mapping[str, Any], where: str) -> list[dict[str, str]]:
    raw = record.get("instances")
    if raw is None:
        # Flat (alpaca-like) records: one instance from top-level input/output.
        if "input" in record or "output" in record:
            return [
                {
                    "input": _as_text(record.get("input"), "input", where),
                    "output": _as_text(record.get("output"), "output", where),
                }
            ]
        return []
    if isinstance(raw, str):  # CSV cells carry instances as JSON text
        try:
            raw = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as exc:
            raise SeedFormatError(f"{where}: field 'instances' is not valid JSON ({exc.msg})") from None
    if not isinstance(raw, list):
        raise SeedFormatError(f"{where}: field 'instances' must be a list of {{input, output}} objects")
    out = []
    for i, inst in enumerate(raw):
        if not isinstance(inst, Mapping):
            raise SeedFormatError(f"{where}: field 'instances[{i}]' must be an object with input and output")
        out.append(
            {
                "input": _as_text(inst.get("input"), f"instances[{i}].input", where),
                "output": _as_text(inst.get("output"), f"instances[{i}].output", where),
            }
        )
    return out


def _mapped(record: Mapping[str, Any], mapping: Mapping[str, str] | None, where: str) -> Mapping[str, Any]:
    """The record with the user's columns renamed onto the seed fields (instruction=, input=, ...)."""
    if not mapping:
        return record
    out = dict(record)
    for field, column in mapping.items():
        if column not in record:
            raise SeedFormatError(f"{where}: no column {column!r} (given as {field}=); it has: {', '.join(record)}")
        out[field] = record[column]
    return out


def _check_columns(columns: Sequence[str], mapping: Mapping[str, str], where: str) -> None:
    """Fail once, listing the columns, rather than on every row."""
    for field, column in mapping.items():
        if column not in columns:
            raise SeedFormatError(f"{where}: no column {column!r} (given as {field}=); it has: {', '.join(columns)}")
    if "instruction" not in mapping and "instruction" not in columns:
        raise SeedFormatError(f"{where}: it needs an 'instruction' column, or name the one that holds the task "
                              f"with instruction=<column> (columns: {', '.join(columns)})")  # fmt: skip


def _normalise_record(
    record: Any, index: int, source: str, line: int | None, mapping: Mapping[str, str] | None = None
) -> dict[str, Any]:
    where = _where(source, line)
    if not isinstance(record, Mapping):
        raise SeedFormatError(f"{where}: each seed must be an object, got {type(record).__name__}")
    record = _mapped(record, mapping, where)
    instruction = _as_text(record.get("instruction"), "instruction", where, required=True).strip()
    seed_id = record.get("id")
    seed_id = f"seed_{index}" if seed_id is None or seed_id == "" else str(seed_id)
    name = record.get("name")
    category = record.get("category")
    return {
        "id": seed_id,
        "name": _as_text(name, "name", where) if name is not None else seed_id,
        "instruction": instruction,
        "instances": _instances(record, where),
        "is_classification": _as_bool(record.get("is_classification"), where),
        "category": _as_text(category, "category", where) if category else "uncategorized",
    }


def _frame(records: list[dict[str, Any]], source: str, lines: Sequence[int | None]) -> pl.DataFrame:
    seen: dict[str, int | None] = {}
    for rec, line in zip(records, lines, strict=True):
        if rec["id"] in seen:
            raise SeedFormatError(
                f"{_where(source, line)}: field 'id' {rec['id']!r} duplicates the seed at "
                f"{_where(source, seen[rec['id']])}; ids must be unique"
            )
        seen[rec["id"]] = line
    if not records:
        raise SeedFormatError(f"{source}: no seed tasks found (need at least one with an 'instruction')")
    return pl.DataFrame(records, schema=SEED_SCHEMA)


def _read_jsonl(path: Path, mapping: Mapping[str, str] | None = None) -> pl.DataFrame:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SeedFormatError(
                    f"{path} line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            records.append(_normalise_record(obj, len(records), str(path), lineno, mapping))
            lines.append(lineno)
    return _frame(records, str(path), lines)


def _read_json(path: Path, mapping: Mapping[str, str] | None = None) -> pl.DataFrame:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SeedFormatError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise SeedFormatError(f"{path}: a .json seed file must hold a list of task objects")
    recs = [_normalise_record(o, i, f"{path} item", i, mapping) for i, o in enumerate(data)]
    return _frame(recs, f"{path} item", list(range(len(recs))))


def _read_csv(path: Path, mapping: Mapping[str, str] | None = None) -> pl.DataFrame:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise SeedFormatError(f"{path} line 1: the header needs an 'instruction' column")
        _check_columns(reader.fieldnames, mapping or {}, f"{path} line 1")
        start = reader.line_num + 1
        for row in reader:
            clean = {k: v for k, v in row.items() if k is not None}
            records.append(_normalise_record(clean, len(records), str(path), start, mapping))
            lines.append(start)
            start = reader.line_num + 1
    return _frame(records, str(path), lines)


def _from_records(rows: Iterable[Any], source: str, mapping: Mapping[str, str] | None = None) -> pl.DataFrame:
    recs: list[dict[str, Any]] = []
    lines: list[int] = []
    for i, r in enumerate(rows):
        recs.append(_normalise_record(r, i, f"{source} row", i, mapping))
        lines.append(i)
    return _frame(recs, f"{source} row", lines)


def load_seeds(
    source: Any,
    *,
    instruction: str | None = None,
    input: str | None = None,
    output: str | None = None,
    category: str | None = None,
    id: str | None = None,
    split: str | None = None,
    config: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Load a seed pool from a path (.jsonl, .json, .csv, .parquet, or a folder saved with
    `save_to_disk`), a Hugging Face dataset `hf://owner/name[@revision][:split]`, a polars frame, a
    `datasets.Dataset`, or a list of dicts. Returns a frame with the `SEED_SCHEMA` columns.

    `instruction=`, `input=`, `output=`, `category=` and `id=` name the source's columns that hold those
    fields (e.g. `instruction="prompt", output="completion"`); `split`/`config` pick a Hub dataset's split
    and configuration and `limit` keeps its first rows."""
    given = {"instruction": instruction, "input": input, "output": output, "category": category, "id": id}
    mapping = {field: column for field, column in given.items() if column}
    if limit is not None and limit < 1:
        raise SeedFormatError(f"limit must be a positive number of seeds, got {limit}")
    if (isinstance(source, str) and source.strip().startswith("hf://")) or (
        isinstance(source, (str, os.PathLike)) and is_saved_dataset(Path(source).expanduser())
    ):
        data, where = load_hub_rows(
            source.strip() if isinstance(source, str) else Path(source), split=split, config=config, limit=limit
        )
        _check_columns(list(data.column_names), mapping, where)
        return _from_records(iter(data), where, mapping)
    frame = _load_local(source, mapping)
    return frame.head(limit) if limit is not None else frame


def _load_local(source: Any, mapping: Mapping[str, str]) -> pl.DataFrame:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"seed file {path} does not exist")
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path, mapping)
        if suffix == ".json":
            return _read_json(path, mapping)
        if suffix == ".csv":
            return _read_csv(path, mapping)
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
            _check_columns(frame.columns, mapping, str(path))
            return _from_records(frame.to_dicts(), str(path), mapping)
        raise SeedFormatError(
            f"{path}: unknown seed file type {suffix!r}; use .jsonl, .json, .csv, .parquet, a folder saved "
            "with save_to_disk, or hf://owner/name for a Hugging Face dataset"
        )
    if isinstance(source, pl.DataFrame):
        _check_columns(source.columns, mapping, "polars frame")
        return _from_records(source.to_dicts(), "polars frame", mapping)
    if type(source).__name__ in ("Dataset", "IterableDataset") and hasattr(source, "column_names"):
        _check_columns(list(source.column_names), mapping, "datasets.Dataset")
        return _from_records(iter(source), "datasets.Dataset", mapping)
    if isinstance(source, list):
        return _from_records(source, "list", mapping)
    raise TypeError(
        f"cannot load seeds from {type(source).__name__}: give a path, hf:// dataset, polars frame, "
        "datasets.Dataset or list"
    )


def default_seeds() -> pl.DataFrame:
    """The project's own default seed set (varied tasks with categories), in self-instruct format."""
    ref = resources.files("workbench") / "data" / "default_seeds.jsonl"
    with resources.as_file(ref) as path:
        return _read_jsonl(Path(path))


def self_instruct_seeds() -> pl.DataFrame:
    """The self-instruct paper's 175 human-written seed tasks (Apache-2.0, shipped in
    `workbench/data/self_instruct/` with its license), in the normalised seed format."""
    from ..data import data_path

    return _read_jsonl(data_path("self_instruct", "seed_tasks.jsonl"))


def seeds_to_records(seeds: pl.DataFrame) -> list[dict[str, Any]]:
    """Seeds as self-instruct JSONL records (for saving an edited pool)."""
    return [{k: r[k] for k in SEED_SCHEMA} for r in seeds.select(list(SEED_SCHEMA)).to_dicts()]
