"""A recipe: everything a user decided in the notebook, as one validated YAML or JSON file.

```yaml
name: tiny-distill
model: default                  # "default", a GGUF path, or an http(s) OpenAI-compatible URL
seeds: {source: default, limit: 8}
steps:
  - kind: completions
    prompts_from: seeds
    config: {k: 1, params: {max_tokens: 32, temperature: 0.7}}
```

Steps run in order against one run directory (`workbench.pipeline.runner.run_recipe`, or `workbench run` on the
command line); the same file runs on Ray against a fleet of servers by adding a `scale:` section
(`workbench.pipeline.scale`). Unknown keys and bad values fail with the file, line and key at fault.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..export import ExportSpec
from ..filters.apply import FilterSettings
from ..filters.ifd import IFDConfig
from ..generate.completions import CompletionConfig
from ..generate.conversation import ConversationConfig
from ..generate.evolve import EvolveConfig
from ..generate.magpie import MagpieConfig
from ..judge.rubric import Rubric
from ..runs import content_hash
from .chat_steps import ConversationStep, MagpieStep
from .filter_step import FiltersStep
from .hygiene_steps import BenchmarkSource, DecontamStep, NearDupStep, ReferenceSet
from .judge_step import ROW_IDS_COMMENT, JudgeStep
from .scale import ScaleConfig

__all__ = [
    "CompletionsStep",
    "ConversationStep",
    "DecontamStep",
    "EvolveStep",
    "FiltersStep",
    "IFDStep",
    "JudgeStep",
    "MagpieStep",
    "ModelSpec",
    "NearDupStep",
    "Recipe",
    "RecipeError",
    "SeedsSpec",
    "SelfInstructStep",
    "Step",
    "load_recipe",
]

PromptSource = Literal["seeds", "list", "instructions", "evolutions"]


class RecipeError(ValueError):
    """A recipe file is unreadable or invalid; the message names the file, line and key at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """Which model generates: the in-process default GGUF, another GGUF, or an OpenAI-compatible server."""

    source: str = "default"
    """'default' (the bundled Gemma 3 270M), a path to a .gguf file, an http(s) URL of an OpenAI-compatible
    server (llama.cpp, vLLM), or 'fake' (a deterministic model-free backend for testing a recipe's plumbing)."""
    model: str | None = None
    """The served model's name, for endpoints that serve several (vLLM's `--served-model-name`)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Backend constructor options, e.g. {n_parallel: 16, n_ctx_per_seq: 1024} for a GGUF (also
    {prefix_cache_tokens: 0} to keep no shared prompt prefixes between calls, or prefix_cache_entries: N)
    or {max_concurrency: 8, timeout_s: 120} for an endpoint."""

    @property
    def is_endpoint(self) -> bool:
        return self.source.startswith(("http://", "https://"))


class SeedsSpec(_Strict):
    """The seed pool the pipeline starts from."""

    source: str = "default"
    """'default' (the project's own seed set), 'self_instruct' (the self-instruct paper's 175 seed tasks,
    shipped), a path to a seed file (.jsonl/.json/.csv/.parquet, self-instruct format: instruction,
    instances, is_classification) or a folder saved with `save_to_disk`, or a Hugging Face dataset
    'hf://owner/name[@revision][:split]' (fetched by `datasets.load_dataset`, cached)."""
    limit: int | None = Field(None, ge=1)
    """Use only the first `limit` seeds (None: all)."""
    columns: dict[Literal["instruction", "input", "output", "category", "id"], str] = Field(default_factory=dict)
    """Which of the source's columns hold the seed fields, e.g. {instruction: prompt, output: completion}
    (empty: the columns are named like the fields)."""


class _StepBase(_Strict):
    label: str | None = None
    """A name for this step in progress output and the manifest (default: its kind and position)."""


class CompletionsStep(_StepBase):
    """Sample answers from the model for a set of prompts (distillation)."""

    kind: Literal["completions"] = "completions"
    """Step type."""
    prompts_from: PromptSource = "seeds"
    """Where the prompts come from: the seed pool, the `prompts` list below, or kept rows of an earlier
    step in this run (self-instruct 'instructions', kept 'evolutions')."""
    prompts: list[str] = Field(default_factory=list)
    """The prompts when `prompts_from` is 'list'."""
    limit: int | None = Field(None, ge=1)
    """Use only the first `limit` prompts (None: all)."""
    config: CompletionConfig = Field(default_factory=CompletionConfig)
    """Samples per prompt, sampling parameters, seed, completion template (see CompletionConfig)."""

    @model_validator(mode="after")
    def _list_has_prompts(self) -> CompletionsStep:
        if self.prompts_from == "list" and not self.prompts:
            raise ValueError("prompts_from is 'list' but `prompts` is empty: add prompts or pick another source")
        if self.prompts and self.prompts_from != "list":
            raise ValueError(f"`prompts` is given but prompts_from is {self.prompts_from!r}: set prompts_from: list")
        return self


