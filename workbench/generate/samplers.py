"""Attribute samplers: seeded values (a topic, a persona, a difficulty) that prompt templates reference.

Steering a generator with sampled attributes is the standard lever against repetitive synthetic data
(NeMo DataDesigner's category and person samplers, persona-hub's "write as ..." prompts). A
`SamplerSpec` names the samplers; every row draws one value from each, and templates use them by name
(`{{ persona }}`, `{{ topic }}`) in self-instruct, completions and evolve prompts.

Kinds: `category` (values with optional weights), `subcategory` (values conditioned on a category
drawn for the same row), `persona` (one of the user's personas or `DEFAULT_PERSONAS`), `range`
(uniform int or float).

Determinism: the value a sampler gives a row is a pure function of (seed, row key, sampler name),
through a sha256 of the three, never of a shared random stream. So a resumed run, a longer run, or a
spec with one more sampler draws exactly the same values for the rows it already had, and row ids
(which include the values) stay stable. The row key is stage-specific: self-instruct uses
(round, prompt index), completions the prompt id (the k samples of one prompt share a draw, so they
stay comparable answers to one prompt), evolve (parent id, generation).

Recording: each generated row carries `attributes`, a JSON object (sorted keys) of the values drawn,
e.g. `{"persona": "a retired ship's engineer", "topic": "cooking"}`; null when no samplers are used.
One text column keeps the row contract type-stable whatever the samplers are; `attribute_columns`
expands it to `attr_<name>` columns, and `metrics.compare_sets(rows, by="persona")` splits on it.
With samplers the values also enter the row id (next to the parameters); without, ids are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

import polars as pl
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_PERSONAS",
    "CategorySampler",
    "PersonaSampler",
    "RangeSampler",
    "Sampler",
    "SamplerSpec",
    "SubcategorySampler",
    "attribute_columns",
    "attributes_json",
    "check_template_names",
]

# The project's own short default list (written for this project; no third-party text).
DEFAULT_PERSONAS: tuple[str, ...] = (
    "a high-school chemistry teacher preparing a lab session",
    "a nurse working night shifts in a busy emergency ward",
    "a retired ship's engineer who restores old radios",
    "a first-year computer science student learning recursion",
    "a small-business owner who runs a bakery",
    "a freelance translator working between Spanish and English",
    "a park ranger who leads guided hikes",
    "a parent of two planning meals on a tight budget",
    "a data analyst at a logistics company",
    "a jazz pianist who teaches evening classes",
    "a civil engineer inspecting old bridges",
    "a librarian organising a local history archive",
    "a beginner gardener with a small balcony",
    "a marathon runner recovering from an injury",
    "a journalist fact-checking a political speech",
    "a game designer sketching a puzzle level",
    "a farmer deciding what to plant next season",
    "a museum guide explaining ancient pottery",
    "a software tester hunting an intermittent bug",
    "a pharmacist answering questions about side effects",
    "a grandparent learning to video-call family",
    "a high-school debate coach",
    "a carpenter building custom kitchen cabinets",
    "an amateur astronomer with a backyard telescope",
    "a city bus driver who knows every shortcut",
    "a PhD student in marine biology writing a thesis",
    "a chef adapting recipes for food allergies",
    "a volunteer firefighter in a rural town",
    "a startup founder preparing an investor pitch",
    "a hotel receptionist handling a double booking",
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names a template cannot bind: Jinja's literals and loop variable, and Python keywords.
_RESERVED = frozenset({"true", "false", "none", "True", "False", "None", "loop", "self", "range"})
_PARSE_ENV = SandboxedEnvironment()


def _check_weights(field: str, weights: Sequence[float], n_values: int) -> None:
    if len(weights) != n_values:
        raise ValueError(f"{field}: {len(weights)} weights for {n_values} values (one weight per value)")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"{field}: weights must be finite and >= 0, got {list(weights)}")
    if sum(weights) <= 0:
        raise ValueError(f"{field}: weights must not all be zero")


def _check_values(field: str, values: Sequence[str]) -> None:
    if not values:
        raise ValueError(f"{field}: needs at least one value")
    if any(not v.strip() for v in values):
        raise ValueError(f"{field}: values must not be blank")
    dupes = sorted({v for v in values if list(values).count(v) > 1})
    if dupes:
        raise ValueError(f"{field}: duplicate values {dupes}")


def _pick(values: Sequence[Any], weights: Sequence[float] | None, u: float) -> Any:
    """The value at quantile u in [0, 1) of the weighted distribution (zero weights are never picked)."""
    if weights is None:
        return values[min(int(u * len(values)), len(values) - 1)]
    total = float(sum(weights))
    x, acc = u * total, 0.0
    for value, w in zip(values, weights, strict=True):
        acc += w
        if x < acc:
            return value
    return next(v for v, w in zip(reversed(values), reversed(weights), strict=True) if w > 0)


def _unit(seed: int, key: str, name: str) -> float:
    """A uniform number in [0, 1) that depends only on (seed, key, name): no shared random stream."""
    digest = hashlib.sha256(f"{seed}\x1f{key}\x1f{name}".encode()).digest()
    return (int.from_bytes(digest[:8], "little") >> 11) / 2.0**53


class CategorySampler(BaseModel):
    """One of a list of values, uniformly or by weight (e.g. a topic)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["category"] = "category"
    """Discriminator: a categorical sampler."""
    values: tuple[str, ...]
    """The values to draw from (non-empty, no duplicates)."""
    weights: tuple[float, ...] | None = None
    """Relative weights, one per value (>= 0, not all zero); None draws uniformly."""

    @model_validator(mode="after")
    def _check(self) -> CategorySampler:
        _check_values("values", self.values)
        if self.weights is not None:
            _check_weights("weights", self.weights, len(self.values))
        return self

    def draw_one(self, u: float) -> str:
        return str(_pick(self.values, self.weights, u))


