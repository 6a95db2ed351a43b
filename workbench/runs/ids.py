"""Stable row ids: a resumed run recognises rows it already has by these."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def row_id(stage: str, parent_id: str | None, prompt: str, params: Any = None, seed: int | None = None) -> str:
    """Hash of (stage, parent id, prompt, parameters, seed): same inputs, same id, on any machine."""
    payload = json.dumps(
        {"stage": stage, "parent": parent_id, "prompt": prompt, "params": params, "seed": seed},
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def content_hash(obj: Any) -> str:
    """Short hash of any JSON-able object (rubric versions, templates)."""
    payload = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
