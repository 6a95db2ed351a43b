"""Prompt evolution (Evol-Instruct, Xu et al. 2023): rewrite prompts into harder or new ones, round by round.

Each operator is an editable, sandboxed Jinja template (variables: `instruction`). In-depth operators
(add_constraints, deepen, concretize, increase_reasoning) make a prompt harder; the in-breadth operator
(breadth) writes a new prompt on a related, rarer topic. An eliminator drops failed evolutions
(empty, too short, unchanged, copied template text, refusals) as status="dropped" with a reason, and
every row keeps its lineage (parent_id, root_id, operator, generation) so a prompt can be followed
through its rewrites with `lineage(frame, row_id)`.

With `EvolveConfig.samplers`, each rewrite draws attribute values (keyed by parent id and generation)
that operator templates use by name (`{{ persona }}`); rows record them in `attributes` and the values
enter the row id (see `workbench.generate.samplers`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rapidfuzz import fuzz

from ..engine import Backend, Generation, GenerationRequest, NoChatTemplateError, SamplingParams
from ..engine.protocol import ProgressCallback
from ..runs import RowWriter, RunStore, row_id
from .completions import compile_template, prompt_records, render_template
from .samplers import SamplerSpec, attributes_json, check_template_names

__all__ = ["DEFAULT_OPERATORS", "EvolveConfig", "LineageIndex", "eliminate", "lineage", "run_evolution"]

_DEPTH = (
    "I want you act as a Prompt Rewriter.\n"
    "Your objective is to rewrite a given prompt into a more complex version to make famous AI systems "
    "a bit harder to handle. But the rewritten prompt must be reasonable and must be understood and "
    "responded by humans.\n"
    "You SHOULD complicate the given prompt using the following method:\n{method}\n"
    "You should try your best not to make the #Rewritten Prompt# become verbose, #Rewritten Prompt# can "
    "only add 10 to 20 words into #The Given Prompt#.\n\n"
    "#The Given Prompt#:\n{{{{ instruction }}}}\n\n#Rewritten Prompt#:\n"
)
DEFAULT_OPERATORS: dict[str, str] = {
    "add_constraints": _DEPTH.format(
        method="Please add one more constraint or requirement into #The Given Prompt#."
    ),
    "deepen": _DEPTH.format(
        method="If #The Given Prompt# contains inquiries about certain issues, increase the depth and breadth "
        "of the inquiry."
    ),
    "concretize": _DEPTH.format(method="Please replace general concepts with more specific concepts."),
    "increase_reasoning": _DEPTH.format(
        method="If #The Given Prompt# can be solved with just a few simple thinking processes, rewrite it "
        "to explicitly request multiple-step reasoning."
    ),
    "breadth": (
        "I want you act as a Prompt Creator.\n"
        "Your goal is to draw inspiration from the #Given Prompt# to create a brand new prompt. This new "
        "prompt should belong to the same domain as the #Given Prompt# but be even more rare. The length "
        "and complexity of the #Created Prompt# should be similar to that of the #Given Prompt#. The "
        "#Created Prompt# must be reasonable and must be understood and responded by humans.\n\n"
        "#Given Prompt#:\n{{ instruction }}\n\n#Created Prompt#:\n"
    ),
}
# Phrases that only appear in an output that parrots the meta-prompt (WizardLM's elimination rule 4).
_MARKERS = ("given prompt", "rewritten prompt", "created prompt", "prompt rewriter", "prompt creator")
_LABEL = re.compile(r"^\s*#?\s*(the\s+)?(rewritten|created|new)\s+prompt\s*#?\s*:?\s*", re.IGNORECASE)
_REFUSAL = re.compile(r"^\s*(i'?m sorry|sorry|i cannot|i can't|as an ai)", re.IGNORECASE)


class EvolveConfig(BaseModel):
    """How prompts are evolved."""

    model_config = ConfigDict(extra="forbid")

    operators: tuple[str, ...] = tuple(DEFAULT_OPERATORS)
    """Operators to use (names of `templates` or the defaults)."""
    templates: dict[str, str] = Field(default_factory=dict)
    """Template overrides or new operators: name → sandboxed Jinja text with `{{ instruction }}`."""
    generations: int = Field(default=1, ge=1, le=10)
    """Rounds of evolution; round g rewrites the kept prompts of round g-1."""
    strategy: Literal["random", "all"] = "random"
    """'random': one operator per prompt per round (seeded, reproducible); 'all': every operator on every prompt."""
    params: SamplingParams = SamplingParams(
        temperature=0.7,
        max_tokens=128,
        stop=(
            "\n\n",
            "\n#",
            "#The Given Prompt#",
            "#Rewritten Prompt#",
            "#Given Prompt#",
            "#Created Prompt#",
        ),
    )
    """Sampling parameters for the rewriter (their seed is replaced by `seed + generation`)."""
    seed: int = Field(default=0, ge=0, lt=2**32 - 16)
    """Base seed: picks operators and seeds the rewriter."""
    use_chat: Literal["auto", "always", "never"] = "auto"
    """'auto': the meta-prompt as a chat message when the model has a chat template, else plain text."""
    min_words: int = Field(default=3, ge=1)
    """The eliminator drops evolved prompts with fewer words than this ('too short')."""
    max_similarity: float = Field(default=0.95, ge=0.0, le=1.0)
    """The eliminator drops evolved prompts at least this similar to their parent ('unchanged')."""
    copy_ngram: int = Field(default=6, ge=3)
    """The eliminator drops outputs sharing a run of this many words with the template's own text."""
    text_column: str | None = None
    """Column of the prompts frame holding the instruction (None: 'instruction', else 'text')."""
    samplers: SamplerSpec | None = None
    """Attribute samplers drawn once per (parent, generation); operator templates can use
    `{{ <sampler name> }}` and rows record the values in `attributes`. None: ids exactly as before."""

    @field_validator("templates")
    @classmethod
    def _templates_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            try:
                compile_template(source)
            except ValueError as exc:
                raise ValueError(f"operator {name!r}: {exc}") from exc
            if "instruction" not in source:
                raise ValueError(f"operator {name!r}: the template must use {{{{ instruction }}}}")
        return value

    @model_validator(mode="after")
    def _operators_known(self) -> EvolveConfig:
        known = self.all_templates()
        unknown = [op for op in self.operators if op not in known]
        if unknown or not self.operators:
            raise ValueError(f"unknown or no operators {unknown}; choose from {sorted(known)}")
        if self.samplers is not None:  # an unknown name fails here, before any generation
            self.samplers.check_names(("instruction",), "samplers")
            for op in self.operators:
                check_template_names(known[op], ("instruction", *self.samplers.names), f"operator {op!r}")
        return self

    def all_templates(self) -> dict[str, str]:
        return {**DEFAULT_OPERATORS, **self.templates}


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def template_ngrams(template: str, n: int, blanks: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The n-grams of a template's fixed text (what an output that copies the template shares with it);
    `blanks` are more variables (sampler names) rendered empty, so drawn values never count as template text."""
    return _ngrams(_words(render_template(template, instruction="", **dict.fromkeys(blanks, ""))), n)


def eliminate(
    evolved: str,
    parent: str,
    template_ngrams: set[tuple[str, ...]] = frozenset(),  # type: ignore[assignment]
    *,
    min_words: int = 3,
    max_similarity: float = 0.95,
    ngram: int = 6,
) -> str | None:
    """Why an evolution failed, or None if it is kept. Pure: the same inputs give the same verdict."""
    words = _words(evolved)
    if not words:
        return "empty"
    low = evolved.lower()
    if any(m in low for m in _MARKERS):
        return "copied template text"
    if template_ngrams and (_ngrams(words, ngram) - _ngrams(_words(parent), ngram)) & template_ngrams:
        return "copied template text"
    if (
        words == _words(parent)
        or fuzz.ratio(evolved.strip().lower(), parent.strip().lower()) >= 100 * max_similarity
    ):
        return "unchanged"
    if len(words) < min_words:
        return "too short"
    if _REFUSAL.match(evolved):
        return "refusal"
    return None


def clean_output(text: str) -> str:
    """Strip a repeated label ('#Rewritten Prompt#:') and wrapping quotes from the rewriter's output."""
    out = _LABEL.sub("", text.strip(), count=1).strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'":
        out = out[1:-1].strip()
    return out


def _pick(seed: int, parent_id: str, generation: int, operators: tuple[str, ...]) -> str:
    digest = hashlib.sha256(f"{seed}\x1f{parent_id}\x1f{generation}".encode()).digest()
    return operators[int.from_bytes(digest[:8], "little") % len(operators)]


def _use_chat(backend: Backend, mode: str) -> bool:
    if mode == "never":
        return False
    if mode == "always" and backend.chat_template is None:
        raise NoChatTemplateError(
            f"model {backend.name!r} has no chat template: set use_chat='auto' or 'never'"
        )
    return backend.chat_template is not None


def run_evolution(
    backend: Backend,
    store: RunStore,
    prompts: pl.DataFrame,
    config: EvolveConfig | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Evolve `prompts` for `config.generations` rounds, appending rows (stage="evolution") as they finish.

    Resume-safe: rows whose id the run has are not regenerated. Returns every evolution row of this
    lineage now in the run (dropped ones included, with their reason), ordered by generation.
    """
    config = config or EvolveConfig()
    templates = config.all_templates()
    names = config.samplers.names if config.samplers is not None else ()
    grams = {op: template_ngrams(templates[op], config.copy_ngram, names) for op in config.operators}
    chat = _use_chat(backend, config.use_chat)
    parents = [
        {**r, "root_id": r["id"], "text": r["instruction"] + (f"\n{r['input']}" if r["input"] else "")}
        for r in prompt_records(prompts, config.text_column)
    ]
    all_ids: list[str] = []
    for generation in range(1, config.generations + 1):
        if cancel is not None and cancel.is_set():
            break
        seed = config.seed + generation
        sp = config.params.with_seed(seed)
        plan: list[tuple[dict[str, Any], GenerationRequest]] = []
        for parent in parents:
            ops = (
                config.operators
                if config.strategy == "all"
                else (_pick(config.seed, parent["id"], generation, config.operators),)
            )
            values = None
            if config.samplers is not None:
                values = config.samplers.values(config.seed, f"{parent['id']}:{generation}")
            for op in ops:
                meta = render_template(templates[op], instruction=parent["text"], **(values or {}))
                identity: dict[str, Any] = {"params": sp.as_record(), "model": backend.model_id}
                if values is not None:  # the draw is part of what made the row
                    identity["attributes"] = values
                rid = row_id("evolution", parent["id"], meta, identity, seed)
                skeleton = {
                    "id": rid, "stage": "evolution", "parent_id": parent["id"], "root_id": parent["root_id"],
                    "round": generation, "generation": generation, "operator": op, "prompt": meta,
                    "parent_text": parent["text"], "model": backend.name, "model_sha": backend.model_id,
                    "params": sp.as_json(), "seed": seed,
                }  # fmt: skip
                if values is not None:
                    skeleton["attributes"] = attributes_json(values)
                if chat:
                    req = GenerationRequest(messages=({"role": "user", "content": meta},), params=sp, key=rid)
                else:
                    req = GenerationRequest(prompt=meta, params=sp, key=rid)
                plan.append((skeleton, req))
        existing = store.ids("evolution")
        todo = [(s, r) for s, r in plan if s["id"] not in existing]
        if todo:
            with RowWriter(store) as writer:

                def on_result(
                    index: int, gen: Generation, todo: list = todo, writer: RowWriter = writer
                ) -> None:
                    if gen.finish_reason != "cancelled":
                        writer.add(_evolution_row(todo[index][0], gen, grams, config))

                backend.generate(
                    [r for _, r in todo], on_progress=on_progress, on_result=on_result, cancel=cancel
                )
        ids = [s["id"] for s, _ in plan]
        all_ids += ids
        done = store.rows().filter(pl.col("id").is_in(ids) & (pl.col("status") == "kept"))
        parents = [
            {"id": r["id"], "root_id": r["root_id"], "text": r["text"]} for r in done.iter_rows(named=True)
        ]
        if not parents:
            break
    return store.rows_by_id(all_ids).sort("generation", maintain_order=True)


def _evolution_row(
    skeleton: dict[str, Any], gen: Generation, grams: dict[str, set[tuple[str, ...]]], config: EvolveConfig
) -> dict[str, Any]:
    text = clean_output(gen.text)
    reason: str | None
    if not gen.ok:
        status, reason = "error", gen.error or gen.finish_reason
    else:
        reason = eliminate(
            text, skeleton["parent_text"], grams[skeleton["operator"]],
            min_words=config.min_words, max_similarity=config.max_similarity, ngram=config.copy_ngram,
        )  # fmt: skip
        status = "kept" if reason is None else "dropped"
    return {
        **skeleton, "text": text, "raw_text": gen.text, "finish_reason": gen.finish_reason, "status": status, "reason": reason,
        "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens, "seconds": gen.seconds,
    }  # fmt: skip


class LineageIndex:
    """Parent links of a frame, indexed once, so many chains can be read cheaply (the inspector)."""

    _FIELDS = ("id", "parent_id", "generation", "operator", "text", "status", "reason", "parent_text")

    def __init__(self, frame: pl.DataFrame) -> None:
        cols = {
            c: (frame[c].to_list() if c in frame.columns else [None] * frame.height) for c in self._FIELDS
        }
        self._rows = {cols["id"][i]: {c: cols[c][i] for c in self._FIELDS} for i in range(frame.height)}

    def chain(self, row_id: str, max_depth: int = 50) -> list[dict[str, Any]]:
        """The row and its ancestors, root first. A parent outside the frame appears once as a
        generation-0 entry built from the child's `parent_text` (when recorded)."""
        out: list[dict[str, Any]] = []
        current: str | None = row_id
        seen: set[str] = set()
        while current is not None and current not in seen and len(out) < max_depth:
            seen.add(current)
            row = self._rows.get(current)
            if row is None:
                child = out[-1] if out else None
                if child is not None and child.get("parent_text"):
                    out.append({"id": current, "parent_id": None, "generation": 0, "operator": None,
                                "text": child["parent_text"], "status": None, "reason": None})  # fmt: skip
                break
            out.append(row)
            current = row["parent_id"]
        if not out:
            raise KeyError(f"row {row_id!r} is not in this frame")
        return [{k: v for k, v in r.items() if k != "parent_text"} for r in reversed(out)]


def lineage(frame: pl.DataFrame, row_id: str) -> pl.DataFrame:
    """The chain of prompts that led to `row_id`, root first (columns id, parent_id, generation,
    operator, text, status, reason)."""
    schema = {"id": pl.Utf8, "parent_id": pl.Utf8, "generation": pl.Int64, "operator": pl.Utf8,
              "text": pl.Utf8, "status": pl.Utf8, "reason": pl.Utf8}  # fmt: skip
    return pl.DataFrame(LineageIndex(frame).chain(row_id), schema=schema)
