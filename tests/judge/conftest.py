"""Fixtures of the judge tests: a 1-5 rubric, a temporary run, a few rows to judge."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.judge import Rubric
from workbench.runs import RunStore


@pytest.fixture
def rubric() -> Rubric:
    return Rubric(
        name="helpful",
        task_description="Grade how well the response follows the instruction.",
        criteria=("Answers what was asked", "Is correct"),
        levels={
            1: "Off-topic or wrong",
            2: "Mostly wrong",
            3: "Partly right",
            4: "Right, minor gaps",
            5: "Fully right",
        },
    )


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore.create(tmp_path, "judge-test")


@pytest.fixture
def rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ["c1", "c2", "c3", "c4"],
            "parent_id": ["p1", "p1", "p2", "p2"],
            "instruction": ["Name a colour.", "Name a colour.", "Add 2 and 2.", "Add 2 and 2."],
            "text": ["Blue.", "A colour is a property of light, for example a deep blue.", "4", "22"],
        }
    )
