"""GBNF grammars for "reasoning, then a verdict" judge outputs.

The score alternatives are written out literally (`score ::= "1" | "2" | ... | "5"`), so the sampler
cannot produce anything off the scale. (llama-cpp-python's JSON-schema → GBNF conversion ignores
`minimum`/`maximum`; on a 1-5 scale the default model answered 0 through it.) Multi-digit values are
listed longest first (`"10" | "1" | ...`) which llama.cpp treats as alternatives of one rule either way.

The reasoning is one line of at most `max_reasoning_chars` characters. Keep it well under the token
budget: at roughly 3-4 characters per token, 120 characters need ~35-40 tokens, plus ~4 for the score
line. If the budget runs out first, the row is a parse failure marked `truncated` (never a default).
"""

from __future__ import annotations

from collections.abc import Sequence

SCORE_PREFIX = "\nScore: "
VERDICT_PREFIX = "\nWinner: "


def _literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _alternatives(values: Sequence[str]) -> str:
    if not values:
        raise ValueError("a grammar needs at least one allowed value")
    # Longest first so a reader sees "10" before "1"; the grammar itself is order-independent.
    ordered = sorted(dict.fromkeys(values), key=lambda v: (-len(v), v))
    return " | ".join(_literal(v) for v in ordered)


def _reasoning_rule(max_reasoning_chars: int) -> str:
    if max_reasoning_chars < 1:
        raise ValueError(f"max_reasoning_chars must be >= 1, got {max_reasoning_chars}")
    # One line; llama.cpp GBNF supports bounded repetition {m,n}.
    return f"reasoning ::= [^\\n]{{1,{max_reasoning_chars}}}"


def score_grammar(scale: Sequence[int], *, max_reasoning_chars: int = 160, reasoning: bool = True) -> str:
    """Grammar for `<reasoning>\\nScore: <n>` with n exactly one of `scale`.

    With `reasoning=False` the output is just the number (used to finish a truncated judgment).
    """
    values = [str(int(v)) for v in scale]
    if any(int(v) < 0 for v in values):
        raise ValueError(f"scores must be non-negative integers, got {list(scale)}")
    score_rule = f"score ::= {_alternatives(values)}"
    if not reasoning:
        return f"root ::= score\n{score_rule}\n"
    return f"root ::= reasoning {_literal(SCORE_PREFIX)} score\n{_reasoning_rule(max_reasoning_chars)}\n{score_rule}\n"


def verdict_grammar(allow_ties: bool, *, max_reasoning_chars: int = 160, reasoning: bool = True) -> str:
    """Grammar for `<reasoning>\\nWinner: A|B[|tie]`."""
    verdicts = ["A", "B", "tie"] if allow_ties else ["A", "B"]
    verdict_rule = f"verdict ::= {_alternatives(verdicts)}"
    if not reasoning:
        return f"root ::= verdict\n{verdict_rule}\n"
    return (
        f"root ::= reasoning {_literal(VERDICT_PREFIX)} verdict\n"
        f"{_reasoning_rule(max_reasoning_chars)}\n{verdict_rule}\n"
    )
