"""Scripted judges for fast logic tests (no model)."""

from __future__ import annotations

import math
import re

from workbench.engine import FakeBackend, GenerationRequest, TokenLogprob

# The response is followed by a blank line, or (rubric-first templates) ends the prompt.
_END = r"(?:\n\n|\nFeedback:|\Z)"


def answer_of(req: GenerationRequest) -> str:
    text = req.prompt if req.prompt is not None else req.messages[-1]["content"]  # type: ignore[index]
    m = re.search(r"Response to grade:\n(.*?)" + _END, text, re.S)
    return m.group(1) if m else ""


def length_judge(req: GenerationRequest) -> str:
    """Scores longer answers higher (a length-biased judge): 1 + chars // 15, capped at 5."""
    return f" Judged by length.\nScore: {min(5, 1 + len(answer_of(req)) // 15)}"


def first_position_judge(req: GenerationRequest) -> str:
    """Always prefers whatever is shown first (maximal position bias)."""
    return " The first one.\nWinner: A"


def longer_pair_judge(req: GenerationRequest) -> str:
    """Prefers the longer of the two responses, whatever the order (no position bias)."""
    text = req.prompt if req.prompt is not None else req.messages[-1]["content"]  # type: ignore[index]
    a = re.search(r"Response A:\n(.*?)\n\nResponse B:", text, re.S).group(1)  # type: ignore[union-attr]
    b = re.search(r"Response B:\n(.*?)" + _END, text, re.S).group(1)  # type: ignore[union-attr]
    return " Longer wins.\nWinner: " + ("A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie")


class LogprobFake(FakeBackend):
    """A FakeBackend that also reports per-character logprobs with scripted alternatives for digits:
    at a digit the chosen digit gets 0.6 and its neighbours 0.2 each."""

    def generate(self, requests, *, on_result=None, **kwargs):
        def attach(index, gen):
            if requests[index].params.logprobs is not None:
                gen.logprobs = self._logprobs(gen.text)
            if on_result is not None:
                on_result(index, gen)

        return super().generate(requests, on_result=attach, **kwargs)

    @staticmethod
    def _logprobs(text):
        steps = []
        for ch in text:
            if ch.isdigit():
                d = int(ch)
                top = [
                    (ch, math.log(0.6)),
                    (str((d + 1) % 10), math.log(0.2)),
                    (str((d - 1) % 10), math.log(0.2)),
                ]
                steps.append(TokenLogprob(ch, math.log(0.6), top))
            else:
                steps.append(TokenLogprob(ch, 0.0, [(ch, 0.0)]))
        return steps