class SubcategorySampler(BaseModel):
    """A value conditioned on the category another sampler drew for the same row (e.g. a dish given a
    cuisine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["subcategory"] = "subcategory"
    """Discriminator: a subcategory sampler."""
    parent: str
    """Name of the `category` sampler (in the same spec) this one is conditioned on."""
    values: dict[str, tuple[str, ...]]
    """Parent category → its subcategory values; every parent value needs a non-empty list."""
    weights: dict[str, tuple[float, ...]] | None = None
    """Parent category → weights of its values (categories left out draw uniformly); None: uniform."""

    @model_validator(mode="after")
    def _check(self) -> SubcategorySampler:
        if not self.values:
            raise ValueError("values: needs at least one parent category")
        for category, vals in self.values.items():
            _check_values(f"values[{category!r}]", vals)
        for category, ws in (self.weights or {}).items():
            if category not in self.values:
                raise ValueError(
                    f"weights: category {category!r} has no values (known: {sorted(self.values)})"
                )
            _check_weights(f"weights[{category!r}]", ws, len(self.values[category]))
        return self

    def draw_one(self, category: str, u: float) -> str:
        weights = (self.weights or {}).get(category)
        return str(_pick(self.values[category], weights, u))


class PersonaSampler(BaseModel):
    """A persona to write as: one line describing who is asking or answering."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["persona"] = "persona"
    """Discriminator: a persona sampler."""
    personas: tuple[str, ...] | None = None
    """The personas to draw from, uniformly; None uses the project's `DEFAULT_PERSONAS` (30 lines)."""

    @field_validator("personas")
    @classmethod
    def _check_personas(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            _check_values("personas", value)
        return value

    def draw_one(self, u: float) -> str:
        return str(_pick(self.personas or DEFAULT_PERSONAS, None, u))


class RangeSampler(BaseModel):
    """A number drawn uniformly from [low, high] (ints: every integer in it equally likely)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["range"] = "range"
    """Discriminator: a numeric range."""
    low: float
    """Lower bound (inclusive)."""
    high: float
    """Upper bound (inclusive for ints; floats draw from [low, high))."""
    dtype: Literal["int", "float"] = "int"
    """'int': whole numbers (low and high must be whole); 'float': real numbers."""
    decimals: int | None = Field(2, ge=0, le=12)
    """Floats are rounded to this many decimals, so a prompt reads '0.37', not '0.3712904...'
    (None: no rounding). Ignored for ints."""

    @model_validator(mode="after")
    def _check(self) -> RangeSampler:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low and high must be finite, got low={self.low}, high={self.high}")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.dtype == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(
                f"low and high must be whole numbers for dtype='int', got {self.low}, {self.high}"
            )
        return self

    def draw_one(self, u: float) -> int | float:
        if self.dtype == "int":
            lo, hi = int(self.low), int(self.high)
            return lo + min(int(u * (hi - lo + 1)), hi - lo)
        x = self.low + u * (self.high - self.low)
        return round(x, self.decimals) if self.decimals is not None else x


Sampler = Annotated[
    CategorySampler | SubcategorySampler | PersonaSampler | RangeSampler, Field(discriminator="kind")
]
_DTYPES = {"category": pl.Utf8, "subcategory": pl.Utf8, "persona": pl.Utf8}


class SamplerSpec(BaseModel):
    """Named samplers; every row draws one value from each, seeded by (seed, row key, name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samplers: dict[str, Sampler]
    """Template name → sampler, e.g. {"topic": CategorySampler(...), "persona": PersonaSampler()}.
    Names are identifiers (what `{{ name }}` refers to)."""

    @model_validator(mode="after")
    def _check(self) -> SamplerSpec:
        if not self.samplers:
            raise ValueError("samplers: needs at least one sampler")
        for name, sampler in self.samplers.items():
            if not _NAME.match(name) or keyword.iskeyword(name) or name in _RESERVED:
                raise ValueError(
                    f"samplers[{name!r}]: a sampler name must be an identifier a template can use "
                    "(letters, digits, _; not a keyword, not loop/range/true/false/none)"
                )
            if isinstance(sampler, SubcategorySampler):
                parent = self.samplers.get(sampler.parent)
                if not isinstance(parent, CategorySampler):
                    cats = sorted(n for n, s in self.samplers.items() if isinstance(s, CategorySampler))
                    raise ValueError(
                        f"samplers[{name!r}].parent: {sampler.parent!r} is not a category sampler of this "
                        f"spec (category samplers: {cats or 'none'})"
                    )
                unknown = sorted(set(sampler.values) - set(parent.values))
                if unknown:
                    raise ValueError(
                        f"samplers[{name!r}].values: unknown parent categories {unknown}; "
                        f"{sampler.parent!r} has {list(parent.values)}"
                    )
                missing = [c for c in parent.values if c not in sampler.values]
                if missing:
                    raise ValueError(
                        f"samplers[{name!r}].values: parent categories {missing} of {sampler.parent!r} "
                        "have no subcategories (give each a list)"
                    )
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.samplers)

    def values(self, seed: int, key: object) -> dict[str, Any]:
        """The values for one row: a pure function of (seed, key, each sampler's name)."""
        k = str(key)
        out: dict[str, Any] = {}
        for name, s in self.samplers.items():  # parents first: subcategories need their category
            if not isinstance(s, SubcategorySampler):
                out[name] = s.draw_one(_unit(seed, k, name))
        for name, s in self.samplers.items():
            if isinstance(s, SubcategorySampler):
                out[name] = s.draw_one(out[s.parent], _unit(seed, k, name))
        return {name: out[name] for name in self.samplers}

    def draw(self, n: int | None = None, seed: int = 0, keys: Iterable[object] | None = None) -> pl.DataFrame:
        """One row of values per key (default keys: 0 .. n-1), one column per sampler, in spec order.

        Row i depends only on (seed, keys[i], sampler name): drawing 10 rows then 20 gives the same
        first 10."""
        if keys is None:
            if n is None or n < 0:
                raise ValueError("draw needs n >= 0 or keys")
            keys = range(n)
        rows = [self.values(seed, k) for k in keys]
        schema = {
            name: _DTYPES.get(s.kind) or (pl.Int64 if getattr(s, "dtype", "") == "int" else pl.Float64)
            for name, s in self.samplers.items()
        }
        return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)

    def check_names(self, builtins: Iterable[str], where: str) -> None:
        """Refuse sampler names that would shadow a template variable the stage already provides."""
        clash = sorted(set(self.samplers) & set(builtins))
        if clash:
            raise ValueError(
                f"{where}: sampler names {clash} clash with the template's own variables "
                f"({', '.join(sorted(builtins))}); rename the samplers"
            )


