import re

import pytest

from workbench.judge import parse_score, parse_verdict, score_grammar, verdict_grammar


def _score_alternatives(grammar: str) -> list[str]:
    line = next(ln for ln in grammar.splitlines() if ln.startswith("score ::="))
    return re.findall(r'"([^"]*)"', line)


@pytest.mark.parametrize("scale", [range(1, 6), range(0, 4), range(1, 11)])
def test_score_alternatives_are_exactly_the_scale(scale):
    g = score_grammar(scale, max_reasoning_chars=90)
    assert sorted(_score_alternatives(g), key=int) == [str(s) for s in scale]
    assert "root ::= reasoning" in g and '"\\nScore: "' in g
    assert "[^\\n]{1,90}" in g


def test_score_only_grammar_and_verdicts():
    assert score_grammar([1, 2, 3], reasoning=False).startswith("root ::= score\n")
    assert '"tie"' in verdict_grammar(True) and '"tie"' not in verdict_grammar(False)
    with pytest.raises(ValueError, match="non-negative"):
        score_grammar([-1, 0])


@pytest.mark.parametrize(
    ("text", "score", "start"),
    [
        (" Good answer.\nScore: 4", 4, 21),
        ("Score: 2 would be harsh. Score: 5", 5, 32),  # the last score line wins
        ("Feedback: fine. [RESULT] 3", 3, 25),
        ("rating = **10**", 10, 11),
    ],
)
def test_parse_score_finds_the_last_score(text, score, start):
    p = parse_score(text, range(1, 11))
    assert p.ok and p.value == score and p.start == start and text[p.start :].startswith(str(score))


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("", "stop", "empty output"),
        ("I think it is good.", "stop", "no 'Score"),
        ("I think it is good and", "length", "truncated"),
        ("Okay.\nScore: 0", "stop", "outside the scale 1-5"),
        ("Okay.\nScore: 6", "stop", "outside the scale 1-5"),
    ],
)
def test_parse_failures_have_reasons_and_no_value(text, finish, reason):
    p = parse_score(text, range(1, 6), finish_reason=finish)
    assert not p.ok and p.value is None and reason in (p.reason or "")


def test_a_cut_multi_digit_score_is_not_trusted():
    p = parse_score("Fine.\nScore: 1", range(1, 11), finish_reason="length")
    assert not p.ok and "could be" in (p.reason or "")
    assert parse_score("Fine.\nScore: 1", range(1, 11), finish_reason="stop").value == 1


def test_parse_verdict():
    assert parse_verdict("ok\nWinner: B", True).value == "B"
    assert parse_verdict("Better: response a", True).value == "A"
    assert parse_verdict("x\nWinner: tie", True).value == "tie"
    no_tie = parse_verdict("x\nWinner: tie", False)
    assert not no_tie.ok and "does not allow ties" in (no_tie.reason or "")
    assert not parse_verdict("A is nice", True).ok
