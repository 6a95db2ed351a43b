"""The judge's probability over verdict values, read from token logprobs at the verdict position.

How it is computed (and its limits):

1. The generation is run with `SamplingParams(logprobs=k)` (k=20 by default): every step records the
   raw (temperature 1, untruncated) log-probability of the chosen token and the k most likely tokens.
2. The step whose token contains the first character of the verdict ("4" in "...\\nScore: 4") is found
   by walking the token texts. Characters of that token before the verdict (a leading space in " 4")
   must be matched by the alternatives too, since only those are consistent with the text so far.
3. Each alternative is mapped to a value of the scale; alternatives that are not (words, "0" or "6"
   on a 1-5 scale, which the grammar forbids) are dropped and the rest are **renormalised over the
   scale's tokens present in the top k**. `coverage` is the raw probability those tokens had before
   renormalising: a low coverage means the judge mostly wanted to say something else.
4. Multi-digit scales: on a 1-10 scale the token "1" may start "1" or "10". On the path the judge took,
   the next step's alternatives split it ("0" continues to 10, anything else ends at 1). Off the path
   a `resolver` may split it (the pipeline uses `backend.score`); without one the mass goes to the
   shorter value and `approx` is set. Tokenizers that write "10" as one token need no split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..engine.results import TokenLogprob

# (prefix emitted so far, candidates starting with it) -> probability of each candidate given the prefix.
Resolver = Callable[[str, Sequence[str]], Mapping[str, float]]


@dataclass
class ValueDistribution:
    """Probabilities over the candidate values (summing to 1), and how trustworthy they are."""

    probs: dict[str, float]
    coverage: float
    """Raw probability mass the candidate tokens had at the verdict step, before renormalising."""
    approx: bool = False
    """True when an ambiguous prefix ("1" of "10") had to be split without evidence."""
    notes: list[str] = field(default_factory=list)


def locate_step(logprobs: Sequence[TokenLogprob], text: str, start: int) -> tuple[int, str] | None:
    """(step index, characters of that step's token before `start`) for the token covering `start`."""
    pos = 0
    for i, step in enumerate(logprobs):
        end = pos + len(step.token)
        if pos <= start < end:
            if text[pos:start] != step.token[: start - pos]:
                return None  # token texts do not line up with the output text
            return i, step.token[: start - pos]
        pos = end
    return None


def _classify(s: str, candidates: Sequence[str], is_end: bool) -> tuple[str, str | None]:
    """('complete', value) | ('prefix', s) | ('invalid', None) for a value text `s` so far."""
    if is_end:
        return ("complete", s) if s in candidates else ("invalid", None)
    starting = [c for c in candidates if c.startswith(s)]
    if len(starting) == 1:
        return "complete", starting[0]
    if len(starting) > 1:
        return "prefix", s
    # A candidate followed by a non-alphanumeric character ("4." or "A\n") ends the value there.
    ended = [c for c in candidates if s.startswith(c) and len(s) > len(c) and not s[len(c)].isalnum()]
    if ended:
        return "complete", max(ended, key=len)
    return "invalid", None


def value_distribution(
    logprobs: Sequence[TokenLogprob] | None,
    text: str,
    start: int | None,
    candidates: Sequence[str],
    *,
    resolver: Resolver | None = None,
) -> ValueDistribution | None:
    """Distribution over `candidates` at the verdict starting at character `start` of `text`.

    Returns None when there are no logprobs or the verdict position cannot be found in them.
    """
    if not logprobs or start is None:
        return None
    located = locate_step(logprobs, text, start)
    if located is None:
        return None
    first, lead = located
    raw: dict[str, float] = dict.fromkeys(candidates, 0.0)
    unresolved: dict[str, float] = {}
    result = ValueDistribution(probs={}, coverage=0.0)

    def walk(step: int, consumed: str, mass: float) -> None:
        entry = logprobs[step]
        alts = dict(entry.top)
        alts.setdefault(entry.token, entry.logprob)
        pre = lead if step == first else ""
        valid: list[tuple[str, str, str | None, float]] = []
        for tok, lp in alts.items():
            if not tok.startswith(pre):
                continue
            rest = tok[len(pre) :]
            if step == first and rest == "":
                continue  # the token ends before the verdict starts: not a verdict token
            is_end = step > first and (rest == "" or not rest[0].isalnum())
            s = consumed if is_end else consumed + rest
            kind, value = _classify(s, candidates, is_end)
            if kind != "invalid":
                valid.append((tok, kind, value, math.exp(lp)))
        total = sum(p for *_, p in valid)
        if step == first:
            result.coverage = total
        if total <= 0:
            if consumed in candidates:  # nothing valid follows: the chosen path ended at `consumed`
                raw[consumed] += mass
            else:
                unresolved[consumed] = unresolved.get(consumed, 0.0) + mass
            return
        for tok, kind, value, p in valid:
            share = mass * p / total
            assert value is not None
            if kind == "complete":
                raw[value] += share
            elif tok == entry.token and step + 1 < len(logprobs):
                walk(step + 1, value, share)
            else:
                unresolved[value] = unresolved.get(value, 0.0) + share

    walk(first, "", 1.0)
    for prefix, mass in unresolved.items():
        longer = [c for c in candidates if c.startswith(prefix)]
        split = dict(resolver(prefix, longer)) if resolver is not None else {}
        norm = sum(split.get(c, 0.0) for c in longer)
        if norm > 0:
            for c in longer:
                raw[c] += mass * split.get(c, 0.0) / norm
        else:
            result.approx = True
            result.notes.append(f"mass {mass:.3f} of prefix {prefix!r} given to the shortest value")
            target = prefix if prefix in candidates else min(longer, key=len)
            raw[target] += mass
    z = sum(raw.values())
    result.probs = {c: (v / z if z > 0 else 0.0) for c, v in raw.items()}
    return result


@dataclass(frozen=True)
class ScoreStats:
    """Expected score and spread of a score distribution."""

    expected: float
    std: float
    entropy: float
    """Shannon entropy in nats (0 = certain; ln(K) = uniform over K levels)."""
    mode: int


def score_stats(probs: Mapping[int, float]) -> ScoreStats:
    """Expected value, standard deviation, entropy and mode of a distribution over integer scores."""
    z = sum(probs.values())
    if z <= 0:
        raise ValueError("the score distribution is empty (all probabilities are zero)")
    p = {k: v / z for k, v in probs.items()}
    mean = sum(k * v for k, v in p.items())
    var = sum(v * (k - mean) ** 2 for k, v in p.items())
    entropy = -sum(v * math.log(v) for v in p.values() if v > 0)
    mode = max(p, key=lambda k: (p[k], -k))
    return ScoreStats(mean, math.sqrt(var), entropy, mode)