def check_template_names(source: str, available: Iterable[str], where: str = "template") -> None:
    """Raise ValueError naming every variable `source` reads that is not in `available` (the stage's own
    variables plus the sampler names), and listing what is available. Checked on the template's syntax
    tree, so a name in a branch the first prompt does not take is caught before anything is generated."""
    names = set(available)
    try:
        used = meta.find_undeclared_variables(_PARSE_ENV.parse(source))
    except Exception as exc:  # a syntax error: the compile step reports it with its line
        raise ValueError(f"{where} is not valid Jinja: {exc}") from exc
    unknown = sorted(used - names - set(_PARSE_ENV.globals))
    if unknown:
        raise ValueError(
            f"{where} uses unknown name(s) {', '.join(unknown)}; available: {', '.join(sorted(names))}"
        )


def attributes_json(values: Mapping[str, Any] | None) -> str | None:
    """The `attributes` column value of a row: its drawn values as JSON (sorted keys), None without samplers."""
    if values is None:
        return None
    return json.dumps(dict(values), sort_keys=True, ensure_ascii=False)


def attribute_columns(
    rows: pl.DataFrame, names: Iterable[str] | None = None, prefix: str = "attr_"
) -> pl.DataFrame:
    """`rows` with one `attr_<name>` text column per attribute in its `attributes` JSON column (all names
    found, or `names`); rows without the attribute get null."""
    if "attributes" not in rows.columns:
        raise ValueError(f"rows have no 'attributes' column (columns: {rows.columns}); were samplers used?")
    if names is None:
        found: set[str] = set()
        for text in rows["attributes"].drop_nulls().unique().to_list():
            found |= set(json.loads(text))
        names = sorted(found)
    exprs = []
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"attribute name {name!r} is not an identifier")
        exprs.append(pl.col("attributes").str.json_path_match(f"$.{name}").alias(f"{prefix}{name}"))
    return rows.with_columns(exprs) if exprs else rows
