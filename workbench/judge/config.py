"""How a judge run is configured (shared by absolute and pairwise grading)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.engine import SamplingParams


class JudgeConfig(BaseModel):
    """Settings of one judge run. The defaults suit the small default base model on a laptop CPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(default=64, ge=4, le=4096)
    """Most tokens the judge may write (reasoning plus the score line)."""
    max_reasoning_chars: int = Field(default=120, ge=1, le=8000)
    """Upper bound on the reasoning line the grammar allows. English runs ~3-4 characters per token
    but a small model's repetitive output can be ~2.5; keep this under about 2.5 x (max_tokens - 8)
    or long reasoning is truncated before the score (a parse failure, never a default score)."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature of the judge; 0 is greedy (reproducible verdicts)."""
    seed: int = Field(default=0, ge=0, lt=2**32)
    """Sampling seed (part of each judgment's id, so a resumed run skips what it has)."""
    top_logprobs: int = Field(default=20, ge=0, le=20)
    """How many alternatives to record per step; the score distribution is read from these (0 = none)."""
    constrained: bool = True
    """Constrain the output with a GBNF grammar. Turn off to study an unconstrained judge (outputs
    that do not parse are kept and counted as parse failures)."""
    prompt_style: Literal["auto", "completion", "chat"] = "auto"
    """'chat' sends messages (needs a chat template), 'completion' a plain prompt ending in
    `completion_suffix`; 'auto' picks chat when the model has a chat template."""
    completion_suffix: str = "\nFeedback:"
    """What a plain (base-model) prompt ends with, so the model continues with its feedback."""
    instruction_column: str | None = None
    """Column of the judged rows holding the instruction the answer responds to. None: 'instruction'
    (plus a non-empty 'input', as completion rows carry them) if present, else 'prompt'."""
    answer_column: str = "text"
    """Column of the judged rows holding the answer to grade."""
    reference_column: str | None = None
    """Optional column with a per-row reference answer (overrides the rubric's reference)."""
    resolve_multi_digit: bool = True
    """On scales with multi-digit scores, split the mass of an ambiguous prefix ("1" of "10") with
    `backend.score` instead of giving it to the shorter value."""
    both_orders: bool = True
    """Pairwise: judge every pair as (A, B) and as (B, A) to measure position bias."""

    @model_validator(mode="after")
    def _budget(self) -> JudgeConfig:
        if self.constrained and self.max_reasoning_chars > 6 * self.max_tokens:
            raise ValueError(
                f"max_reasoning_chars={self.max_reasoning_chars} cannot fit in max_tokens={self.max_tokens}: "
                f"lower it to about {3 * max(self.max_tokens - 6, 1)} or raise max_tokens"
            )
        return self

    def sampling_params(self, grammar: str | None) -> SamplingParams:
        """The judge's sampling parameters around `grammar` (None when unconstrained)."""
        return SamplingParams(
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            logprobs=self.top_logprobs or None,
            grammar=grammar if self.constrained else None,
        )
