"""The run directory: append-only Parquet parts, a manifest, and human labels.

```
<root>/<name>/
  manifest.json        what made the run (recipe, model and sha256, versions, created)
  rows/part-*.parquet  append-only parts; never rewritten in place
  labels.parquet       human labels, flags, notes keyed by row id (the only file replaced, atomically)
```
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

# Columns every row carries (others, stage-specific, are allowed and kept).
CORE_COLUMNS: dict[str, Any] = {
    "id": pl.Utf8,
    "stage": pl.Utf8,
    "parent_id": pl.Utf8,
    "round": pl.Int64,
    "text": pl.Utf8,
    "prompt": pl.Utf8,
    "model": pl.Utf8,
    "model_sha": pl.Utf8,
    "params": pl.Utf8,
    "seed": pl.Int64,
    "status": pl.Utf8,
    "reason": pl.Utf8,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "seconds": pl.Float64,
    "created_at": pl.Utf8,
}
STATUSES = ("kept", "dropped", "error")
_PACKAGES = ("synth-workbench", "llama-cpp-python", "polars", "altair", "datasets", "ipywidgets")


class RunExistsError(FileExistsError):
    """The run directory exists and neither resume nor overwrite was asked for."""


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def normalise_rows(rows: pl.DataFrame | Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Give rows every core column (null where absent) with the core dtypes, core columns first."""
    df = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(list(rows), infer_schema_length=None)
    if "id" not in df.columns:
        raise ValueError("every row needs an 'id' (use workbench.runs.row_id)")
    if "status" in df.columns:
        bad = df.filter(~pl.col("status").is_in(STATUSES) & pl.col("status").is_not_null())
        if bad.height:
            raise ValueError(f"status must be one of {STATUSES}, got {bad['status'][0]!r}")
    exprs = []
    for col, dtype in CORE_COLUMNS.items():
        if col in df.columns:
            exprs.append(pl.col(col).cast(dtype))
        elif col == "created_at":
            exprs.append(pl.lit(_now()).alias(col))
        elif col == "status":
            exprs.append(pl.lit("kept").alias(col))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(col))
    extra = [c for c in df.columns if c not in CORE_COLUMNS]
    return df.select([*exprs, *[pl.col(c) for c in extra]])


class RunStore:
    """One run directory. Thread-safe appends; reads see every flushed part."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows_dir = self.path / "rows"
        self._lock = threading.Lock()
        self._cache: tuple[tuple[str, ...], pl.DataFrame] | None = None

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        name: str,
        *,
        manifest: Mapping[str, Any] | None = None,
        resume: bool = False,
        overwrite: bool = False,
    ) -> RunStore:
        """Create `<root>/<name>`. An existing run is resumed only with `resume=True` and replaced only
        with `overwrite=True`; otherwise this raises instead of touching the user's files."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"run name {name!r} must be a plain folder name (no '/', not hidden)")
        path = Path(root) / name
        if path.exists() and any(path.iterdir()):
            if resume:
                store = cls(path)
                if not (path / "manifest.json").exists():
                    raise RunExistsError(f"{path} exists but is not a run (no manifest.json)")
                return store
            if not overwrite:
                raise RunExistsError(
                    f"run {path} already exists: pass resume=True to continue it or overwrite=True to replace it"
                )
            import shutil

            if not (path / "manifest.json").exists():
                raise RunExistsError(f"refusing to overwrite {path}: it is not a run directory")
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "rows").mkdir(exist_ok=True)
        store = cls(path)
        store.write_manifest(dict(manifest or {}))
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunStore:
        p = Path(path)
        if not (p / "manifest.json").exists():
            raise FileNotFoundError(f"{p} is not a run directory (no manifest.json)")
        return cls(p)

    # -- manifest ------------------------------------------------------------------------------
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        base = {"created": _now(), "versions": _versions(), "run": self.path.name}
        base.update(manifest)
        self._atomic_write_text(self.path / "manifest.json", json.dumps(base, indent=2, default=str))

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    def update_manifest(self, **fields: Any) -> None:
        with self._lock:
            m = self.manifest
            m.update(fields)
            self._atomic_write_text(self.path / "manifest.json", json.dumps(m, indent=2, default=str))

    # -- rows ----------------------------------------------------------------------------------
    def append(self, rows: pl.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Write rows as a new part file. Returns how many rows were written."""
        df = normalise_rows(rows)
        if df.height == 0:
            return 0
        with self._lock:
            self.rows_dir.mkdir(parents=True, exist_ok=True)
            name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = self.rows_dir / f".{name}.tmp"
            df.write_parquet(tmp)
            os.replace(tmp, self.rows_dir / name)  # a reader never sees a half-written part
        return df.height

    def parts(self) -> list[Path]:
        return sorted(self.rows_dir.glob("part-*.parquet"))

    def rows(self) -> pl.DataFrame:
        """Every row of every part, in write order (core columns first)."""
        parts = tuple(str(p) for p in self.parts())
        if self._cache is not None and self._cache[0] == parts:
            return self._cache[1]
        if not parts:
            df = pl.DataFrame(schema=CORE_COLUMNS)
        else:
            frames = [pl.read_parquet(p) for p in parts]
            df = pl.concat(frames, how="diagonal_relaxed")
        self._cache = (parts, df)
        return df

    def scan(self) -> pl.LazyFrame:
        return self.rows().lazy()

    def ids(self, stage: str | None = None) -> set[str]:
        df = self.rows()
        if stage is not None:
            df = df.filter(pl.col("stage") == stage)
        return set(df["id"].to_list())

    # -- labels --------------------------------------------------------------------------------
    def labels(self) -> pl.DataFrame:
        path = self.path / "labels.parquet"
        if not path.exists():
            return pl.DataFrame(schema={"id": pl.Utf8, "kind": pl.Utf8, "value": pl.Utf8, "updated_at": pl.Utf8})
        return pl.read_parquet(path)

    def set_label(self, row_id: str, kind: str, value: Any) -> None:
        """Set (or, with value None, clear) one label of a row, e.g. kind='flag' or 'human_score'."""
        with self._lock:
            df = self.labels().filter(~((pl.col("id") == row_id) & (pl.col("kind") == kind)))
            if value is not None:
                new = pl.DataFrame(
                    {"id": [row_id], "kind": [kind], "value": [json.dumps(value)], "updated_at": [_now()]}
                )
                df = pl.concat([df, new], how="vertical_relaxed")
            tmp = self.path / ".labels.parquet.tmp"
            df.write_parquet(tmp)
            os.replace(tmp, self.path / "labels.parquet")

    def label_values(self, kind: str) -> dict[str, Any]:
        df = self.labels().filter(pl.col("kind") == kind)
        return {r: json.loads(v) for r, v in zip(df["id"], df["value"], strict=True)}

    @staticmethod
    def _atomic_write_text(path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


class RowWriter:
    """Buffers finished rows and flushes them as parts: at most `max_rows` or `max_wait_s` in memory,
    so killing the kernel loses at most the rows of the last second."""

    def __init__(self, store: RunStore, *, max_rows: int = 64, max_wait_s: float = 1.0) -> None:
        self.store = store
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._buf: list[dict[str, Any]] = []
        self._first_at = 0.0
        self._lock = threading.Lock()
        self.written = 0

    def add(self, row: Mapping[str, Any]) -> None:
        with self._lock:
            if not self._buf:
                self._first_at = time.monotonic()
            self._buf.append(dict(row))
            due = len(self._buf) >= self.max_rows or time.monotonic() - self._first_at >= self.max_wait_s
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            buf, self._buf = self._buf, []
        if buf:
            self.written += self.store.append(buf)

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
