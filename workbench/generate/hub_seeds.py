"""Seeds from a Hugging Face dataset: `hf://owner/name[@revision][:split]`, or a folder saved with `save_to_disk`.

`datasets.load_dataset` does the fetching, so its cache, `HF_ENDPOINT`, `HF_HOME`, `HF_TOKEN` and
`HF_HUB_OFFLINE` work as everywhere else; a dataset loaded once loads again offline. Column names differ
from dataset to dataset, so the caller maps them onto the seed fields (`instruction=`, `input=`,
`output=`, `category=`, `id=`); a missing column is an error that lists the columns the dataset has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SEED_FIELDS",
    "HubDataset",
    "SeedSourceError",
    "is_saved_dataset",
    "load_hub_rows",
    "parse_dataset_spec",
]

SEED_FIELDS = ("instruction", "input", "output", "category", "id")
_PREFIX = "hf://"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_SPLIT = re.compile(r"^[A-Za-z0-9_.-]+(\[[^\]]*\])?$")


class SeedSourceError(FileNotFoundError):
    """A seed dataset could not be found or loaded; the message says how to get it."""


@dataclass(frozen=True)
class HubDataset:
    """A parsed `hf://` dataset name."""

    name: str
    split: str | None = None
    revision: str | None = None

    @property
    def spec(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{_PREFIX}{self.name}{rev}" + (f":{self.split}" if self.split else "")


def parse_dataset_spec(spec: str) -> HubDataset:
    """Parse `hf://owner/name[@revision][:split]`; a malformed name raises SeedSourceError."""
    text = spec.strip()
    body = text[len(_PREFIX) :] if text.startswith(_PREFIX) else text
    split = revision = None
    if ":" in body:
        body, split = body.split(":", 1)
        if not _SPLIT.match(split):
            raise SeedSourceError(f"{spec!r}: {split!r} is not a split name like train or train[:100]")
    if "@" in body:
        body, revision = body.split("@", 1)
    if not _NAME.match(body) or (revision is not None and not revision):
        raise SeedSourceError(
            f"{spec!r}: give a dataset as hf://owner/name[@revision][:split], e.g. hf://tatsu-lab/alpaca:train"
        )
    return HubDataset(body, split, revision)


def is_saved_dataset(path: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return path.is_dir() and any((path / f).is_file() for f in ("state.json", "dataset_dict.json"))


def _one_split(data: Any, where: str, split: str | None) -> Any:
    """A Dataset from what `datasets` returned: the named split, or 'train', or the only one."""
    if not hasattr(data, "keys"):  # already a Dataset
        return data
    splits = list(data.keys())
    name = split or ("train" if "train" in splits else (splits[0] if len(splits) == 1 else None))
    if name is None or name not in splits:
        raise SeedSourceError(f"{where}: pick a split with ':<split>'; it has {', '.join(splits)}")
    return data[name]


def load_hub_rows(
    source: str | Path,
    *,
    split: str | None = None,
    config: str | None = None,
    limit: int | None = None,
) -> tuple[Any, str]:
    """The dataset behind a `hf://` name or a saved folder, as (Dataset, a name for messages)."""
    import datasets

    if isinstance(source, Path) or not str(source).startswith(_PREFIX):
        path = Path(source).expanduser()
        try:
            data = _one_split(datasets.load_from_disk(str(path)), str(path), split)
        except (OSError, ValueError) as exc:
            raise SeedSourceError(f"{path}: not a dataset folder written by save_to_disk ({exc})") from exc
        return (data.select(range(min(limit, len(data)))) if limit is not None else data), str(path)
    hub = parse_dataset_spec(str(source))
    split = split or hub.split
    sliced = f"{split or 'train'}[:{limit}]" if limit is not None and split and "[" not in split else split
    if limit is not None and split is None:
        sliced = f"train[:{limit}]"
    try:
        data = datasets.load_dataset(hub.name, config, split=sliced, revision=hub.revision)
    except Exception as exc:
        raise _explain(hub, exc) from exc
    return _one_split(data, hub.spec, split), hub.spec


def _explain(hub: HubDataset, exc: BaseException) -> SeedSourceError:
    """One message a person can act on, for whatever `datasets` raised."""
    kind, text = type(exc).__name__, str(exc)
    get = ("load it once with network access (it is then cached in HF_HOME), or save it with "
           "`Dataset.save_to_disk(folder)` and pass the folder")  # fmt: skip
    if "Unknown split" in text or "Bad split" in text:
        return SeedSourceError(f"{hub.spec}: {text.splitlines()[0]}; name one after ':'")
    if kind == "DatasetNotFoundError" or "doesn't exist on the Hub" in text:
        return SeedSourceError(f"{hub.spec}: no dataset {hub.name} on the Hub (if it is private or gated, log "
                               f"in with `hf auth login` or set HF_TOKEN)")  # fmt: skip
    if (
        "offline" in text.lower()
        or "couldn't reach" in text.lower()
        or isinstance(exc, (ConnectionError, OSError))
    ):
        return SeedSourceError(f"{hub.spec}: not in the datasets cache and the Hub cannot be reached "
                               f"(offline or no network); {get}")  # fmt: skip
    if "Config name is missing" in text or "BuilderConfig" in text:
        return SeedSourceError(f"{hub.spec}: {text.splitlines()[0]} (pass config=...)")
    return SeedSourceError(f"{hub.spec}: could not load ({kind}: {text.splitlines()[0] if text else ''})")
