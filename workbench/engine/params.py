"""Typed sampling parameters and generation requests, shared by every backend."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SamplingParams(BaseModel):
    """How one completion is sampled. Validated before anything reaches llama.cpp."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.8, ge=0.0, le=5.0)
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    """Nucleus sampling: keep the smallest set of tokens whose probability sums to this."""
    top_k: int = Field(40, ge=0)
    """Keep only the k most likely tokens (0 disables)."""
    min_p: float = Field(0.05, ge=0.0, le=1.0)
    """Drop tokens whose probability is below min_p times the top token's (0 disables)."""
    repeat_penalty: float = Field(1.0, gt=0.0, le=5.0)
    """Penalty on tokens seen in the last `repeat_last_n` tokens (1.0 disables)."""
    repeat_last_n: int = Field(64, ge=0)
    """How many recent tokens the repetition penalty looks at."""
    max_tokens: int = Field(128, ge=1, le=32768)
    """Most new tokens to generate; the context may cut a row shorter (finish_reason 'length')."""
    stop: tuple[str, ...] = ()
    """Strings that end the completion; the stop string itself is not included."""
    seed: int = Field(0, ge=0, lt=2**32)
    """Per-request seed: the same seed, prompt and parameters give the same text."""
    logprobs: int | None = Field(None, ge=0, le=20)
    """If set, record each chosen token's log-probability and this many top alternatives."""
    grammar: str | None = None
    """A GBNF grammar the output must follow (root rule `root`)."""
    json_schema: dict[str, Any] | None = None
    """A JSON schema the output must follow (converted to GBNF)."""

    @model_validator(mode="after")
    def _one_constraint(self) -> SamplingParams:
        if self.grammar is not None and self.json_schema is not None:
            raise ValueError("give either `grammar` or `json_schema`, not both")
        if any(s == "" for s in self.stop):
            raise ValueError("stop strings must be non-empty")
        return self

    def with_seed(self, seed: int) -> SamplingParams:
        return self.model_copy(update={"seed": seed})

    def as_record(self) -> dict[str, Any]:
        """The parameters as a plain dict (for provenance columns)."""
        return self.model_dump(mode="json")

    def as_json(self) -> str:
        return json.dumps(self.as_record(), sort_keys=True)


class GenerationRequest(BaseModel):
    """One prompt (plain text) or one conversation (chat messages) to complete."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = None
    """Plain-completion prompt text."""
    messages: tuple[dict[str, str], ...] | None = None
    """Chat messages ({"role", "content"}); needs a model with a chat template."""
    params: SamplingParams = SamplingParams()
    """Sampling parameters for this request."""
    key: str | None = None
    """Caller's identifier, echoed on the result (for example the row id)."""
    add_bos: bool = True
    """Prepend the model's BOS token when the model wants one."""
    parse_special: bool | None = None
    """Read control-token text (e.g. `<start_of_turn>`) as special tokens. Default: yes for chat
    messages (the template writes them), no for plain prompts (user text stays text). Magpie-style
    prompts that carry a template's pre-query prefix need True."""

    @model_validator(mode="after")
    def _exactly_one_input(self) -> GenerationRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        if self.messages is not None:
            for i, m in enumerate(self.messages):
                if set(m) - {"role", "content"} or "role" not in m or "content" not in m:
                    raise ValueError(f"messages[{i}] must have exactly the keys 'role' and 'content'")
        return self

    @property
    def kind(self) -> Literal["completion", "chat"]:
        return "chat" if self.messages is not None else "completion"
