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

from .contract import CORE_COLUMNS, STATUSES, conform, order_columns

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
    """Rows as the contract types them (`workbench.runs.contract`): every core column (null where
    absent; `status` defaults to kept, `created_at` to now), each contract column cast to its type."""
    df = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(list(rows), infer_schema_length=None)
    if "id" not in df.columns:
        raise ValueError("every row needs an 'id' (use workbench.runs.row_id)")
    if df["id"].null_count():
        raise ValueError("every row needs an 'id' (use workbench.runs.row_id); some ids are null")
    if "status" in df.columns:
        bad = df.filter(~pl.col("status").is_in(STATUSES) & pl.col("status").is_not_null())
        if bad.height:
            raise ValueError(f"status must be one of {STATUSES}, got {bad['status'][0]!r}")
    defaults = []
    if "created_at" not in df.columns:
        defaults.append(pl.lit(_now()).alias("created_at"))
    if "status" not in df.columns:
        defaults.append(pl.lit("kept").alias("status"))
    if defaults:
        df = df.with_columns(defaults)
    return conform(df, where="rows to append")


class RunStore:
    """One run directory. Thread-safe appends; reads see every flushed part."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows_dir = self.path / "rows"
        self._lock = threading.Lock()
        self._cache: tuple[tuple[str, ...], pl.DataFrame] | None = None
        self._parts: dict[str, pl.DataFrame] = {}  # each part as read and conformed (parts never change)

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
        """Every row of every part, in write order, typed by the row contract whatever mix of stages the
        run holds (columns outside the contract keep the type of their first write)."""
        parts = tuple(str(p) for p in self.parts())
        if self._cache is not None and self._cache[0] == parts:
            return self._cache[1]
        if not parts:
            df = pl.DataFrame(schema=CORE_COLUMNS)
        else:
            frames = [self._read_part(p) for p in parts]
            df = _concat_typed(frames, parts)
        self._cache = (parts, df)
        return df

    def _read_part(self, path: str) -> pl.DataFrame:
        frame = self._parts.get(path)
        if frame is None:
            frame = conform(pl.read_parquet(path), where=f"part {Path(path).name} of run {self.path}")
            self._parts[path] = frame
        return frame

    def rows_by_id(self, ids: Iterable[str]) -> pl.DataFrame:
        """The stored rows with these ids, in this order (each id once; ids the run lacks are absent)."""
        wanted = list(dict.fromkeys(ids))
        order = pl.DataFrame({"id": wanted, "__pos": range(len(wanted))}, schema={"id": pl.Utf8, "__pos": pl.Int64})
        rows = self.rows().unique("id", keep="first", maintain_order=True)
        return rows.join(order, on="id").sort("__pos").drop("__pos")

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


def _concat_typed(frames: list[pl.DataFrame], names: tuple[str, ...]) -> pl.DataFrame:
    """Concatenate conformed parts: contract columns already agree; any other column is cast to the type
    of its first non-null write (an error names the part that disagrees)."""
    first: dict[str, Any] = {}
    for frame in frames:
        for name, dtype in frame.schema.items():
            if dtype != pl.Null and name not in first:
                first[name] = dtype
    fixed = []
    for frame, part in zip(frames, names, strict=True):
        exprs = []
        for name, dtype in frame.schema.items():
            want = first.get(name, dtype)
            if dtype == want:
                continue
            try:
                frame[name].cast(want, strict=True)
            except Exception:
                raise ValueError(
                    f"part {Path(part).name}: column {name!r} holds {dtype}, but earlier parts wrote it as "
                    f"{want}: one column name must keep one type (rename the column in new rows)"
                ) from None
            exprs.append(pl.col(name).cast(want))
        fixed.append(frame.with_columns(exprs) if exprs else frame)
    df = pl.concat(fixed, how="diagonal")
    return df.select(order_columns(df.columns))


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
