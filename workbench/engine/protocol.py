"""The backend protocol: one `generate` over many requests, plus scoring and embeddings.

Adapters: `LlamaCppBackend` (in-process, batched) and `OpenAIHTTPBackend` (any OpenAI-compatible
server). `FakeBackend` is a deterministic stand-in for unit tests of logic that does not need a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .params import GenerationRequest
from .results import Generation, Progress, TokenScores

ProgressCallback = Callable[[Progress], None]
ResultCallback = Callable[[int, Generation], None]


@runtime_checkable
class Backend(Protocol):
    """What every model backend offers."""

    @property
    def name(self) -> str:
        """Short human-readable name (model file name or endpoint)."""
        ...

    @property
    def model_id(self) -> str:
        """Model identity for row ids and provenance: the GGUF file's sha256 (in-process), or for an
        endpoint its `model_identity` / `served:<served model name>`. Never an address, so the same
        model behind another URL, on Ray or in-process resumes the same rows."""
        ...

    @property
    def chat_template(self) -> str | None:
        """The model's own chat template, or None for a base model."""
        ...

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        """Complete every request. Returns one Generation per request, in order.

        `on_result(index, generation)` fires as each row finishes (so callers can persist it);
        `cancel.set()` stops within one decode step: finished rows are kept, the rest come back
        with finish_reason 'cancelled'. A bad row (prompt too long) errors alone.
        """
        ...

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        """Log-probability of each token of `continuations[i]` following `prompts[i]`."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised embedding per text (rows of a float32 matrix)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in `text` (no BOS)."""
        ...
