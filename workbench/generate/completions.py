"""Completions (distillation): k sampled answers per prompt from a teacher model, written as they finish.

Each sample has its own seed (`config.seed + sample index`) and its full sampling parameters recorded,
so any row can be regenerated exactly. Chat models get the prompt through their own chat template;
base models (like the default Gemma 3 270M) through `CompletionConfig.completion_template`, a sandboxed
Jinja template the user can edit. Row ids hash (prompt id, rendered prompt, parameters, model, seed),
so a resumed run skips rows it already has and never writes a duplicate.

With `CompletionConfig.samplers`, each prompt draws attribute values (keyed by the prompt id, so its k
samples share them) that the completion template and the system prompt reference by name; rows record
them in `attributes` and the values enter the row id (see `workbench.generate.samplers`).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any, Literal

import polars as pl
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..engine import Backend, Generation, GenerationRequest, NoChatTemplateError, SamplingParams
from ..engine.protocol import ProgressCallback
from ..runs import RowWriter, RunStore, row_id
from .samplers import SamplerSpec, attributes_json, check_template_names

__all__ = [
    "DEFAULT_COMPLETION_TEMPLATE",
    "CompletionConfig",
    "compile_template",
    "prompt_records",
    "render_template",
    "run_completions",
]

DEFAULT_COMPLETION_TEMPLATE = (
    "### Instruction:\n{{ instruction }}\n{% if input %}### Input:\n{{ input }}\n{% endif %}### Response:\n"
)

COMPLETION_VARIABLES = ("instruction", "input", "system")
"""What the completion template always gets (sampler names come on top)."""

_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


@functools.lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    """Compile a user template in the sandbox; a syntax error says where and what."""
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template is not valid Jinja (line {exc.lineno}): {exc.message}") from exc


def render_template(source: str, **variables: Any) -> str:
    """Render a user template in the sandbox with StrictUndefined (a typo'd variable is an error)."""
    try:
        return compile_template(source).render(**variables)
    except UndefinedError as exc:
        raise ValueError(
            f"template uses an undefined variable ({exc.message}); available: {', '.join(sorted(variables))}"
        ) from exc
    except SecurityError as exc:
        raise ValueError(f"template tried something the sandbox forbids: {exc}") from exc


class CompletionConfig(BaseModel):
    """How completions are sampled from the teacher model."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=2, ge=1, le=64)
    """Samples per prompt; each gets its own seed (`seed + sample index`)."""
    params: SamplingParams = SamplingParams(temperature=0.7, max_tokens=256)
    """Sampling parameters shared by every sample (their `seed` is replaced per sample)."""
    seed: int = Field(default=0, ge=0, lt=2**32 - 64)
    """Base seed: sample i of every prompt uses seed + i, recorded on the row."""
    completion_template: str = DEFAULT_COMPLETION_TEMPLATE
    """Sandboxed Jinja template that turns a prompt into plain text for base models.
    Variables: `instruction`, `input` (may be empty), `system` (may be empty)."""
    base_stop: tuple[str, ...] = ("\n###", "### Instruction")
    """Extra stop strings used with the completion template, so a base model stops before it
    invents the next '### ...' section (edit this together with the template)."""
    use_chat: Literal["auto", "always", "never"] = "auto"
    """'auto': chat template when the model has one, else the completion template;
    'always': require a chat template (error for base models); 'never': always the completion template."""
    system_prompt: str = ""
    """System message for chat models (empty: none); available to the completion template as `system`."""
    text_column: str | None = None
    """Column of the prompts frame holding the instruction (None: 'instruction' if present, else 'text')."""
    samplers: SamplerSpec | None = None
    """Attribute samplers drawn once per prompt (its k samples share the values). The completion template
    and the system prompt (then itself a sandboxed template) can use `{{ <sampler name> }}`; rows record
    the values in `attributes`. None: no samplers, and ids exactly as before."""

    @field_validator("completion_template")
    @classmethod
    def _template_compiles(cls, value: str) -> str:
        compile_template(value)
        return value

    @model_validator(mode="after")
    def _sampler_names_known(self) -> CompletionConfig:
        if self.samplers is not None:  # an unknown name fails here, before any generation
            self.samplers.check_names(COMPLETION_VARIABLES, "samplers")
            names = (*COMPLETION_VARIABLES, *self.samplers.names)
            check_template_names(self.completion_template, names, "completion_template")
            compile_template(self.system_prompt)
            check_template_names(self.system_prompt, [n for n in names if n != "system"], "system_prompt")
        return self


def _resolve_text_column(prompts: pl.DataFrame, text_column: str | None) -> str:
    if text_column is not None:
        if text_column not in prompts.columns:
            raise ValueError(f"prompts frame has no column {text_column!r}; columns: {prompts.columns}")
        return text_column
    for col in ("instruction", "text"):
        if col in prompts.columns:
            return col
    raise ValueError(
        f"prompts frame needs an 'instruction' or 'text' column (or set text_column); columns: {prompts.columns}"
    )


def prompt_records(prompts: pl.DataFrame, text_column: str | None = None) -> list[dict[str, Any]]:
    """The prompts as dicts with id, instruction, input, round. Rows already dropped or errored
    (status column) are skipped; rows without an id get a content hash so resume still works."""
    col = _resolve_text_column(prompts, text_column)
    frame = prompts
    if "status" in frame.columns:
        frame = frame.filter(pl.col("status").is_null() | (pl.col("status") == "kept"))
    out = []
    for i, row in enumerate(frame.iter_rows(named=True)):
        instruction = row.get(col)
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(f"prompt row {i} has an empty {col!r}: remove it or fill it in")
        inp = row.get("input") or ""
        pid = row.get("id") or row_id("prompt", None, f"{instruction}\n{inp}")
        out.append({"id": pid, "instruction": instruction, "input": inp, "round": row.get("round") or 0})
    return out


def _use_chat(backend: Backend, mode: Literal["auto", "always", "never"]) -> bool:
    if mode == "never":
        return False
    has_template = backend.chat_template is not None
    if mode == "always" and not has_template:
        raise NoChatTemplateError(
            f"model {backend.name!r} has no chat template (it is a base model): "
            "set use_chat='auto' or 'never' to use the completion template"
        )
    return has_template


def _user_message(instruction: str, inp: str) -> str:
    return f"{instruction}\n\n{inp}" if inp else instruction


def plan_completions(
    backend: Backend, prompts: pl.DataFrame, config: CompletionConfig
) -> list[tuple[dict[str, Any], GenerationRequest]]:
    """Every (row skeleton, request) the config asks for, ids included, before anything runs."""
    chat = _use_chat(backend, config.use_chat)
    params = config.params
    if not chat:
        params = params.model_copy(update={"stop": tuple(dict.fromkeys((*params.stop, *config.base_stop)))})
    plan = []
    for rec in prompt_records(prompts, config.text_column):
        messages: tuple[dict[str, str], ...] | None = None
        values = config.samplers.values(config.seed, rec["id"]) if config.samplers is not None else None
        system = config.system_prompt
        if values is not None:
            system = render_template(system, instruction=rec["instruction"], input=rec["input"], **values)
        if chat:
            msgs = [{"role": "system", "content": system}] if system else []
            msgs.append({"role": "user", "content": _user_message(rec["instruction"], rec["input"])})
            messages = tuple(msgs)
            shown_prompt = json.dumps(msgs, ensure_ascii=False)
        else:
            shown_prompt = render_template(
                config.completion_template,
                instruction=rec["instruction"],
                input=rec["input"],
                system=system,
                **(values or {}),
            )
        for sample in range(config.k):
            seed = config.seed + sample
            sp = params.with_seed(seed)
            identity: dict[str, Any] = {"params": sp.as_record(), "model": backend.model_id}
            if values is not None:  # the draw is part of what made the row (even if no template shows it)
                identity["attributes"] = values
            rid = row_id("completion", rec["id"], shown_prompt, identity, seed)
            skeleton = {
                "id": rid,
                "stage": "completion",
                "parent_id": rec["id"],
                "round": rec["round"],
                "prompt": shown_prompt,
                "model": backend.name,
                "model_sha": backend.model_id,
                "model_id": backend.model_id,
                "params": sp.as_json(),
                "seed": seed,
                "sample": sample,
                "instruction": rec["instruction"],
                "input": rec["input"],
                "mode": "chat" if chat else "completion",
            }
            if values is not None:
                skeleton["attributes"] = attributes_json(values)
            if chat:
                req = GenerationRequest(messages=messages, params=sp, key=rid)
            else:
                req = GenerationRequest(prompt=shown_prompt, params=sp, key=rid)
            plan.append((skeleton, req))
    return plan


def completion_row(skeleton: dict[str, Any], gen: Generation) -> dict[str, Any]:
    """A finished generation as a run row: errors are rows too, empty answers are dropped."""
    text = gen.text.strip()
    if not gen.ok:
        status, reason = "error", gen.error or gen.finish_reason
    elif not text:
        status, reason = "dropped", "empty completion"
    else:
        status, reason = "kept", None
    return {
        **skeleton,
        "text": text,
        "status": status,
        "reason": reason,
        "finish_reason": gen.finish_reason,
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "seconds": gen.seconds,
    }


def run_completions(
    backend: Backend,
    store: RunStore,
    prompts: pl.DataFrame,
    config: CompletionConfig | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pl.DataFrame:
    """Generate `config.k` completions for every prompt and append them to `store` as they finish.

    Rows whose id the run already has are skipped (resume). Cancelled rows are not written, so a
    later call picks them up. Returns every completion row of these prompts now in the run
    (earlier ones included), ordered by prompt then sample.
    """
    config = config or CompletionConfig()
    plan = plan_completions(backend, prompts, config)
    existing = store.ids("completion")
    todo = [(s, r) for s, r in plan if s["id"] not in existing]
    if todo:
        with RowWriter(store) as writer:

            def on_result(index: int, gen: Generation) -> None:
                if gen.finish_reason == "cancelled":
                    return
                row = completion_row(todo[index][0], gen)
                writer.add(row)
                if on_row is not None:
                    on_row(row)

            backend.generate(
                [r for _, r in todo], on_progress=on_progress, on_result=on_result, cancel=cancel
            )
    return store.rows_by_id(s["id"] for s, _ in plan)
