"""Write and read exported datasets: `save_to_disk`, Parquet or JSONL, each with a dataset card.

Layout of an export directory (the layout the Hugging Face Hub expects, so it can be pushed as is):

```
<out>/README.md            the dataset card (YAML header: configs + features; recipe, counts, diversity)
<out>/data/train.parquet   (kind="parquet")   or   <out>/data/train.jsonl (kind="jsonl")
<out>/state.json, *.arrow  (kind="disk": a `Dataset.save_to_disk` directory)
```

An existing export is never replaced unless `overwrite=True`, and even then only when the folder is
recognisably an export (it has our card), so a mistyped path cannot delete a user's folder.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml

__all__ = ["EXPORT_MARKER", "ExportKind", "features_for", "load_export", "push_to_hub", "save_dataset", "to_dataset"]

ExportKind = Literal["disk", "parquet", "jsonl"]
EXPORT_MARKER = "<!-- exported by synth-workbench -->"
_DATA_FILES = {"parquet": "data/train.parquet", "jsonl": "data/train.jsonl"}


def _feature(dtype: Any) -> Any:
    from datasets import Value

    if dtype == pl.Utf8:
        return Value("string")
    if dtype in (pl.Int64, pl.Int32):
        return Value("int64")
    if dtype in (pl.Float64, pl.Float32):
        return Value("float64")
    if dtype == pl.Boolean:
        return Value("bool")
    if isinstance(dtype, pl.Struct):
        return {f.name: _feature(f.dtype) for f in dtype.fields}
    if isinstance(dtype, pl.List):
        return [_feature(dtype.inner)]
    if dtype == pl.Null:
        return Value("string")
    raise TypeError(f"cannot export a column of type {dtype}: cast it to a string first")


def features_for(frame: pl.DataFrame) -> Any:
    """`datasets.Features` for a polars frame: plain `string` (not large_string) and list-of-struct
    messages, the types TRL's examples use."""
    from datasets import Features

    return Features({name: _feature(dtype) for name, dtype in frame.schema.items()})


def to_dataset(frame: pl.DataFrame) -> Any:
    """A polars frame as a `datasets.Dataset` with explicit features."""
    from datasets import Dataset

    return Dataset.from_dict(frame.to_dict(as_series=False), features=features_for(frame))


def _card_header(ds: Any, kind: ExportKind, tags: list[str]) -> str:
    from datasets.info import DatasetInfo

    header: dict[str, Any] = {"tags": tags}
    if kind in _DATA_FILES:
        header["configs"] = [
            {"config_name": "default", "data_files": [{"split": "train", "path": _DATA_FILES[kind]}]}
        ]
    header["dataset_info"] = DatasetInfo(features=ds.features)._to_yaml_dict()
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n"


def _is_export(path: Path) -> bool:
    card = path / "README.md"
    return card.is_file() and EXPORT_MARKER in card.read_text(encoding="utf-8", errors="replace")


def save_dataset(
    ds: Any,
    path: str | os.PathLike[str],
    kind: ExportKind = "parquet",
    *,
    card: str = "",
    tags: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `ds` (a `datasets.Dataset`) to `path` as `kind`, with `card` as the body of README.md.

    Written to a temporary sibling first and moved into place, so a failure leaves no half export."""
    out = Path(path)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} already exists: pass overwrite=True (CLI: --overwrite) to replace it")
        if not _is_export(out):
            raise FileExistsError(f"refusing to overwrite {out}: it is not a workbench export (no export card)")
    if kind not in ("disk", "parquet", "jsonl"):
        raise ValueError(f"unknown export kind {kind!r}: choose 'disk', 'parquet' or 'jsonl'")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    from datasets.utils import logging as ds_logging

    bars = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()  # no per-file bars in notebooks and CLI logs
    try:
        if kind == "disk":
            ds.save_to_disk(str(tmp))
        else:
            (tmp / "data").mkdir(parents=True)
            target = tmp / _DATA_FILES[kind]
            if kind == "parquet":
                ds.to_parquet(str(target))
            else:
                ds.to_json(str(target), lines=True, force_ascii=False)
        header = _card_header(ds, kind, tags or ["synthetic"])
        (tmp / "README.md").write_text(f"{header}{EXPORT_MARKER}\n{card}", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if bars:
            ds_logging.enable_progress_bar()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _card_features(path: Path) -> Any:
    from datasets.info import DatasetInfo

    text = (path / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---\n", 2)[1])
    return DatasetInfo._from_yaml_dict(header["dataset_info"]).features


def load_export(path: str | os.PathLike[str]) -> Any:
    """Load an export written by `save_dataset` (any kind) back as a `datasets.Dataset`, with the
    features recorded in its card (so JSONL comes back with the same types it was written with)."""
    from datasets import Dataset, load_from_disk

    p = Path(path)
    if (p / "state.json").exists():
        return load_from_disk(str(p))
    if (p / _DATA_FILES["parquet"]).exists():
        return Dataset.from_parquet(str(p / _DATA_FILES["parquet"]), features=_card_features(p))
    if (p / _DATA_FILES["jsonl"]).exists():
        return Dataset.from_json(str(p / _DATA_FILES["jsonl"]), features=_card_features(p))
    raise FileNotFoundError(f"{p} is not a workbench export (no state.json, data/train.parquet or data/train.jsonl)")


def push_to_hub(
    path: str | os.PathLike[str], repo_id: str, *, private: bool = True, token: str | None = None
) -> str:
    """Upload an export folder (data files and card) to the Hugging Face Hub as a dataset repo.

    Opt-in only: nothing in the workbench calls this on its own, and it needs network access and a
    token (`huggingface-cli login` or `token=`). Returns the repo URL."""
    from huggingface_hub import HfApi

    p = Path(path)
    if not _is_export(p):
        raise FileNotFoundError(f"{p} is not a workbench export: export first, then push the folder")
    if (p / "state.json").exists():
        raise ValueError("a save_to_disk export cannot be pushed as files: export with kind='parquet' to push")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(p), repo_id=repo_id, repo_type="dataset")
    return str(url)
