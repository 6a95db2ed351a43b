import math

import pytest

from workbench.engine import TokenLogprob
from workbench.judge import score_stats, value_distribution

LN = math.log


def _steps(*tokens: tuple[str, dict[str, float]]) -> list[TokenLogprob]:
    return [
        TokenLogprob(tok, LN(top.get(tok, 1e-6)), [(t, LN(p)) for t, p in top.items()]) for tok, top in tokens
    ]


FIVE = [str(i) for i in range(1, 6)]


def test_single_digit_scale_renormalises_over_scale_tokens():
    text = "Ok.\nScore: 4"
    steps = _steps(
        ("Ok.", {"Ok.": 1.0}),
        ("\n", {"\n": 1.0}),
        ("Score", {"Score": 1.0}),
        (":", {":": 1.0}),
        (" ", {" ": 1.0}),
        ("4", {"4": 0.4, "3": 0.2, "0": 0.1, "the": 0.2, "5": 0.1}),
    )
    d = value_distribution(steps, text, text.index("4"), FIVE)
    assert d is not None
    assert d.probs["4"] == pytest.approx(0.4 / 0.7)
    assert d.probs["3"] == pytest.approx(0.2 / 0.7)
    assert d.probs["1"] == 0.0
    assert sum(d.probs.values()) == pytest.approx(1.0)
    assert d.coverage == pytest.approx(0.7)  # "0" and "the" are off the scale
    assert not d.approx


def test_token_with_leading_space_only_matches_alternatives_with_it():
    text = "Ok.\nScore: 2"
    steps = _steps(("Ok.\nScore:", {"Ok.\nScore:": 1.0}), (" 2", {" 2": 0.5, " 5": 0.25, "5": 0.25}))
    d = value_distribution(steps, text, text.index("2"), FIVE)
    assert d is not None
    assert d.probs["2"] == pytest.approx(2 / 3) and d.probs["5"] == pytest.approx(1 / 3)


def test_ten_is_split_from_one_by_the_next_step():
    text = "Fine.\nScore: 10"
    ten = [str(i) for i in range(1, 11)]
    steps = _steps(
        ("Fine.\nScore: ", {"Fine.\nScore: ": 1.0}),
        ("1", {"1": 0.6, "9": 0.4}),
        ("0", {"0": 0.75, "<eos>": 0.2, "5": 0.05}),
    )
    d = value_distribution(steps, text, text.index("10"), ten)
    assert d is not None
    # "15" is off the scale and dropped: after "1", P(10) = 0.75/0.95, P(1) = 0.2/0.95.
    assert d.probs["10"] == pytest.approx(0.6 * 0.75 / 0.95)
    assert d.probs["1"] == pytest.approx(0.6 * 0.2 / 0.95)
    assert d.probs["9"] == pytest.approx(0.4)
    assert not d.approx


def test_off_path_prefix_uses_the_resolver_or_is_marked_approx():
    text = "Fine.\nScore: 7"
    ten = [str(i) for i in range(1, 11)]
    steps = _steps(("Fine.\nScore: ", {"Fine.\nScore: ": 1.0}), ("7", {"7": 0.5, "1": 0.5}))
    d = value_distribution(steps, text, text.index("7"), ten)
    assert d is not None and d.approx and d.probs["1"] == pytest.approx(0.5) and d.probs["10"] == 0.0
    seen = []

    def resolver(prefix, longer):
        seen.append((prefix, tuple(longer)))
        return {"1": 0.2, "10": 0.8}

    d2 = value_distribution(steps, text, text.index("7"), ten, resolver=resolver)
    assert d2 is not None and not d2.approx
    assert seen == [("1", ("1", "10"))]
    assert d2.probs["10"] == pytest.approx(0.4) and d2.probs["1"] == pytest.approx(0.1)


def test_verdict_prefix_of_a_single_candidate_counts_for_it():
    text = "x\nWinner: A"
    steps = _steps(("x\nWinner:", {"x\nWinner:": 1.0}), (" A", {" A": 0.5, " t": 0.3, " B": 0.1, " C": 0.1}))
    d = value_distribution(steps, text, text.index("A"), ["A", "B", "tie"])
    assert d is not None
    assert d.probs == pytest.approx({"A": 0.5 / 0.9, "B": 0.1 / 0.9, "tie": 0.3 / 0.9})


def test_missing_logprobs_or_misaligned_tokens_give_none():
    assert value_distribution(None, "Score: 3", 7, FIVE) is None
    steps = _steps(("Totally different", {"Totally different": 1.0}))
    assert value_distribution(steps, "Score: 3", 7, FIVE) is None


def test_score_stats():
    s = score_stats({1: 0.0, 2: 0.5, 3: 0.0, 4: 0.5, 5: 0.0})
    assert s.expected == pytest.approx(3.0) and s.std == pytest.approx(1.0)
    assert s.entropy == pytest.approx(math.log(2)) and s.mode == 2
    assert score_stats({3: 1.0}).entropy == 0.0
    with pytest.raises(ValueError, match="empty"):
        score_stats({1: 0.0})
