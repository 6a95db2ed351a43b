"""The rubric editor: a form over a draft rubric, its live judge-prompt preview, and plain errors.

`RubricEditor` is the anywidget (rubric_editor.js); `check_draft` turns a draft (what the form sends)
into a `Rubric` or into ONE plain message tied to the field it concerns ("score 3 appears twice in the
levels"), so the editor shows it at that field and nowhere else: no pydantic dump, no docs link.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import anywidget
import traitlets as T
from pydantic import ValidationError

from workbench.judge import Rubric

__all__ = ["DRAFT_FIELDS", "RubricEditor", "RubricProblem", "check_draft", "rubric_draft"]

_HERE = Path(__file__).parent
DRAFT_FIELDS = ("name", "task_description", "criteria", "levels", "reference_answer", "allow_ties",
                "template", "pairwise_template")  # fmt: skip
_TIMES = {2: "twice", 3: "three times"}


class RubricProblem(ValueError):
    """A draft rubric that cannot be used yet: `field` is the form field, the message says what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RubricEditor(anywidget.AnyWidget):
    """Form for the rubric's text, levels and prompt templates, with a live preview of the judge prompt."""

    _esm = _HERE / "rubric_editor.js"
    _css = _HERE / "rubric_editor.css"

    draft = T.Dict().tag(sync=True)
    preview = T.Unicode("").tag(sync=True)
    error = T.Unicode("").tag(sync=True)
    error_field = T.Unicode("").tag(sync=True)  # which field the error belongs to ("levels", "template"...)
    header = T.Unicode("").tag(sync=True)  # which version the form describes, always current
    version = T.Unicode("").tag(sync=True)
    parent_version = T.Unicode("").tag(sync=True)


def rubric_draft(rubric: Rubric) -> dict[str, Any]:
    """The editable fields of `rubric`, as the form holds them."""
    d = rubric.model_dump(mode="json", include=set(DRAFT_FIELDS))
    d["criteria"] = list(d["criteria"])
    d["levels"] = [dict(level) for level in d["levels"]]
    return d


def _check_levels(levels: list[dict[str, Any]]) -> None:
    scores: list[int] = []
    for i, level in enumerate(levels, 1):
        score = level.get("score")
        if isinstance(score, bool) or not isinstance(score, int):
            raise RubricProblem("levels", f"level {i} has no score: type a whole number")
        scores.append(score)
    if len(scores) < 2:
        raise RubricProblem("levels", "a rubric needs at least two score levels")
    for score, n in sorted(Counter(scores).items()):
        if n > 1:
            raise RubricProblem("levels", f"score {score} appears {_TIMES.get(n, f'{n} times')} in the levels")
    if min(scores) < 0:
        raise RubricProblem("levels", f"scores cannot be negative (score {min(scores)})")
    missing = sorted(set(range(min(scores), max(scores) + 1)) - set(scores))
    if missing:
        gaps = ", ".join(map(str, missing))
        raise RubricProblem(
            "levels", f"scores must be consecutive whole numbers: {gaps} is missing between {min(scores)} and {max(scores)}"
        )
    for level in levels:
        if not str(level.get("description") or "").strip():
            raise RubricProblem(
                "levels", f"score {level['score']} has no description: say what an answer at this level looks like"
            )


def _plain(err: Exception) -> RubricProblem:
    """A pydantic or RubricError message without the model name, input dump and docs link."""
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        loc = [str(p) for p in first.get("loc", ())]
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        field = loc[0] if loc else ""
    else:
        msg, field = str(err), ""
    if msg.startswith("rubric '") and "': " in msg:
        msg = msg.split("': ", 1)[1]  # "rubric 'helpfulness': template ..." -> "template ..."
    names = re.search(r"available: \[(.*)\]$", msg)
    if names:  # "...; available: ['a', 'b']" -> "...; the names a template can use: a, b"
        msg = msg[: names.start()] + "the names a template can use: " + names.group(1).replace("'", "")
    for name in ("pairwise_template", "template"):
        if msg.startswith(f"{name} ") or f" {name} " in msg:
            field = field or name
            break
    return RubricProblem(field or "rubric", msg)


def check_draft(base: Rubric, draft: dict[str, Any], *, pairwise: bool = False) -> tuple[Rubric, str]:
    """The rubric `draft` describes (`base` itself when nothing changed, else a new version edited from
    it) and its judge prompt rendered on a placeholder, or a `RubricProblem` naming the field to fix."""
    draft = {k: v for k, v in draft.items() if k in DRAFT_FIELDS}
    if not str(draft.get("name") or "").strip():
        raise RubricProblem("name", "the rubric needs a name")
    _check_levels(list(draft.get("levels") or []))
    current = rubric_draft(base)
    changes = {k: v for k, v in draft.items() if current.get(k) != v}
    try:
        rubric = base.edit(**changes) if changes else base
    except (ValidationError, ValueError) as err:
        raise _plain(err) from None
    try:  # render once so a template that only fails at render time (a sandbox refusal) shows here
        if pairwise:
            prompt = rubric.render_pairwise("Name three primary colours.", "Red, yellow and blue.", "Blue.")
        else:
            prompt = rubric.render("Name three primary colours.", "Red, yellow and blue.")
    except ValueError as err:
        raise _plain(err) from None
    return rubric, prompt
