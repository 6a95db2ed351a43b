"""A judge rubric: typed, versioned, rendered through a sandboxed Jinja template.

A rubric is immutable. `Rubric.edit(**changes)` returns a *new* version whose `parent_version` is the
old one's hash, so every judgment row can record exactly which wording produced it (`rubric_version`).
The version is a content hash of what the judge sees (task, criteria, levels, reference, templates,
ties): editing a rubric back to an earlier wording gives the earlier hash again, so resume and
version comparisons line up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..runs import content_hash

# Everything the rubric fixes (task, criteria, levels, output format) comes first and the row (instruction,
# reference, response) last, so every prompt of a judge run starts with the same long token prefix: the engine
# computes its KV once and copies it to the other rows (and keeps it between calls), instead of prefilling the
# rubric for every row. The row-first order of earlier versions stays available (ROW_FIRST_*_TEMPLATE, or
# `templates_for("row_first")`); the two orders hash to different rubric versions.
RUBRIC_FIRST_ABSOLUTE_TEMPLATE = """\
You are a strict grader. {{ task_description }}

Criteria:
{% for c in criteria %}- {{ c }}
{% endfor %}
Score rubric ({{ min_score }} to {{ max_score }}):
{% for level in levels %}{{ level.score }}: {{ level.description }}
{% endfor %}
Write one short sentence of feedback, then "Score: " and an integer from {{ min_score }} to {{ max_score }}.

Instruction:
{{ instruction }}
{% if reference_answer %}
Reference answer (a response that deserves the top score):
{{ reference_answer }}
{% endif %}
Response to grade:
{{ response }}"""

RUBRIC_FIRST_PAIRWISE_TEMPLATE = """\
You are a strict grader comparing two responses. {{ task_description }}

Criteria:
{% for c in criteria %}- {{ c }}
{% endfor %}
Write one short sentence of feedback, then "Winner: " and {% if allow_ties %}A, B or tie{% else %}A or B{% endif %}.

Instruction:
{{ instruction }}
{% if reference_answer %}
Reference answer:
{{ reference_answer }}
{% endif %}
Response A:
{{ response_a }}

Response B:
{{ response_b }}"""

# The order of earlier versions (the row in the middle).
ROW_FIRST_ABSOLUTE_TEMPLATE = """\
You are a strict grader. {{ task_description }}

Instruction:
{{ instruction }}

Response to grade:
{{ response }}
{% if reference_answer %}
Reference answer (a response that deserves the top score):
{{ reference_answer }}
{% endif %}
Criteria:
{% for c in criteria %}- {{ c }}
{% endfor %}
Score rubric ({{ min_score }} to {{ max_score }}):
{% for level in levels %}{{ level.score }}: {{ level.description }}
{% endfor %}
Write one short sentence of feedback, then "Score: " and an integer from {{ min_score }} to {{ max_score }}."""

ROW_FIRST_PAIRWISE_TEMPLATE = """\
You are a strict grader comparing two responses. {{ task_description }}

Instruction:
{{ instruction }}

Response A:
{{ response_a }}

Response B:
{{ response_b }}
{% if reference_answer %}
Reference answer:
{{ reference_answer }}
{% endif %}
Criteria:
{% for c in criteria %}- {{ c }}
{% endfor %}
Write one short sentence of feedback, then "Winner: " and {% if allow_ties %}A, B or tie{% else %}A or B{% endif %}."""

TemplateOrder = Literal["rubric_first", "row_first"]
"""Where the row goes in a default template: after everything the rubric fixes (the default), or in the
middle (the order of earlier versions: instruction and response before the criteria and levels)."""

TEMPLATES: dict[TemplateOrder, tuple[str, str]] = {
    "rubric_first": (RUBRIC_FIRST_ABSOLUTE_TEMPLATE, RUBRIC_FIRST_PAIRWISE_TEMPLATE),
    "row_first": (ROW_FIRST_ABSOLUTE_TEMPLATE, ROW_FIRST_PAIRWISE_TEMPLATE),
}

DEFAULT_ABSOLUTE_TEMPLATE, DEFAULT_PAIRWISE_TEMPLATE = TEMPLATES["rubric_first"]


def templates_for(order: TemplateOrder) -> dict[str, str]:
    """The default templates in `order`, as rubric fields: `rubric.edit(**templates_for("row_first"))`."""
    if order not in TEMPLATES:
        raise RubricError(f"template order must be one of {sorted(TEMPLATES)}, got {order!r}")
    absolute, pairwise = TEMPLATES[order]
    return {"template": absolute, "pairwise_template": pairwise}


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class RubricError(ValueError):
    """A rubric is malformed or its template does not render; the message says what to fix."""


class ScoreLevel(BaseModel):
    """One level of the score scale and what earns it (Prometheus-style score rubric)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: int
    """The integer score of this level."""
    description: str = Field(min_length=1)
    """What a response at this level looks like."""