class EvolveStep(_StepBase):
    """Rewrite prompts with Evol-Instruct operators, with an eliminator and lineage."""

    kind: Literal["evolve"] = "evolve"
    """Step type."""
    prompts_from: PromptSource = "seeds"
    """Which prompts to evolve (as for completions)."""
    prompts: list[str] = Field(default_factory=list)
    """The prompts when `prompts_from` is 'list'."""
    limit: int | None = Field(None, ge=1)
    """Evolve only the first `limit` prompts (None: all)."""
    config: EvolveConfig = Field(default_factory=EvolveConfig)
    """Operators, their templates, rounds, sampling parameters, eliminator thresholds (see EvolveConfig)."""


def _lazy_config(module: str, name: str, value: dict[str, Any]) -> dict[str, Any]:
    """Validate a step config against a class another module defines (imported only when present), so a
    recipe is checked fully at load time without a hard import cycle."""
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"this workbench has no {module}.{name} yet, so this step cannot run") from exc
    model = cls.model_validate(value)
    compact = model.model_dump(mode="json", exclude_defaults=True)
    # Dropping defaults also drops a nested union's default discriminator (a sampler's `kind`), which
    # would make the saved recipe unreadable: keep the compact form only if it reads back the same.
    try:
        if cls.model_validate(compact) == model:
            return dict(compact)
    except ValidationError:
        pass
    return dict(model.model_dump(mode="json"))


class SelfInstructStep(_StepBase):
    """Grow an instruction pool from the seeds (self-instruct), with its filters and thresholds."""

    kind: Literal["self_instruct"] = "self_instruct"
    """Step type."""
    config: dict[str, Any] = Field(default_factory=dict)
    """SelfInstructConfig fields: examples per prompt, target pool size, filters and thresholds."""

    @field_validator("config")
    @classmethod
    def _valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _lazy_config("workbench.generate.selfinstruct", "SelfInstructConfig", value)


class IFDStep(_StepBase):
    """Score instruction-following difficulty (Superfiltering's IFD) of rows; the scores are run rows."""

    kind: Literal["ifd"] = "ifd"
    """Step type."""
    rows_from: Literal["completions", "instances"] = "completions"
    """Which kept rows of this run to score (each needs an instruction and a response)."""
    limit: int | None = Field(None, ge=1)
    """Score only the first `limit` rows (None: all)."""
    config: IFDConfig = Field(default_factory=IFDConfig)
    """Columns, conditioning template and batch size (see IFDConfig)."""


Step = Annotated[
    CompletionsStep | EvolveStep | SelfInstructStep | JudgeStep | IFDStep | NearDupStep | DecontamStep | MagpieStep
    | ConversationStep | FiltersStep,
    Field(discriminator="kind"),
]


