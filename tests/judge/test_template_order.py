"""Default judge templates put everything the rubric fixes first, so judge prompts share a long prefix."""

from __future__ import annotations

import pytest

from workbench.judge import FEWSHOT_PAIRWISE_TEMPLATE, fewshot_rubric, likert_rubric
from workbench.judge.rubric import (
    DEFAULT_ABSOLUTE_TEMPLATE,
    DEFAULT_PAIRWISE_TEMPLATE,
    ROW_FIRST_ABSOLUTE_TEMPLATE,
    ROW_FIRST_PAIRWISE_TEMPLATE,
    RubricError,
    templates_for,
)

RUBRIC = likert_rubric(
    "helpful", "Judge helpfulness.", ["Correct", "Concise"], {1: "Wrong.", 2: "Partly right.", 3: "Right."},
    reference_answer=None,
)


def _shared(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def test_rubric_first_prompts_share_everything_the_rubric_fixes():
    one, two = RUBRIC.render("Say hi.", "Hello!"), RUBRIC.render("What is 2+2?", "Four.")
    fixed = _shared(one, two)
    for part in ("Judge helpfulness.", "- Correct", "3: Right.", 'then "Score: " and an integer from 1 to 3'):
        assert part in fixed
    assert one.endswith("Response to grade:\nHello!") and "Say hi." not in fixed
    pa, pb = RUBRIC.render_pairwise("Q1", "a1", "b1"), RUBRIC.render_pairwise("Q2", "a2", "b2")
    assert 'then "Winner: " and A, B or tie.' in _shared(pa, pb) and pa.endswith("Response B:\nb1")


def test_row_first_order_is_kept_and_hashes_to_another_version():
    old = RUBRIC.edit(**templates_for("row_first"))
    assert old.template == ROW_FIRST_ABSOLUTE_TEMPLATE and old.pairwise_template == ROW_FIRST_PAIRWISE_TEMPLATE
    assert old.version != RUBRIC.version and old.parent_version == RUBRIC.version
    text = old.render("Say hi.", "Hello!")
    assert text.index("Response to grade:") < text.index("Criteria:")  # the order of earlier versions
    back = old.edit(**templates_for("rubric_first"))  # editing back gives the same hash again
    assert back.version == RUBRIC.version and back.template == DEFAULT_ABSOLUTE_TEMPLATE
    assert back.pairwise_template == DEFAULT_PAIRWISE_TEMPLATE
    with pytest.raises(RubricError, match="template order must be one of"):
        templates_for("middle")  # type: ignore[arg-type]


def test_reference_answers_stay_in_the_row_part():
    with_ref = RUBRIC.render("Q", "A", reference_answer="The best answer.")
    assert with_ref.index("Reference answer") > with_ref.index("Score rubric") and with_ref.endswith("A")
    assert RUBRIC.render_pairwise("Q", "a", "b", reference_answer="R").index("Reference answer:") > 0


def test_fewshot_template_puts_the_output_format_before_the_examples():
    rubric = fewshot_rubric(RUBRIC)
    assert rubric.pairwise_template == FEWSHOT_PAIRWISE_TEMPLATE
    ex = [{"instruction": "I", "response_a": "x", "response_b": "y", "winner": "A"}]
    a = rubric.render_pairwise("Q1", "a1", "b1", fewshot_examples=ex)
    b = rubric.render_pairwise("Q2", "a2", "b2", fewshot_examples=[{**ex[0], "winner": "B"}])
    assert 'then "Winner: "' in _shared(a, b) and a.endswith("Response B:\nb1")