class Rubric(BaseModel):
    """A versioned judge rubric. Build new versions with `edit`, never by mutation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """Short name; judgments record it next to the version hash."""
    task_description: str = ""
    """What the judge is asked to assess, in one or two sentences."""
    criteria: tuple[str, ...] = ()
    """The qualities the judge must consider (shown as a bullet list)."""
    levels: tuple[ScoreLevel, ...]
    """The score scale: consecutive integers (any range, e.g. 1-5, 0-3, 1-10), one description each."""
    reference_answer: str | None = None
    """Optional answer that deserves the top score (for absolute grading)."""
    template: str = DEFAULT_ABSOLUTE_TEMPLATE
    """Jinja template of the absolute-grading prompt (rendered sandboxed, undefined names are errors)."""
    pairwise_template: str = DEFAULT_PAIRWISE_TEMPLATE
    """Jinja template of the pairwise prompt (variables response_a, response_b, allow_ties...)."""
    allow_ties: bool = True
    """Whether a pairwise judge may answer 'tie'."""
    parent_version: str | None = None
    """Version hash of the rubric this one was edited from (None for a first version)."""

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_from_mapping(cls, value: Any) -> Any:
        # Accept {1: "bad", 2: "ok"} as a convenience; keys may arrive as strings from JSON.
        if isinstance(value, Mapping):
            return tuple({"score": int(k), "description": v} for k, v in value.items())
        return value

    @field_validator("criteria", mode="before")
    @classmethod
    def _criteria_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(line.strip("- ").strip() for line in value.splitlines() if line.strip("- ").strip())
        return value

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        scores = sorted(level.score for level in self.levels)
        if len(scores) < 2:
            raise RubricError(f"rubric {self.name!r} needs at least two score levels, got {len(scores)}")
        if len(set(scores)) != len(scores):
            raise RubricError(f"rubric {self.name!r} has duplicate score levels: {scores}")
        if scores != list(range(scores[0], scores[-1] + 1)):
            raise RubricError(
                f"rubric {self.name!r}: score levels must be consecutive integers, got {scores} "
                f"(add the missing levels or renumber them)"
            )
        if scores[0] < 0:
            raise RubricError(f"rubric {self.name!r}: scores must be >= 0, got {scores[0]}")
        for field, text in (("template", self.template), ("pairwise_template", self.pairwise_template)):
            try:
                _ENV.parse(text)
            except TemplateSyntaxError as exc:
                raise RubricError(
                    f"rubric {self.name!r}: {field} is not valid Jinja (line {exc.lineno}): {exc}"
                ) from exc
        return self

    # -- scale ---------------------------------------------------------------------------------
    @property
    def scale(self) -> tuple[int, ...]:
        """The allowed scores, ascending."""
        return tuple(sorted(level.score for level in self.levels))

    @property
    def min_score(self) -> int:
        return self.scale[0]

    @property
    def max_score(self) -> int:
        return self.scale[-1]

    @property
    def sorted_levels(self) -> tuple[ScoreLevel, ...]:
        return tuple(sorted(self.levels, key=lambda level: level.score))

    # -- versioning ----------------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        """What the judge sees: the fields the version hash covers (not `parent_version`)."""
        return self.model_dump(mode="json", exclude={"parent_version"})

    @property
    def version(self) -> str:
        """12-hex content hash of this version."""
        return content_hash(self.content())

    def edit(self, **changes: Any) -> Rubric:
        """A new version with `changes` applied and `parent_version` set to this version's hash."""
        if "parent_version" in changes:
            raise RubricError("parent_version is set by edit(); do not pass it")
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise RubricError(
                f"unknown rubric field(s) {sorted(unknown)}; fields: {sorted(type(self).model_fields)}"
            )
        data = self.model_dump(mode="python")
        data.update(changes)
        data["parent_version"] = self.version
        return type(self).model_validate(data)

    # -- rendering -----------------------------------------------------------------------------
    def _context(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task_description": self.task_description,
            "criteria": list(self.criteria),
            "levels": [level.model_dump() for level in self.sorted_levels],
            "min_score": self.min_score,
            "max_score": self.max_score,
            "reference_answer": self.reference_answer,
            "allow_ties": self.allow_ties,
        }

    def render(self, instruction: str, response: str, **extra: Any) -> str:
        """The absolute-grading prompt body for one (instruction, response)."""
        return self._render("template", self.template, instruction=instruction, response=response, **extra)

    def render_pairwise(self, instruction: str, response_a: str, response_b: str, **extra: Any) -> str:
        """The pairwise prompt body with `response_a` shown first."""
        return self._render(
            "pairwise_template",
            self.pairwise_template,
            instruction=instruction,
            response_a=response_a,
            response_b=response_b,
            **extra,
        )

    def _render(self, field: str, text: str, **variables: Any) -> str:
        context = self._context()
        context.update(variables)
        try:
            return _ENV.from_string(text).render(**context).strip()
        except UndefinedError as exc:
            raise RubricError(
                f"rubric {self.name!r}: {field} uses an undefined variable ({exc.message}); "
                f"available: {sorted(context)}"
            ) from exc
        except Exception as exc:  # sandbox violations and template runtime errors
            raise RubricError(
                f"rubric {self.name!r}: {field} failed to render: {type(exc).__name__}: {exc}"
            ) from exc


def likert_rubric(
    name: str,
    task_description: str,
    criteria: list[str] | tuple[str, ...],
    levels: Mapping[int, str],
    **fields: Any,
) -> Rubric:
    """Shorthand: `likert_rubric("helpful", "...", ["..."], {1: "...", ..., 5: "..."})`."""
    data = {"name": name, "task_description": task_description, "criteria": tuple(criteria), "levels": levels}
    return Rubric.model_validate({**data, **fields})


def record_rubric(store: Any, rubric: Rubric) -> None:
    """Save the rubric's full text in the run's manifest (under "rubrics", keyed by version), so the
    run alone says what every judgment's `rubric_version` meant."""
    saved = dict(store.manifest.get("rubrics") or {})
    if rubric.version in saved:
        return
    saved[rubric.version] = rubric.model_dump(mode="json")
    store.update_manifest(rubrics=saved)


def load_rubrics(store: Any) -> dict[str, Rubric]:
    """Every rubric version recorded in a run, by version hash."""
    return {v: Rubric.model_validate(data) for v, data in (store.manifest.get("rubrics") or {}).items()}
