import pytest
from pydantic import ValidationError

from workbench.judge import Rubric, RubricError


def test_edit_makes_a_new_version_with_parent(rubric):
    v2 = rubric.edit(criteria=(*rubric.criteria, "Is concise"))
    assert v2.version != rubric.version
    assert v2.parent_version == rubric.version
    assert rubric.criteria == ("Answers what was asked", "Is correct")  # the old version is untouched
    back = v2.edit(criteria=rubric.criteria)
    assert back.version == rubric.version  # same wording, same hash
    assert back.parent_version == v2.version


def test_version_is_a_content_hash_that_ignores_parent(rubric):
    same = Rubric.model_validate({**rubric.model_dump(), "parent_version": "abc"})
    assert same.version == rubric.version
    assert len(rubric.version) == 12
    assert rubric.edit(task_description="Other.").version != rubric.version


def test_edit_rejects_unknown_fields_and_parent(rubric):
    with pytest.raises(RubricError, match="unknown rubric field"):
        rubric.edit(critera=("typo",))
    with pytest.raises(RubricError, match="parent_version"):
        rubric.edit(parent_version="x")


def test_rubrics_are_immutable(rubric):
    with pytest.raises(ValidationError):
        rubric.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ({1: "only one"}, "at least two"),
        ({1: "a", 2: "b", 4: "d"}, "consecutive"),
        ({-1: "a", 0: "b"}, ">= 0"),
    ],
)
def test_bad_scales_say_what_to_fix(levels, message):
    with pytest.raises(ValidationError, match=message):
        Rubric(name="x", levels=levels)


def test_any_range_scale():
    r = Rubric(name="ten", levels={i: f"level {i}" for i in range(1, 11)})
    assert r.scale == tuple(range(1, 11))
    assert (r.min_score, r.max_score) == (1, 10)
    z = Rubric(name="zero", levels={0: "none", 1: "some", 2: "all"})
    assert z.scale == (0, 1, 2)


def test_render_shows_levels_criteria_and_reference(rubric):
    text = rubric.edit(reference_answer="Blue.").render("Name a colour.", "Red.")
    assert "Name a colour." in text and "Red." in text
    assert "5: Fully right" in text and "1: Off-topic or wrong" in text
    assert "- Is correct" in text
    assert "Reference answer" in text and "Blue." in text
    assert "Reference answer" not in rubric.render("Name a colour.", "Red.")
    pair = rubric.render_pairwise("Q?", "first", "second")
    assert pair.index("first") < pair.index("second")
    assert "A, B or tie" in pair
    assert "A or B" in rubric.edit(allow_ties=False).render_pairwise("Q?", "x", "y")


def test_templates_are_strict_and_sandboxed(rubric):
    with pytest.raises(RubricError, match="undefined variable"):
        rubric.edit(template="{{ instruction }} {{ answr }}").render("q", "a")
    with pytest.raises(RubricError, match="failed to render"):
        rubric.edit(template="{{ instruction.__class__.__mro__[1].__subclasses__() }}").render("q", "a")
    with pytest.raises(ValidationError, match="not valid Jinja"):
        rubric.edit(template="{% for x in %}")


def test_levels_accept_json_style_keys():
    r = Rubric.model_validate({"name": "j", "levels": {"1": "bad", "2": "good"}, "criteria": "- a\n- b"})
    assert r.scale == (1, 2)
    assert r.criteria == ("a", "b")
