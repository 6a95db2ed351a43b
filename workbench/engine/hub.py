"""GGUFs by name from the Hugging Face Hub: `hf://owner/repo/file.gguf`, downloaded once into the HF cache.

Accepted forms (the revision sits after the repo, as in `huggingface_hub`'s own `hf://` paths):

    hf://owner/repo/path/to/file.gguf        one file
    hf://owner/repo@<revision>/file.gguf     at a branch, tag or commit
    hf://owner/repo:Q4_K_M                   the repo's .gguf whose name carries that quantisation
    hf://owner/repo                          the repo's only .gguf

The download goes through `huggingface_hub` (so `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN` and
`HF_HUB_OFFLINE` mean what they mean everywhere), read when called, not when imported, so a notebook can
set them. A file already in the cache is reused without downloading it again (online, the Hub is asked
only for the file's current etag; offline, not at all). What is loaded is always checked: the GGUF header
before llama.cpp sees it, and the file's sha256 against the Hub's LFS etag (which is the content's sha256)
or against a `sha256=` the caller pins.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EngineError, ModelFileError
from .gguf import file_sha256, read_gguf_header

__all__ = [
    "HF_PREFIX",
    "DownloadProgress",
    "HubFile",
    "HubModelError",
    "hub_cache_dir",
    "is_hub_spec",
    "parse_hub_spec",
    "resolve_hub_gguf",
    "split_parts",
]

HF_PREFIX = "hf://"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_QUANT = re.compile(r"^[A-Za-z0-9_]+$")
_SPLIT = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


class HubModelError(EngineError, FileNotFoundError):
    """A `hf://` model could not be found, fetched or verified; the message says how to get it."""


@dataclass(frozen=True)
class HubFile:
    """A parsed `hf://` name."""

    repo_id: str
    filename: str | None = None
    revision: str | None = None
    quant: str | None = None

    @property
    def spec(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        tail = f"/{self.filename}" if self.filename else (f":{self.quant}" if self.quant else "")
        return f"{HF_PREFIX}{self.repo_id}{rev}{tail}"


@dataclass(frozen=True)
class DownloadProgress:
    """A download's progress, sent to `on_progress` at most a few times a second and once at the end."""

    filename: str
    bytes_done: int
    bytes_total: int | None
    elapsed_s: float
    finished: bool = False

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        mb = 1024 * 1024
        done = f"{self.bytes_done / mb:.1f} MB"
        if self.bytes_total:
            done += f" of {self.bytes_total / mb:.1f} MB ({100 * self.bytes_done / self.bytes_total:.0f}%)"
        rate = self.bytes_per_s
        text = f"downloading {self.filename}: {done} · {rate / mb:.1f} MB/s"
        if self.bytes_total and rate > 0 and not self.finished:
            text += f" · ETA {(self.bytes_total - self.bytes_done) / rate:.0f}s"
        return text + (" · done" if self.finished else "")


def is_hub_spec(spec: object) -> bool:
    return isinstance(spec, str) and spec.strip().startswith(HF_PREFIX)


def parse_hub_spec(spec: str) -> HubFile:
    """Parse a `hf://` name; a malformed one raises HubModelError naming the accepted forms."""
    text = spec.strip()
    forms = ("hf://owner/repo/file.gguf, hf://owner/repo@revision/file.gguf, hf://owner/repo:Q4_K_M "
             "or hf://owner/repo")  # fmt: skip
    if not text.startswith(HF_PREFIX):
        raise HubModelError(f"{spec!r} is not a hf:// name; use one of {forms}")
    parts = text[len(HF_PREFIX) :].strip("/").split("/")
    if len(parts) < 2:
        raise HubModelError(f"{spec!r}: a Hub model needs an owner and a repo; use one of {forms}")
    owner, repo, rest = parts[0], parts[1], parts[2:]
    quant = revision = None
    if not rest and ":" in repo:
        repo, quant = repo.split(":", 1)
        if not _QUANT.match(quant):
            raise HubModelError(f"{spec!r}: {quant!r} is not a quantisation name like Q4_K_M or Q8_0")
    if "@" in repo:
        repo, revision = repo.split("@", 1)
        if not revision:
            raise HubModelError(f"{spec!r}: nothing after '@'; give a branch, tag or commit, or drop the '@'")
    for name in (owner, repo):
        if not _PART.match(name):
            raise HubModelError(
                f"{spec!r}: {name!r} is not a valid Hub owner or repo name; use one of {forms}"
            )
    filename = "/".join(rest) or None
    if filename is not None:
        if any(p in ("", ".", "..") for p in rest):
            raise HubModelError(f"{spec!r}: the file path inside the repo has an empty or '..' part")
        if not filename.lower().endswith(".gguf"):
            raise HubModelError(f"{spec!r}: the file must be a .gguf (llama.cpp loads only GGUF weights)")
    return HubFile(f"{owner}/{repo}", filename, revision, quant)


