"""Few-shot prompts for self-instruct: instruction generation (k human + m machine examples, as a numbered
list a base model continues) and instance generation (input-first, or output-first for classification).

User templates render in a sandboxed Jinja environment with StrictUndefined, so a template can neither
reach Python internals nor silently drop a misspelt variable. Sampled attributes
(`workbench.generate.samplers`) come in as extra variables next to `INSTRUCTION_VARIABLES`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

import jinja2
import numpy as np
from jinja2.sandbox import SandboxedEnvironment

__all__ = [
    "DEFAULT_TEMPLATE",
    "HEADERS",
    "INSTRUCTION_VARIABLES",
    "Variant",
    "build_instance_prompt",
    "build_instruction_prompt",
    "compile_template",
    "request_seed",
    "sample_examples",
]

Variant = Literal["generation", "classification"]

HEADERS: dict[str, str] = {
    "generation": "Come up with a series of tasks:",
    "classification": "Come up with a series of classification tasks:",
}

# A numbered list the model continues after "Task {next_number}:"; the stop string "\nTask" ends the turn.
DEFAULT_TEMPLATE = (
    "{{ header }}\n\n"
    "{% for ex in examples %}Task {{ loop.index }}: {{ ex.instruction }}\n{% endfor %}"
    "Task {{ next_number }}:"
)

INSTRUCTION_VARIABLES = ("header", "examples", "next_number", "variant")
"""What a generation template always gets (sampler names come on top)."""

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


class TemplateError(ValueError):
    """A user template failed to compile or render; the message says where and why."""


@lru_cache(maxsize=32)
def compile_template(source: str) -> jinja2.Template:
    """Compile a generation template in the sandbox, or raise TemplateError saying what is wrong."""
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from None


def request_seed(run_seed: int, *parts: object) -> int:
    """A per-request sampling seed derived from the run seed and the request's coordinates."""
    digest = hashlib.sha256(":".join(map(str, (run_seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sample_examples(
    human: Sequence[Mapping[str, Any]],
    machine: Sequence[Mapping[str, Any]],
    k: int,
    m: int,
    rng: np.random.Generator,
) -> list[Mapping[str, Any]]:
    """Pick up to m machine and k human examples (human tasks fill in for missing machine ones, as in the
    paper's code), then shuffle them. The same rng state gives the same picks."""
    n_machine = min(m, len(machine))
    n_human = min(k + (m - n_machine), len(human))
    picks: list[Mapping[str, Any]] = []
    if n_machine:
        picks += [machine[i] for i in rng.choice(len(machine), size=n_machine, replace=False)]
    if n_human:
        picks += [human[i] for i in rng.choice(len(human), size=n_human, replace=False)]
    order = rng.permutation(len(picks))
    return [picks[i] for i in order]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_instruction_prompt(
    examples: Sequence[Mapping[str, Any]],
    variant: Variant = "generation",
    template: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> str:
    """Render the generation prompt: a header, the examples as "Task i: ...", then "Task n+1:".
    `variables` (sampled attributes) are available to the template beside the built-in ones."""
    context: dict[str, Any] = {
        **(variables or {}),
        "header": HEADERS[variant],
        "examples": [
            {
                "id": str(ex.get("id", "")),
                "instruction": _one_line(str(ex["instruction"])),
                "category": ex.get("category"),
                "is_classification": bool(ex.get("is_classification", False)),
            }
            for ex in examples
        ],
        "next_number": len(examples) + 1,
        "variant": variant,
    }
    try:
        return compile_template(template or DEFAULT_TEMPLATE).render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template uses an unknown variable ({exc.message}); available: "
            + ", ".join((*INSTRUCTION_VARIABLES, *sorted(variables or {})))
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template tried something the sandbox forbids: {exc}") from None


INSTANCE_HEADERS = {
    False: "Come up with an example for each task. Write <none> when a task needs no input.",
    True: "Each task is a classification task. First choose a class label, then write an input with that label.",
}
_MAX_FIELD_CHARS = 300  # keep few-shot examples short: the default model's context is small


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_FIELD_CHARS else text[:_MAX_FIELD_CHARS].rsplit(" ", 1)[0] + " ..."


def build_instance_prompt(
    instruction: str, is_classification: bool, examples: Sequence[Mapping[str, Any]]
) -> str:
    """Few-shot instance prompt. Classification tasks are output-first (label, then an input for it), as in
    the paper, so the labels do not all collapse to the first class the model thinks of."""
    blocks = [INSTANCE_HEADERS[is_classification]]
    for ex in examples:
        inst = (ex.get("instances") or [{"input": "", "output": ""}])[0]
        inp = _clip(inst["input"]) or "<none>"
        out = _clip(inst["output"])
        if is_classification:
            blocks.append(f"Task: {_one_line(ex['instruction'])}\nClass label: {out}\nInput: {inp}")
        else:
            blocks.append(f"Task: {_one_line(ex['instruction'])}\nInput: {inp}\nOutput: {out}")
    lead = "Class label:" if is_classification else "Input:"
    blocks.append(f"Task: {_one_line(instruction)}\n{lead}")
    return "\n\n".join(blocks)
