"""The attribute-sampler editor of the Generate tab: a sampler spec and a prompt template, with a live
preview of the prompts they render.

The spec is written as YAML (a name → sampler mapping, as `workbench.generate.samplers.SamplerSpec` reads
it), the template in the sandboxed Jinja of self-instruct prompts. Every edit re-renders the preview of
the first few generation prompts from the seed pool with the values the run would draw for them (the same
seeded draw: prompt i of round 0), so a typo in a name shows at once, in plain words, at the field.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import polars as pl
import yaml
from pydantic import ValidationError

from widgets.ui import row, tip
from workbench.generate.samplers import SamplerSpec
from workbench.generate.selfinstruct import build_instruction_prompt
from workbench.generate.selfinstruct.config import SelfInstructConfig

__all__ = ["DEFAULT_SAMPLER_TEMPLATE", "DEFAULT_SAMPLER_YAML", "SamplerEditor", "parse_sampler_yaml", "preview_prompts"]

DEFAULT_SAMPLER_YAML = """\
topic:
  kind: category
  values: [cooking, travel, personal finance, gardening, physics, music, health, history]
persona:
  kind: persona        # the project's own list of 30 personas; give `personas: [...]` for yours
"""
DEFAULT_SAMPLER_TEMPLATE = (
    "Come up with a series of tasks that {{ persona }} might ask about {{ topic }}:\n\n"
    "{% for ex in examples %}Task {{ loop.index }}: {{ ex.instruction }}\n{% endfor %}"
    "Task {{ next_number }}:"
)
_FULL = {"width": "auto", "flex": "1 1 auto"}


def parse_sampler_yaml(text: str) -> SamplerSpec:
    """A SamplerSpec from the editor's YAML, or ValueError in one plain sentence naming the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"the sampler spec is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError("the sampler spec must map names to samplers, e.g. 'topic: {kind: category, values: [a, b]}'")
    if "samplers" in data and len(data) == 1 and isinstance(data["samplers"], dict):
        data = data["samplers"]
    try:
        return SamplerSpec(samplers=data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in ("samplers",) and not str(p).endswith("Sampler"))
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "union_tag_invalid":
            message = "kind must be one of category, subcategory, persona or range"
        raise ValueError(f"sampler {where}: {message}" if where else message) from None


def preview_prompts(config: SelfInstructConfig, seeds: pl.DataFrame, n: int = 3) -> list[tuple[dict[str, Any], str]]:
    """The first `n` generation prompts (round 0) with the attribute values the run draws for them.

    The examples are the first `k_human` seeds (a run samples them; the preview shows the template's shape)."""
    examples = seeds.head(max(config.k_human, 1)).to_dicts()
    out = []
    for i in range(n):
        values = config.samplers.values(config.seed, f"0:{i}") if config.samplers else {}
        out.append((values, build_instruction_prompt(examples, "generation", config.template, values)))
    return out


class SamplerEditor(widgets.VBox):
    """Turn samplers on, edit their spec and the prompt template, and see the rendered prompts."""

    def __init__(self, base_config: Callable[[], SelfInstructConfig], seeds: Callable[[], pl.DataFrame]) -> None:
        self._base_config, self._seeds = base_config, seeds
        self.enabled = tip(widgets.Checkbox(False, description="steer prompts with sampled attributes", indent=False),
                           "Draw a topic, persona or other value per prompt and put it in the prompt template.")  # fmt: skip
        self.spec_text = tip(widgets.Textarea(DEFAULT_SAMPLER_YAML, description="samplers", rows=7, layout=_FULL,
                                              continuous_update=False),
                             "Each name is a variable of the template: category, subcategory, persona or range.")  # fmt: skip
        self.template_text = tip(widgets.Textarea(DEFAULT_SAMPLER_TEMPLATE, description="template", rows=5,
                                                  layout=_FULL, continuous_update=False),
                                 "The generation prompt; {{ name }} inserts a sampled value.")  # fmt: skip
        self.preview = widgets.HTML()
        self.preview.add_class("wb-sampler-preview")
        self.error = widgets.HTML()
        self.error.add_class("wb-sampler-error")
        for w in (self.enabled, self.spec_text, self.template_text):
            w.observe(lambda _c: self.refresh(), names="value")
        super().__init__([row([self.enabled]), self.spec_text, self.template_text, self.error, self.preview],
                         layout={"width": "100%"})  # fmt: skip
        self.add_class("wb-sampler-editor")
        self.refresh()

    def spec(self) -> SamplerSpec | None:
        """The spec when samplers are on (ValueError in plain words when it is wrong), else None."""
        return parse_sampler_yaml(self.spec_text.value) if self.enabled.value else None

    def template(self) -> str | None:
        return self.template_text.value if self.enabled.value else None

    def apply(self, config: SelfInstructConfig) -> SelfInstructConfig:
        """`config` with this editor's samplers and template (unchanged when samplers are off)."""
        spec = self.spec()
        if spec is None:
            return config
        try:
            return SelfInstructConfig.model_validate(
                {**config.model_dump(), "samplers": spec.model_dump(), "template": self.template()}
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(str(first["msg"]).removeprefix("Value error, ")) from None

    def refresh(self) -> None:
        """Re-render the preview, or show the problem at the field."""
        for w in (self.spec_text, self.template_text):
            w.disabled = not self.enabled.value
        if not self.enabled.value:
            self.error.value = ""
            self.preview.value = "<i>Samplers are off: prompts use the default template.</i>"
            return
        try:
            config = self.apply(self._base_config())
            shown = preview_prompts(config, self._seeds())
        except Exception as exc:  # any problem is the user's to fix at the field: say it once
            self.error.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"
            self.preview.value = ""
            return
        self.error.value = ""
        parts = []
        for i, (values, prompt) in enumerate(shown, start=1):
            drawn = ", ".join(f"{k} = {v}" for k, v in values.items())
            parts.append(f"<div><b>prompt {i}</b> <small>({html.escape(drawn)})</small>"
                         f"<pre style='white-space:pre-wrap;margin:2px 0 8px'>{html.escape(prompt)}</pre></div>")  # fmt: skip
        self.preview.value = "".join(parts)