def hub_cache_dir() -> Path:
    """The Hub cache `huggingface_hub` would use, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _how_to_get(hub: HubFile, filename: str | None) -> str:
    rev = f" --revision {hub.revision}" if hub.revision else ""
    what = f" {filename}" if filename else ""
    return (f"run the load once with network access, or fetch it with `hf download {hub.repo_id}{what}{rev}` "
            f"(it lands in {hub_cache_dir()}), or pass a local .gguf path instead")  # fmt: skip


def _progress_class(filename: str, on_progress: Callable[[DownloadProgress], None]) -> type:
    """A tqdm stand-in for `huggingface_hub`: it prints nothing and reports through `on_progress`."""

    class _Bar:
        def __init__(self, *, total: int | None = None, initial: int = 0, **_: Any) -> None:
            self.total, self.n = total, initial
            self.t0 = time.monotonic()
            self.last = 0.0
            self.lock = threading.Lock()

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def _send(self, finished: bool) -> None:
            elapsed = time.monotonic() - self.t0
            on_progress(DownloadProgress(filename, self.n, self.total, elapsed, finished))

        def update(self, n: int = 1) -> None:
            with self.lock:
                self.n += n
                now = time.monotonic()
                if now - self.last >= 0.2:
                    self.last = now
                    self._send(False)

        def update_progress(self, *args: Any, **kwargs: Any) -> None:  # xet downloads report through this
            n = kwargs.get("total_update", args[0] if args else 0)
            self.update(int(n) if isinstance(n, (int, float)) else 0)

        def close(self) -> None:
            if self.n:
                self._send(True)

    return _Bar


def _list_ggufs(hub: HubFile, cache: Path, endpoint: str) -> list[str]:
    """The repo's .gguf files: from the Hub, or offline from the cached snapshot of that revision."""
    if not _offline():
        from huggingface_hub import HfApi

        try:
            files = HfApi(endpoint=endpoint).list_repo_files(hub.repo_id, revision=hub.revision)
            return sorted(f for f in files if f.lower().endswith(".gguf"))
        except Exception as exc:  # network down: fall back on the cache below
            if _is_not_found(exc):
                raise _not_found(hub, None, exc) from exc
    snap = _cached_snapshot(hub, cache)
    if snap is None:
        raise HubModelError(f"{hub.spec}: cannot list the repo's files (offline or the Hub is unreachable) and "
                            f"nothing of {hub.repo_id} is in the cache; {_how_to_get(hub, None)}")  # fmt: skip
    return sorted(str(p.relative_to(snap)) for p in snap.rglob("*.gguf"))


