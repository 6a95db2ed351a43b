from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # reference_impl


@pytest.fixture(scope="session")
def seed_frame(shared_data: Path) -> pl.DataFrame:
    """The self-instruct paper's 175 human seed instructions."""
    rows = [json.loads(line) for line in (shared_data / "seed_tasks.jsonl").read_text().splitlines() if line]
    return pl.DataFrame({"id": [r["id"] for r in rows], "text": [r["instruction"] for r in rows]})
