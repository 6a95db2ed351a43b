"""Straightforward pure-Python versions of the lexical metrics: the correctness oracle for the tests
and the baseline the benchmark times against. Same tokenisation as workbench.metrics (lower-cased
`\\w+` runs); self-BLEU follows nltk's sentence_bleu with SmoothingFunction().method1."""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"\w+")


def words(text: str | None) -> list[str]:
    return _WORD.findall((text or "").lower())


def lengths(texts: list[str]) -> list[int]:
    return [len(words(t)) for t in texts]


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float | None:
    grams: list[tuple[str, ...]] = []
    for t in texts:
        grams.extend(ngrams(words(t), n))
    return len(set(grams)) / len(grams) if grams else None


def sentence_bleu(refs: list[list[str]], hyp: list[str], max_n: int = 4) -> float:
    log_sum = 0.0
    first_num = 0
    for n in range(1, max_n + 1):
        counts = Counter(ngrams(hyp, n))
        max_ref: Counter[tuple[str, ...]] = Counter()
        for ref in refs:
            for g, c in Counter(ngrams(ref, n)).items():
                if c > max_ref[g]:
                    max_ref[g] = c
        num = sum(min(c, max_ref[g]) for g, c in counts.items())
        den = max(1, sum(counts.values()))
        if n == 1:
            first_num = num
        p = num / den if num > 0 else 0.1 / den
        log_sum += math.log(p) / max_n
    if first_num == 0:
        return 0.0
    c = len(hyp)
    r = min((len(ref) for ref in refs), key=lambda x: (abs(x - c), x))
    bp = 1.0 if c > r else (0.0 if c == 0 else math.exp(1 - r / c))
    return bp * math.exp(log_sum)


def self_bleu_scores(texts: list[str], max_n: int = 4) -> list[float]:
    toks = [words(t) for t in texts]
    return [sentence_bleu(toks[:i] + toks[i + 1 :], toks[i], max_n) for i in range(len(toks))]
