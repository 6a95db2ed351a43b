"""Scripted pairwise/absolute judges with verdict probabilities, for the report and method tests."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from workbench.engine import FakeBackend, GenerationRequest, TokenLogprob

_PAIR = re.compile(
    # Row-first templates continue after the pair; rubric-first ones end with it (then the feedback cue).
    r"Response A:\n(.*?)\n\nResponse B:\n(.*?)(?:\n\n(?:Reference answer|Criteria:|Write one)|\nFeedback:|\Z)", re.S
)


def shown(req: GenerationRequest) -> tuple[str, str]:
    """The two responses of a pairwise prompt (A shown first)."""
    text = req.prompt if req.prompt is not None else req.messages[-1]["content"]  # type: ignore[index]
    m = list(_PAIR.finditer(text))[-1]  # the last pair: few-shot examples come first
    return m.group(1), m.group(2)


class VerdictFake(FakeBackend):
    """`p_first(a_text, b_text)` is the probability the judge says A; the verdict is the likelier one
    and the logprobs at the verdict carry both letters (so `verdict_distribution` is recorded)."""

    def __init__(self, p_first: Callable[[str, str], float], name: str = "fake", **kw) -> None:
        self.p_first = p_first
        self._name = name
        super().__init__(responder=self._respond, **kw)

    @property
    def name(self) -> str:
        return self._name

    @property
    def model_id(self) -> str:
        return f"fake:{self._name}"

    def _respond(self, req: GenerationRequest) -> str:
        p = self.p_first(*shown(req))
        return " Compared.\nWinner: " + ("A" if p >= 0.5 else "B")

    def generate(self, requests, *, on_result=None, **kwargs):
        def attach(index, gen):
            req = requests[index]
            if req.params.logprobs is not None:
                p = min(max(self.p_first(*shown(req)), 1e-6), 1 - 1e-6)
                steps = []
                for i, ch in enumerate(gen.text):
                    if i == len(gen.text) - 1:
                        chosen = math.log(p if ch == "A" else 1 - p)
                        steps.append(TokenLogprob(ch, chosen, [("A", math.log(p)), ("B", math.log(1 - p))]))
                    else:
                        steps.append(TokenLogprob(ch, 0.0, [(ch, 0.0)]))
                gen.logprobs = steps
            if on_result is not None:
                on_result(index, gen)

        return super().generate(requests, on_result=attach, **kwargs)
