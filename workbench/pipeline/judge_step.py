"""The recipe's judge step, and which rows it judges: all of them, the exact rows the app judged, or a sample.

The app's Judge tab grades a sample of the answers (its "sample size" knob), so a recipe saved from the app
records exactly the ids it judged in `row_ids`, and the saved YAML says so beside them:

```yaml
  - kind: judge
    rubric: {...}
    # the app judged only these 2 rows: delete row_ids to judge every row
    row_ids: [3f2a…, 9c01…]
```

A pairwise judge (`mode: pairwise`) records the answers it paired the same way. Scaling up is then an explicit edit: delete `row_ids` (every row) or write `sample: 200` (a reproducible
sample, picked in id order so it does not depend on the order a run happened to write its rows).
`select_rows` applies the selection and says in one line what it did, for the CLI and the dry run.
"""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..judge.rubric import Rubric

__all__ = ["ROW_IDS_COMMENT", "JudgeStep", "judged_rows", "select_rows"]

ROW_IDS_COMMENT = "# the app judged only these {n} rows: delete row_ids to judge every row"
"""The comment `Recipe.dumps` writes above a judge step's `row_ids` (YAML only)."""


class JudgeStep(BaseModel):
    """Grade rows with a rubric (absolute grading: a score, its distribution and the judge's reasoning)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["judge"] = "judge"
    """Step type."""
    label: str | None = None
    """A name for this step in progress output and the manifest (default: its kind and position)."""
    rows_from: Literal["completions", "evolutions", "instructions", "conversations"] = "completions"
    """Which kept rows of this run to judge."""
    mode: Literal["absolute", "pairwise"] = "absolute"
    """'absolute' grades each row on the rubric's scale; 'pairwise' pairs the first two selected answers
    of each prompt (rows sharing a parent_id) and asks which is better, in both orders (position bias)."""
    conversation_target: Literal["last_turn", "whole"] = "last_turn"
    """With rows_from 'conversations': what is graded (`judge.conversation`): 'last_turn' the last assistant
    reply in the context of the conversation so far, 'whole' the assistant's side of the whole conversation.
    The rubric should be wrapped for that target (`conversation_rubric`), as the app's Judge tab does."""
    rubric: Rubric
    """The rubric (name, criteria, levels, template); its content hash is recorded on every judgment."""
    rubric_version: str | None = None
    """The rubric's expected version hash: if set and the rubric's content no longer hashes to it, the
    recipe is rejected (someone edited the rubric without meaning to)."""
    config: dict[str, Any] = Field(default_factory=dict)
    """JudgeConfig fields (sampling parameters, seed, ...)."""
    row_ids: list[str] | None = Field(None, min_length=1)
    """Judge only these rows (ids of `rows_from` rows): what the app's Judge tab judged, recorded by Save
    recipe. None: every row (or `sample`). Delete it to judge every row."""
    sample: int | None = Field(None, ge=1)
    """Judge a reproducible sample of this many rows, picked with `sample_seed` among the rows sorted by
    id (so the pick does not depend on the order a run wrote them). None: every row."""
    sample_seed: int = Field(0, ge=0)
    """Seed of the `sample` pick."""

    @field_validator("config")
    @classmethod
    def _valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        from .recipe import _lazy_config  # recipe imports this module: import at validation time

        return _lazy_config("workbench.judge", "JudgeConfig", value)

    @model_validator(mode="after")
    def _consistent(self) -> JudgeStep:
        if self.rubric_version is not None and self.rubric.version != self.rubric_version:
            raise ValueError(
                f"rubric {self.rubric.name!r} hashes to version {self.rubric.version}, not {self.rubric_version}: "
                "set rubric_version to the new hash if the edit was intended"
            )
        if self.row_ids is not None and self.sample is not None:
            raise ValueError("give row_ids (the exact rows) or sample (how many), not both: delete one")
        return self


def select_rows(step: JudgeStep, rows: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The rows `step` judges out of `rows` (its kept input rows), and a line saying how many of how many
    and how to judge all. Raises when `row_ids` names none of the rows (the run's rows differ from the
    app's: another model, seed or seed pool)."""
    total = rows.height
    if step.row_ids is not None:
        wanted = set(step.row_ids)
        picked = rows.filter(pl.col("id").is_in(list(wanted))) if total else rows
        found = picked.height
        if total and found == 0:
            raise ValueError(
                f"judge step: none of its {len(wanted)} row_ids is a kept {step.rows_from} row of this run (the "
                "rows differ from the ones the app judged: another model, seed or seed pool?); delete row_ids "
                "to judge every row, or write sample: N to judge N of them"
            )
        missing = f"; {len(wanted) - found} of the ids are not in this run" if total and found < len(wanted) else ""
        return picked, (f"judging {found} of {total} rows as in the app (delete row_ids to judge all){missing}")
    if step.sample is not None:
        if total <= step.sample:
            return rows, f"judging all {total} rows (sample: {step.sample} is at least that many)"
        order = rows.with_row_index("_i").sort("id")
        picked = order.sample(step.sample, seed=step.sample_seed).sort("_i").drop("_i")
        return picked, f"judging a sample of {step.sample} of {total} rows (set sample: null to judge all)"
    return rows, f"judging all {total} rows"


def judged_rows(step: JudgeStep, rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` as the step grades them: conversations split for its `conversation_target` (the last reply in
    context, or the whole conversation; `judge.judgeable_conversations`), any other rows as they are."""
    if step.rows_from != "conversations" or rows.height == 0:
        return rows
    from ..judge import judgeable_conversations

    return judgeable_conversations(rows, target=step.conversation_target)
