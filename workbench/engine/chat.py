"""Render a GGUF's own chat template (Jinja) in a sandbox, the way Hugging Face tokenizers do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import NoChatTemplateError


def _raise(message: str) -> None:
    raise TemplateError(message)


def _env() -> ImmutableSandboxedEnvironment:
    # Default (lenient) Undefined, as Hugging Face renders templates: many test optional fields.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def render_chat(
    template: str | None,
    messages: Sequence[dict[str, str]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
    model_name: str = "this model",
) -> str:
    """The prompt text a chat model expects for `messages`."""
    if not template:
        raise NoChatTemplateError(
            f"{model_name} has no chat template (it is a base model): send a plain `prompt` instead of "
            "`messages`, or load a chat/instruct GGUF"
        )
    ctx: dict[str, Any] = {
        "messages": [dict(m) for m in messages],
        "bos_token": bos_token,
        "eos_token": eos_token,
        "add_generation_prompt": add_generation_prompt,
    }
    try:
        return _env().from_string(template).render(**ctx)
    except TemplateError as exc:
        raise NoChatTemplateError(f"the chat template of {model_name} failed to render: {exc}") from exc
