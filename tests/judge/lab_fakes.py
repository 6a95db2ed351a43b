"""A scripted judge for judge-the-judge tests that finds the judged texts in any prompt template.

It knows the answers it may be shown (`texts`) and locates them in the prompt, so it does not depend
on where a template puts the row. Pairwise: says A (the answer shown first) with probability
`p_first(first, second)` and records both letters' logprobs at the verdict. Absolute: 1 + chars // 15,
capped at 5 (a length-biased grader).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import polars as pl

from workbench.engine import FakeBackend, GenerationRequest, TokenLogprob


def texts_of(pairs: pl.DataFrame) -> list[str]:
    return [t for t in pairs["a_text"].to_list() + pairs["b_text"].to_list() if t]


class LabFake(FakeBackend):
    def __init__(
        self, texts: Iterable[str], p_first: Callable[[str, str], float], name: str = "lab-fake", **kw: Any
    ) -> None:
        self.texts = sorted(set(texts), key=len, reverse=True)
        self.p_first = p_first
        self._name = name
        super().__init__(responder=self._respond, **kw)

    def know(self, texts: Iterable[str]) -> None:
        """Also recognise these answers (texts a test adds after building the backend)."""
        self.texts = sorted(set(self.texts) | set(texts), key=len, reverse=True)

    @property
    def name(self) -> str:
        return self._name

    @property
    def model_id(self) -> str:
        return f"fake:{self._name}"

    @staticmethod
    def _prompt(req: GenerationRequest) -> str:
        return req.prompt if req.prompt is not None else req.messages[-1]["content"]  # type: ignore[index]

    def _located(self, prompt: str) -> list[tuple[int, str]]:
        """(last position, text) of every known answer in the prompt, latest first."""
        found = [(prompt.rfind(t), t) for t in self.texts if t in prompt]
        return sorted(found, key=lambda x: (x[0] + len(x[1]), len(x[1])), reverse=True)

    def shown(self, req: GenerationRequest) -> tuple[str, str] | None:
        prompt = self._prompt(req)
        if "Response A" not in prompt:
            return None
        start = prompt.rfind("Response A")  # the judged pair comes after any few-shot examples
        last_two = [(p, t) for p, t in self._located(prompt) if p > start][:2]
        if not last_two:
            return None
        if len(last_two) == 1:  # the other reply is empty: which slot is it in?
            p, t = last_two[0]
            return (t, "") if p < prompt.rfind("Response B") else ("", t)
        (_pa, ta), (_pb, tb) = sorted(last_two)
        return ta, tb

    def _respond(self, req: GenerationRequest) -> str:
        pair = self.shown(req)
        if pair is None:
            located = self._located(self._prompt(req))
            answer = located[0][1] if located else ""
            return f" Judged by length.\nScore: {min(5, 1 + len(answer) // 15)}"
        return " Compared.\nWinner: " + ("A" if self.p_first(*pair) >= 0.5 else "B")

    def generate(self, requests, *, on_result=None, **kwargs):
        def attach(index, gen):
            req = requests[index]
            pair = self.shown(req)
            if req.params.logprobs is not None and pair is not None:
                p = min(max(self.p_first(*pair), 1e-6), 1 - 1e-6)
                steps = [TokenLogprob(ch, 0.0, [(ch, 0.0)]) for ch in gen.text[:-1]]
                last = gen.text[-1]
                steps.append(TokenLogprob(last, math.log(p if last == "A" else 1 - p),
                                          [("A", math.log(p)), ("B", math.log(1 - p))]))  # fmt: skip
                gen.logprobs = steps
            if on_result is not None:
                on_result(index, gen)

        return super().generate(requests, on_result=attach, **kwargs)