class Recipe(_Strict):
    """A whole pipeline: model, seeds, steps in order, where the run goes, exports, optional scale-out."""

    name: str = Field(min_length=1)
    """The recipe's name; also the run's folder name unless `run` is set."""
    description: str = ""
    """What this recipe is for (goes into the dataset card)."""
    model: ModelSpec = Field(default_factory=lambda: ModelSpec())
    """The generating model. A plain string is taken as its `source`."""
    seeds: SeedsSpec = Field(default_factory=lambda: SeedsSpec())
    """The seed pool. A plain string is taken as its `source`."""
    steps: list[Step] = Field(min_length=1)
    """The pipeline's steps, run in order against one run directory."""
    run: str | None = None
    """Run folder name (default: `name`)."""
    runs_root: str = "runs"
    """Folder holding run directories (relative paths are relative to the working directory)."""
    exports: list[ExportSpec] = Field(default_factory=list)
    """Datasets to write after the steps (TRL formats, with a dataset card)."""
    scale: ScaleConfig | None = None
    """Run generation through Ray Data against OpenAI-compatible servers instead of `model`."""

    @field_validator("model", "seeds", mode="before")
    @classmethod
    def _string_shorthand(cls, value: Any) -> Any:
        return {"source": value} if isinstance(value, str) else value

    @field_validator("run")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value.startswith(".")):
            raise ValueError(f"run name {value!r} must be a plain folder name (no '/', not hidden)")
        return value

    @property
    def run_name(self) -> str:
        return self.run or self.name

    def step_labels(self) -> list[str]:
        return [s.label or f"{i + 1}:{s.kind}" for i, s in enumerate(self.steps)]

    def work_hash(self) -> str:
        """Hash of what determines the rows (model, seeds, steps): `scale`, `exports` and where the run
        is written do not change the rows, so they are left out."""
        return content_hash(self.model_dump(mode="json", include={"model", "seeds", "steps"}))

    # -- files ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data, defaults left out (what `save` writes and the manifest records)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        data["steps"] = [
            {"kind": step.kind, **step.model_dump(mode="json", exclude_defaults=True)}  # keep the discriminator
            for step in self.steps
        ]
        return data

    def dumps(self, fmt: Literal["yaml", "json"] = "yaml") -> str:
        data = self.to_dict()
        if fmt == "json":
            return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        return _comment_row_ids(text, [len(s.row_ids) for s in self.steps if isinstance(s, JudgeStep) and s.row_ids])

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the recipe as YAML (.yaml/.yml) or JSON (.json). Refuses to replace a file unless
        `overwrite=True`."""
        p = Path(path)
        fmt = _format_of(p)
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} already exists: pass overwrite=True to replace it")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.dumps(fmt), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recipe:
        return load_recipe(path)

    @classmethod
    def loads(cls, text: str, *, source: str = "<recipe>") -> Recipe:
        return _parse(text, source)


def _comment_row_ids(text: str, counts: list[int]) -> str:
    """Say above each judge step's `row_ids` that it judges only the app's rows (YAML has no other place
    for it; a step's keys sit at two spaces under `- `, so a rubric's text cannot match)."""
    lines, found = text.splitlines(keepends=True), iter(counts)
    out = []
    for line in lines:
        if line.rstrip("\n") == "  row_ids:" or line.startswith("  row_ids: ["):
            out.append("  " + ROW_IDS_COMMENT.format(n=next(found, "these")) + "\n")
        out.append(line)
    return "".join(out)


def _format_of(path: Path) -> Literal["yaml", "json"]:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    raise RecipeError(f"{path}: a recipe file must end in .yaml, .yml or .json (got {suffix or 'no suffix'!r})")


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a recipe file (YAML or JSON)."""
    p = Path(path)
    _format_of(p)
    if not p.exists():
        raise RecipeError(f"recipe file {p} does not exist")
    return _parse(p.read_text(encoding="utf-8"), str(p))


# -- error messages that point at the line ---------------------------------------------------------
def _all_field_names() -> set[str]:
    names: set[str] = set()
    for model in (
        Recipe, ModelSpec, SeedsSpec, CompletionsStep, EvolveStep, SelfInstructStep, JudgeStep, IFDStep,
        CompletionConfig, EvolveConfig, IFDConfig, Rubric, ExportSpec, ScaleConfig,
        NearDupStep, DecontamStep, ReferenceSet, BenchmarkSource, MagpieStep, ConversationStep, MagpieConfig,
        ConversationConfig, FiltersStep, FilterSettings,
    ):  # fmt: skip
        names.update(model.model_fields)
    from ..engine import SamplingParams

    names.update(SamplingParams.model_fields)
    return names


def _node_at(root: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """The YAML node a pydantic error location points at (the key node for an unknown key)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)]
            if not match:
                continue  # a union tag ('completions') or a validator-only segment: stay on this node
            key, value = match[0]
            node = key if part == loc[-1] and value is None else value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node


def _key_node(root: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    parent = _node_at(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _ in parent.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(loc[-1]):
                return k
    return parent


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(text: str, source: str) -> Recipe:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise RecipeError(f"{source}: {where}: not valid YAML/JSON: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping of keys (name, model, steps, ...)")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        known = _all_field_names()
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                node = _key_node(root, loc)
                # a top-level typo is most likely one of the recipe's own keys, not a nested one
                guess = (difflib.get_close_matches(str(loc[-1]), list(Recipe.model_fields), n=1) if len(loc) == 1
                         else []) or difflib.get_close_matches(str(loc[-1]), known, n=1)  # fmt: skip
                hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                msg = f"unknown key {str(loc[-1])!r} at {_dotted(loc[:-1]) or 'top level'}{hint}"
            else:
                node = _node_at(root, loc)
                shown = err.get("input")
                got = "" if isinstance(shown, dict | list) else f" (got {shown!r})"
                msg = f"{_dotted(loc) or 'recipe'}: {err['msg']}{got}"
            line = f"line {node.start_mark.line + 1}: " if node is not None else ""
            lines.append(f"{source}: {line}{msg}")
        raise RecipeError("invalid recipe:\n  " + "\n  ".join(lines)) from None
