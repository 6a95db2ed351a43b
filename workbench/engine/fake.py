"""A deterministic, model-free backend for fast unit tests of pipeline logic.

Texts depend only on the prompt and the seed, so tests can check reproducibility and resume logic
without loading a GGUF. Pass `responder` to script exact outputs (for example judge verdicts).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from .errors import NoChatTemplateError
from .params import GenerationRequest
from .protocol import ProgressCallback, ResultCallback
from .results import FinishReason, Generation, Progress, TokenScores

_WORDS = ["write", "explain", "list", "describe", "summarize", "classify", "translate", "compare", "give", "create", "suggest", "a", "an", "the", "short", "poem", "story", "email", "recipe", "plan", "three", "five", "reasons", "ways", "steps", "about", "for", "of", "how", "why", "what", "which", "people", "water", "cities", "music", "history", "science", "health", "money", "travel", "code"]


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def fake_text(prompt: str, seed: int, n_words: int) -> str:
    """Pseudo-random words drawn from a hash of (prompt, seed)."""
    rng = np.random.default_rng(int.from_bytes(_digest(prompt, str(seed))[:8], "little"))
    words = rng.choice(_WORDS, size=n_words)
    return " ".join(words).capitalize() + "."


class FakeBackend:
    """Implements the Backend protocol with hash-derived text."""

    def __init__(
        self,
        responder: Callable[[GenerationRequest], str] | None = None,
        *,
        chat_template: str | None = None,
        delay_s: float = 0.0,
        words: int = 12,
    ) -> None:
        self._responder = responder
        self._chat_template = chat_template
        self._delay_s = delay_s
        self._words = words
        self.calls: list[GenerationRequest] = []

    @property
    def name(self) -> str:
        return "fake"

    @property
    def model_id(self) -> str:
        return "fake:0"

    @property
    def chat_template(self) -> str | None:
        return self._chat_template

    def _prompt_text(self, req: GenerationRequest) -> str:
        if req.messages is not None:
            if self._chat_template is None:
                raise NoChatTemplateError("fake backend has no chat template; send a plain prompt")
            return "\n".join(f"{m['role']}: {m['content']}" for m in req.messages) + "\nassistant:"
        assert req.prompt is not None
        return req.prompt

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        t0 = time.perf_counter()
        out: list[Generation] = []
        tokens = 0
        for i, req in enumerate(requests):
            if cancel is not None and cancel.is_set():
                out.append(Generation(req.key, "", "cancelled"))
                continue
            self.calls.append(req)
            prompt = self._prompt_text(req)
            if self._responder is not None:
                text = self._responder(req)
            else:
                text = fake_text(prompt, req.params.seed, min(self._words, req.params.max_tokens))
            finish: FinishReason = "length" if len(text.split()) >= req.params.max_tokens else "stop"
            for s in req.params.stop:
                cut = text.find(s)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            if self._delay_s:
                time.sleep(self._delay_s)
            n = len(text.split())
            tokens += n
            gen = Generation(
                req.key, text, finish, len(prompt.split()), n, time.perf_counter() - t0, prompt_text=prompt
            )
            out.append(gen)
            if on_result is not None:
                on_result(i, gen)
            if on_progress is not None:
                on_progress(Progress(i + 1, len(requests), tokens, time.perf_counter() - t0))
        return out

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations must have the same length")
        out = []
        for p, c in zip(prompts, continuations, strict=True):
            toks = c.split()
            lps = [-(1 + _digest(p, t)[0] / 64) for t in toks]
            out.append(TokenScores(toks, lps))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        dim = 64
        mat = np.zeros((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                mat[i, _digest(w)[0] % dim] += 1.0
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        return mat / np.where(norms == 0, 1, norms)

    def count_tokens(self, text: str) -> int:
        return len(text.split())
