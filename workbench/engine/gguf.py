"""Read and check a GGUF file's header in pure Python, before llama.cpp ever sees the file.

llama.cpp can abort the whole process (and so the notebook's kernel) on some malformed files; checking
the magic, version, metadata and tensor table, and that every tensor's bytes lie inside the file,
turns those into a clear `ModelFileError` instead.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelFileError

_MAGIC = b"GGUF"
# GGUF metadata value types -> struct format (scalars); 8 = string, 9 = array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
# ggml tensor types -> (elements per block, bytes per block); unknown types skip the size check.
_BLOCKS = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
    22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}
_MAX_COUNT = 1 << 24  # guards against garbage counts in a corrupt header


@dataclass
class GGUFInfo:
    """What the header says: metadata (arrays summarised) and the tensor table's extent."""

    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    n_tensors: int = 0
    data_end: int = 0
    file_size: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def chat_template(self) -> str | None:
        tmpl = self.metadata.get("tokenizer.chat_template")
        return tmpl if isinstance(tmpl, str) and tmpl.strip() else None

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", self.path.stem))


class _Reader:
    def __init__(self, f: BinaryIO, path: Path) -> None:
        self.f, self.path = f, path

    def read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise ModelFileError(f"{self.path} is truncated: the GGUF header ends early (re-download or re-copy it)")
        return b

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > _MAX_COUNT * 64:
            raise ModelFileError(f"{self.path} has a corrupt GGUF header (string of {n} bytes)")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype, count = self.unpack("<I"), self.unpack("<Q")
            if count > _MAX_COUNT:
                raise ModelFileError(f"{self.path} has a corrupt GGUF header (array of {count} items)")
            if etype in _SCALARS:  # skip numeric arrays quickly (token scores, types)
                self.read(struct.calcsize(_SCALARS[etype]) * count)
                return f"<array of {count}>"
            items = [self.value(etype) for _ in range(count)]
            return items if count <= 16 else f"<array of {count}>"
        raise ModelFileError(f"{self.path} has a corrupt GGUF header (unknown value type {vtype})")


def read_gguf_header(path: str | os.PathLike[str]) -> GGUFInfo:
    """Parse and check the header; raise `ModelFileError` saying what is wrong."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelFileError(f"model file not found: {p} (check the path, or use 'default' for the bundled model)")
    if p.is_dir():
        raise ModelFileError(f"{p} is a folder; give the path of a .gguf file")
    size = p.stat().st_size
    with open(p, "rb") as f:
        r = _Reader(f, p)
        if size < 24 or f.read(4) != _MAGIC:
            raise ModelFileError(f"{p} is not a GGUF file (no GGUF magic bytes); llama.cpp needs a .gguf model")
        version = r.unpack("<I")
        if version not in (2, 3):
            raise ModelFileError(f"{p} is GGUF version {version}; this llama.cpp reads versions 2 and 3")
        n_tensors, n_kv = r.unpack("<Q"), r.unpack("<Q")
        if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
            raise ModelFileError(f"{p} has a corrupt GGUF header (counts {n_tensors}, {n_kv})")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = r.string()
            meta[key] = r.value(r.unpack("<I"))
        extent = 0
        for _ in range(n_tensors):
            r.string()
            n_dims = r.unpack("<I")
            if n_dims > 8:
                raise ModelFileError(f"{p} has a corrupt GGUF tensor table ({n_dims} dims)")
            dims = [r.unpack("<Q") for _ in range(n_dims)]
            ttype, offset = r.unpack("<I"), r.unpack("<Q")
            n_el = 1
            for d in dims:
                n_el *= d
            per_block, block_bytes = _BLOCKS.get(ttype, (1, 0))
            extent = max(extent, offset + n_el // per_block * block_bytes)
        align = int(meta.get("general.alignment", 32) or 32)
        data_start = -(-f.tell() // align) * align
    info = GGUFInfo(p, version, meta, n_tensors, data_start + extent, size)
    if info.data_end > size:
        raise ModelFileError(
            f"{p} is truncated: its tensors need {info.data_end:,} bytes but the file has {size:,} "
            "(the download or copy did not finish)"
        )
    return info


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a model file (cached per path, size and mtime: a model is hashed once per process)."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
