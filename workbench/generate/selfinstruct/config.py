"""Typed configuration of a self-instruct run."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...engine.params import SamplingParams
from ...filters.text_filters import DEFAULT_BANNED_PREFIXES, DEFAULT_BLACKLIST, TextFilterConfig
from ..samplers import SamplerSpec, check_template_names

# A base model continues the numbered list; the next "Task N" marker (or a blank line) ends its turn.
DEFAULT_INSTRUCTION_PARAMS = SamplingParams(
    temperature=0.9, top_p=0.95, max_tokens=48, stop=("\nTask", "\n\n"), repeat_penalty=1.1
)
DEFAULT_INSTANCE_PARAMS = SamplingParams(
    temperature=0.7, top_p=0.95, max_tokens=64, stop=("\nTask", "\n\n\n")
)


class SelfInstructConfig(BaseModel):
    """Everything that decides what a self-instruct run generates and keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k_human: int = Field(6, ge=0, le=32)
    """Human-written seed tasks shown in each generation prompt (the paper uses 6)."""
    m_machine: int = Field(2, ge=0, le=32)
    """Previously accepted machine-written tasks shown in each prompt (the paper uses 2); seeds fill in
    while fewer exist."""
    num_instructions: int = Field(20, ge=1)
    """Stop once this many new instructions have been accepted into the pool."""
    rounds: int = Field(5, ge=1)
    """Most bootstrap rounds to run, even if the target is not yet reached."""
    prompts_per_round: int = Field(8, ge=1)
    """Generation prompts (one candidate instruction each) per round."""
    classification_fraction: float = Field(0.25, ge=0.0, le=1.0)
    """Share of each round's prompts that use the classification variant (examples drawn from
    classification seeds only; their candidates are marked is_classification)."""
    sampling: SamplingParams = DEFAULT_INSTRUCTION_PARAMS
    """Sampling parameters for instruction generation (the per-request seed is derived from `seed`)."""
    similarity_threshold: float = Field(0.7, ge=0.0, le=1.0)
    """Drop a candidate whose ROUGE-L F1 against any pool instruction is strictly above this."""
    min_words: int = Field(4, ge=0)
    """Drop instructions with fewer words than this (the paper drops 3 words or fewer)."""
    max_words: int = Field(150, ge=1)
    """Drop instructions with more words than this."""
    blacklist: tuple[str, ...] = DEFAULT_BLACKLIST
    """Words or phrases (whole-word, case-insensitive) that drop an instruction (the paper's list)."""
    banned_prefixes: tuple[str, ...] = DEFAULT_BANNED_PREFIXES
    """Instruction openings that drop it (the paper drops 'Write a program')."""
    template: str | None = None
    """Jinja template of the generation prompt (sandboxed). Variables: header, examples (list of
    {id, instruction, category, is_classification}), next_number, variant. None uses the default."""
    seed: int = Field(0, ge=0, lt=2**32)
    """Seeds example sampling and every request: the same seed and model give the same run."""
    generate_instances: bool = True
    """After the instructions, generate one input/output instance for each accepted instruction
    (output first for classification tasks)."""
    instance_examples: int = Field(3, ge=0, le=16)
    """Seed tasks with instances shown as few-shot examples in each instance prompt."""
    instance_sampling: SamplingParams = DEFAULT_INSTANCE_PARAMS
    """Sampling parameters for instance generation."""
    samplers: SamplerSpec | None = None
    """Attribute samplers drawn once per generation prompt (keyed by round and prompt index); `template`
    can use `{{ <sampler name> }}`, and instruction rows record the values in `attributes`. None: no
    samplers, and ids exactly as before."""

    @field_validator("template")
    @classmethod
    def _template_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            from .prompts import compile_template

            compile_template(value)  # raises a clear error on a syntax error or a forbidden construct
        return value

    @model_validator(mode="after")
    def _check(self) -> SelfInstructConfig:
        if self.k_human + self.m_machine == 0:
            raise ValueError("k_human + m_machine must be at least 1: the prompt needs examples")
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) must not exceed max_words ({self.max_words})")
        if self.samplers is not None:  # an unknown name fails here, before any generation
            from .prompts import INSTRUCTION_VARIABLES

            self.samplers.check_names(INSTRUCTION_VARIABLES, "samplers")
            if self.template is not None:
                check_template_names(self.template, (*INSTRUCTION_VARIABLES, *self.samplers.names))
        return self

    @property
    def text_filters(self) -> TextFilterConfig:
        return TextFilterConfig(
            min_words=self.min_words,
            max_words=self.max_words,
            blacklist=self.blacklist,
            banned_prefixes=self.banned_prefixes,
        )