def _cached_snapshot(hub: HubFile, cache: Path) -> Path | None:
    root = cache / ("models--" + hub.repo_id.replace("/", "--"))
    ref = root / "refs" / (hub.revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else (hub.revision or "")
    snap = root / "snapshots" / commit
    return snap if commit and snap.is_dir() else None


def _pick(hub: HubFile, ggufs: list[str]) -> str:
    # mmproj files are vision projectors that ship beside the language model, never the model itself
    models = [f for f in ggufs if "mmproj" not in f.lower()]
    # a split GGUF is one model: it is named by its first part
    models = [f for f in models if split_parts(f)[0] == f]
    if hub.quant:
        q = hub.quant.lower()
        hits = [f for f in models if re.search(rf"(^|[^a-z0-9]){re.escape(q)}([^a-z0-9]|$)", f.lower())]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise HubModelError(f"{hub.spec}: no .gguf in {hub.repo_id} is named with {hub.quant}; it has: "
                                f"{', '.join(models) or 'no .gguf files'}")  # fmt: skip
        models = hits
    if len(models) == 1:
        return models[0]
    if not models:
        raise HubModelError(
            f"{hub.spec}: {hub.repo_id} has no .gguf files; pick a GGUF repo (often named …-GGUF)"
        )
    raise HubModelError(f"{hub.spec}: {hub.repo_id} has several .gguf files ({', '.join(models)}); name one, "
                        f"e.g. {HubFile(hub.repo_id, models[0], hub.revision).spec}")  # fmt: skip


def _is_not_found(exc: BaseException) -> bool:
    return type(exc).__name__ in ("RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError",
                                  "RemoteEntryNotFoundError", "GatedRepoError")  # fmt: skip


def _not_found(hub: HubFile, filename: str | None, exc: BaseException) -> HubModelError:
    kind = type(exc).__name__
    if kind == "GatedRepoError":
        why = f"{hub.repo_id} is gated: accept its terms on the Hub, then log in (`hf auth login`) or set HF_TOKEN"
    elif kind == "RepositoryNotFoundError":
        why = f"no repo {hub.repo_id} (or it is private: log in with `hf auth login` or set HF_TOKEN)"
    elif kind == "RevisionNotFoundError":
        why = f"{hub.repo_id} has no revision {hub.revision!r}"
    else:
        why = f"{hub.repo_id} has no file {filename!r} at {hub.revision or 'main'}"
    return HubModelError(f"{hub.spec}: {why}")


def resolve_hub_gguf(
    spec: str,
    *,
    sha256: str | None = None,
    on_progress: Callable[[DownloadProgress], None] | None = None,
) -> Path:
    """The local path of a `hf://` GGUF: from the cache, or downloaded into it once, then checked.

    A split GGUF (`…-00001-of-00003.gguf`) is fetched whole, every part beside the first, which is the
    path returned (llama.cpp finds the other parts next to it). A `sha256` pin applies to an unsplit file.
    """
    hub = parse_hub_spec(spec)
    cache, endpoint = hub_cache_dir(), _endpoint()
    filename = hub.filename or _pick(hub, _list_ggufs(hub, cache, endpoint))
    parts = split_parts(filename)
    if sha256 and len(parts) > 1:
        raise HubModelError(
            f"{hub.spec}: a sha256 pin names one file, but this GGUF is split in {len(parts)}"
        )
    paths = [_fetch(hub, part, cache, endpoint, on_progress) for part in parts]
    for path in paths:
        _verify(hub, path, sha256)
    return paths[0]


def split_parts(filename: str) -> list[str]:
    """All parts of a split GGUF named by any one of them (the first part first), or just the file."""
    m = _SPLIT.match(filename)
    if m is None or int(m[3]) < 2:
        return [filename]
    return [f"{m[1]}-{i:05d}-of-{m[3]}.gguf" for i in range(1, int(m[3]) + 1)]


def _fetch(
    hub: HubFile,
    filename: str,
    cache: Path,
    endpoint: str,
    on_progress: Callable[[DownloadProgress], None] | None,
) -> Path:
    from huggingface_hub import hf_hub_download

    kwargs: dict[str, Any] = {
        "revision": hub.revision,
        "cache_dir": str(cache),
        "local_files_only": _offline(),
    }
    if not _offline():
        kwargs["endpoint"] = endpoint
    if on_progress is not None:
        # huggingface_hub prints its own bar to stderr unless given a class; ours prints nothing
        kwargs["tqdm_class"] = _progress_class(filename, on_progress)
    try:
        return Path(hf_hub_download(hub.repo_id, filename, **kwargs))
    except Exception as exc:
        if _is_not_found(exc):
            raise _not_found(hub, filename, exc) from exc
        offline_kinds = ("LocalEntryNotFoundError", "OfflineModeIsEnabled")
        if type(exc).__name__ in offline_kinds or isinstance(exc, OSError):
            where = (
                "offline (HF_HUB_OFFLINE is set)" if _offline() else f"the Hub at {endpoint} is unreachable"
            )
            raise HubModelError(f"{hub.spec}: {filename} is not in the Hugging Face cache and {where}; "
                                f"{_how_to_get(hub, filename)}") from exc  # fmt: skip
        raise HubModelError(f"{hub.spec}: download failed ({type(exc).__name__}: {exc})") from exc


def _verify(hub: HubFile, path: Path, pinned: str | None) -> None:
    try:
        read_gguf_header(path)
    except ModelFileError as exc:
        raise HubModelError(
            f"{hub.spec}: the file fetched into {path} is not a usable GGUF ({exc}); delete "
            f"it from the cache (`hf cache delete`) and check the repo and file name"
        ) from exc
    # The cache stores a file under blobs/<etag>; for LFS files the etag is the content's sha256.
    blob = path.resolve().name
    expected = (pinned or "").strip().lower() or (blob if _HEX64.match(blob) else "")
    if expected:
        actual = file_sha256(path)
        if actual != expected:
            what = "the sha256 you pinned" if pinned else "the Hub's sha256 for it"
            raise HubModelError(f"{hub.spec}: {path} has sha256 {actual}, not {what} ({expected}); the file is "
                                f"corrupt or changed: delete it from the cache and load again")  # fmt: skip
