"""Test tooling: copy a GGUF with one extra string in its metadata (e.g. a chat template).

The default model is a base model without a chat template; attaching Gemma's own template to a copy
gives the tests a real GGUF on which the chat path (the model's template, special tokens) runs.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from workbench.engine.gguf import _Reader, read_gguf_header

GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}<start_of_turn>{{ role }}\n"
    "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}"
    "<start_of_turn>model\n{% endif %}"
)


def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _skip_tensor_table(r: _Reader, n_tensors: int) -> None:
    for _ in range(n_tensors):
        r.string()
        n_dims = r.unpack("<I")
        r.read(8 * n_dims + 4 + 8)  # dims, type, offset


def with_metadata_string(src: Path, dst: Path, key: str, value: str) -> Path:
    """Write `dst`: `src` plus (or with a replaced) string metadata `key`; tensor data copied unchanged.
    Tensor offsets are relative to the aligned data start, so only the header changes."""
    info = read_gguf_header(src)
    align = int(info.metadata.get("general.alignment", 32) or 32)
    with open(src, "rb") as f:
        r = _Reader(f, src)
        f.read(4)
        version, n_tensors, n_kv = r.unpack("<I"), r.unpack("<Q"), r.unpack("<Q")
        kvs: list[bytes] = []
        for _ in range(n_kv):
            start = f.tell()
            k = r.string()
            r.value(r.unpack("<I"))
            end = f.tell()
            if k != key:
                f.seek(start)
                kvs.append(f.read(end - start))
        kvs.append(_string(key) + struct.pack("<I", 8) + _string(value))
        table_start = f.tell()
        _skip_tensor_table(r, n_tensors)
        table_end = f.tell()
        f.seek(table_start)
        table = f.read(table_end - table_start)
        old_data_start = -(-table_end // align) * align
        header = b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kvs)) + b"".join(kvs) + table
        with open(dst, "wb") as out:
            out.write(header + b"\0" * ((-len(header)) % align))
            f.seek(old_data_start)
            shutil.copyfileobj(f, out, 1 << 22)
    return dst
