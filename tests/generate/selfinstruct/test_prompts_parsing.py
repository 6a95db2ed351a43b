from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from workbench.generate.seeds import default_seeds
from workbench.generate.selfinstruct import (
    SelfInstructConfig,
    TemplateError,
    build_instance_prompt,
    build_instruction_prompt,
    parse_instance,
    parse_instruction,
    sample_examples,
)


def _records():
    return default_seeds().select("id", "instruction", "category", "is_classification").to_dicts()


def test_sampling_is_seeded_and_fills_missing_machine_with_human():
    human = _records()
    machine = [{"id": "m1", "instruction": "Machine task one here."}]
    a = sample_examples(human, machine, 6, 2, np.random.default_rng([1, 2, 3]))
    b = sample_examples(human, machine, 6, 2, np.random.default_rng([1, 2, 3]))
    c = sample_examples(human, machine, 6, 2, np.random.default_rng([9, 9, 9]))
    assert [e["id"] for e in a] == [e["id"] for e in b]
    assert [e["id"] for e in a] != [e["id"] for e in c]
    assert len(a) == 8 and sum(e["id"] == "m1" for e in a) == 1  # one machine task exists: 7 human fill in
    machine = [{"id": f"m{i}", "instruction": f"Machine task {i}."} for i in range(5)]
    d = sample_examples(human, machine, 6, 2, np.random.default_rng(0))
    assert sum(e["id"].startswith("m") for e in d) == 2 and len(d) == 8


def test_generation_prompt_is_a_numbered_list_ending_at_next_task():
    ex = _records()[:8]
    prompt = build_instruction_prompt(ex)
    assert prompt.startswith("Come up with a series of tasks:")
    assert prompt.endswith("Task 9:")
    assert f"Task 1: {ex[0]['instruction']}" in prompt
    cls = build_instruction_prompt(ex[:3], "classification")
    assert "classification tasks" in cls and cls.endswith("Task 4:")


def test_custom_template_sandboxed_and_strict():
    tpl = "{{ header }}|{% for e in examples %}{{ e.category }}:{{ e.instruction }};{% endfor %}#{{ next_number }}"
    out = build_instruction_prompt(_records()[:2], template=tpl)
    assert out.endswith("#3") and out.count(";") == 2
    with pytest.raises(TemplateError, match="unknown variable"):
        build_instruction_prompt(_records()[:2], template="{{ nope }}")
    with pytest.raises(TemplateError, match="sandbox"):
        build_instruction_prompt(
            _records()[:2], template="{{ header.__class__.__mro__[1].__subclasses__() }}"
        )
    with pytest.raises(ValidationError, match="syntax error"):
        SelfInstructConfig(template="{% for %}")
    with pytest.raises(ValidationError):
        SelfInstructConfig(bogus=1)


def test_instance_prompts_output_first_for_classification():
    seeds = default_seeds().to_dicts()
    cls_ex = [s for s in seeds if s["is_classification"]][:2]
    p = build_instance_prompt("Decide if the review is positive or negative.", True, cls_ex)
    assert p.endswith("Task: Decide if the review is positive or negative.\nClass label:")
    assert "Class label: " in p.split("\n\n")[1] and p.split("\n\n")[1].index("Class label") < p.split(
        "\n\n"
    )[1].index("Input:")
    q = build_instance_prompt("Write a limerick about tea.", False, seeds[:2])
    assert q.endswith("Input:")


@pytest.mark.parametrize(
    ("completion", "finish", "expected"),
    [
        (" Name three rivers in Africa.\nTask 10: more", "stop", ("Name three rivers in Africa.", None)),
        (" Task 9: describe a sunset in two lines", "stop", ("Describe a sunset in two lines", None)),
        (' "List five uses for a brick."', "stop", ("List five uses for a brick.", None)),
        (
            " Explain the rules of chess in 10. Task 11: x",
            "stop",
            ("Explain the rules of chess in 10. Task 11: x", None),
        ),
        ("   \n\n", "stop", ("", "empty")),
        (
            " Write a long story about a dragon who",
            "length",
            ("Write a long story about a dragon who", "truncated"),
        ),
        (" Sort these words\n11. Another task", "length", ("Sort these words", None)),
    ],
)
def test_parse_instruction(completion, finish, expected):
    assert parse_instruction(completion, finish) == expected


def test_parse_instance():
    p = parse_instance(" <none>\nOutput: Steep the tea for three minutes.\n\nTask: other", False)
    assert (p.input, p.output, p.reason) == ("", "Steep the tea for three minutes.", None)
    p = parse_instance(" positive\nInput: I loved every minute of it.", True)
    assert (p.input, p.output, p.reason) == ("I loved every minute of it.", "positive", None)
    assert parse_instance(" just rambling on", False).reason == "unparseable"
    assert parse_instance(" same\nOutput: same", False).reason == "input_equals_output"
    assert parse_instance(" x\nOutput:", False).reason == "empty_output"
