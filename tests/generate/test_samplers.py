"""Attribute samplers: seeded, stable draws; bad specs refused; values in templates, rows and row ids."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from workbench.engine import FakeBackend, SamplingParams
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.generate.evolve import EvolveConfig, run_evolution
from workbench.generate.samplers import (
    DEFAULT_PERSONAS,
    CategorySampler,
    PersonaSampler,
    RangeSampler,
    SamplerSpec,
    SubcategorySampler,
    attribute_columns,
    check_template_names,
)
from workbench.generate.seeds import default_seeds
from workbench.generate.selfinstruct import SelfInstructConfig, build_instruction_prompt, run_self_instruct
from workbench.runs import RunStore, row_id

SPEC = SamplerSpec(
    samplers={
        "topic": CategorySampler(values=("cooking", "travel", "math")),
        "dish": SubcategorySampler(
            parent="topic",
            values={"cooking": ("soup", "bread"), "travel": ("train", "ferry"), "math": ("primes", "graphs")},
        ),
        "persona": PersonaSampler(),
        "level": RangeSampler(low=1, high=5),
    }
)
PROMPTS = pl.DataFrame(
    {"id": ["p1", "p2", "p3"], "instruction": ["Write a haiku.", "Add the numbers.", "Name a colour."]}
)
TEMPLATE = (
    "As {{ persona }}, on {{ topic }} ({{ dish }}, level {{ level }}):\n{{ instruction }}\n### Response:\n"
)


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore.create(tmp_path, "run")


# -- draws ------------------------------------------------------------------------------------------------


def test_draws_are_seeded_and_row_i_depends_only_on_seed_key_and_name():
    a = SPEC.draw(20, seed=3)
    assert a.columns == ["topic", "dish", "persona", "level"]
    assert a.schema["level"] == pl.Int64 and a.schema["persona"] == pl.Utf8
    assert a.equals(SPEC.draw(20, seed=3))
    assert SPEC.draw(10, seed=3).equals(a.head(10))  # a longer (resumed) run keeps the earlier rows' values
    assert SPEC.draw(keys=[7, 3], seed=3).to_dicts() == [a.row(7, named=True), a.row(3, named=True)]
    assert not a.equals(SPEC.draw(20, seed=4))
    # one more sampler leaves every existing sampler's values alone
    more = SamplerSpec(samplers={**SPEC.samplers, "tone": CategorySampler(values=("dry", "warm"))})
    assert more.draw(20, seed=3).drop("tone").equals(a)


def test_subcategory_is_drawn_from_its_own_category():
    spec = SPEC.samplers["dish"]
    assert isinstance(spec, SubcategorySampler)
    frame = SPEC.draw(300, seed=1)
    for topic, dish in frame.select("topic", "dish").iter_rows():
        assert dish in spec.values[topic]
    assert frame["dish"].n_unique() == 6  # every subcategory of every category shows up


def test_weights_are_respected():
    spec = SamplerSpec(samplers={"c": CategorySampler(values=("a", "b", "c", "never"), weights=(6, 3, 1, 0))})
    n = 6000
    counts = spec.draw(n, seed=0)["c"].value_counts()
    observed = dict(zip(counts["c"], counts["count"], strict=True))
    assert "never" not in observed  # a zero weight is never drawn
    expected = {"a": 0.6 * n, "b": 0.3 * n, "c": 0.1 * n}
    chi2 = sum((observed.get(k, 0) - e) ** 2 / e for k, e in expected.items())
    assert chi2 < 13.8, (observed, chi2)  # chi-square, 2 dof, p = 0.001 (fixed seed: not flaky)


def test_ranges_personas_and_weighted_subcategories():
    spec = SamplerSpec(
        samplers={
            "n": RangeSampler(low=-2, high=2),
            "t": RangeSampler(low=0.0, high=1.0, dtype="float", decimals=1),
            "p": PersonaSampler(personas=("a pilot", "a baker")),
            "d": PersonaSampler(),
            "k": CategorySampler(values=("x", "y")),
            "s": SubcategorySampler(
                parent="k", values={"x": ("x1", "x2"), "y": ("y1",)}, weights={"x": (0, 1)}
            ),
        }
    )
    frame = spec.draw(400, seed=5)
    assert sorted(frame["n"].unique().to_list()) == [-2, -1, 0, 1, 2]
    assert frame["t"].min() >= 0.0 and frame["t"].max() <= 1.0  # type: ignore[operator]
    assert all(round(t, 1) == t for t in frame["t"])
    assert set(frame["p"]) == {"a pilot", "a baker"}
    assert set(frame["d"]) <= set(DEFAULT_PERSONAS) and frame["d"].n_unique() > 20
    assert set(frame.filter(pl.col("k") == "x")["s"]) == {"x2"}  # x1 has weight 0
    assert len(DEFAULT_PERSONAS) == 30 and len(set(DEFAULT_PERSONAS)) == 30


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: CategorySampler(values=("a", "b"), weights=(1,)), "weights"),
        (lambda: CategorySampler(values=("a", "b"), weights=(1, -1)), "weights"),
        (lambda: CategorySampler(values=("a", "b"), weights=(0, 0)), "weights"),
        (lambda: CategorySampler(values=()), "values"),
        (lambda: CategorySampler(values=("a", "a")), "values"),
        (lambda: PersonaSampler(personas=()), "personas"),
        (lambda: RangeSampler(low=5, high=1), "low"),
        (lambda: RangeSampler(low=0.5, high=2), "whole"),
        (lambda: SubcategorySampler(parent="k", values={"x": ()}), "values['x']"),
        (lambda: SubcategorySampler(parent="k", values={"x": ("a",)}, weights={"x": (1, 2)}), "weights['x']"),
        (
            lambda: CategorySampler.model_validate({"values": ["a"], "colour": "red"}),
            "colour",
        ),  # extra="forbid"
        (
            lambda: SamplerSpec(
                samplers={
                    "k": CategorySampler(values=("x",)),
                    "s": SubcategorySampler(parent="k", values={"z": ("a",)}),
                }
            ),
            "samplers['s'].values: unknown parent categories ['z']",
        ),
        (
            lambda: SamplerSpec(
                samplers={
                    "k": CategorySampler(values=("x", "y")),
                    "s": SubcategorySampler(parent="k", values={"x": ("a",)}),
                }
            ),
            "parent categories ['y']",
        ),
        (
            lambda: SamplerSpec(samplers={"s": SubcategorySampler(parent="nope", values={"x": ("a",)})}),
            "samplers['s'].parent",
        ),
        (lambda: SamplerSpec(samplers={"my-topic": PersonaSampler()}), "samplers['my-topic']"),
        (lambda: SamplerSpec(samplers={"loop": PersonaSampler()}), "samplers['loop']"),
        (lambda: SamplerSpec(samplers={}), "samplers"),
        (lambda: SamplerSpec.model_validate({"samplers": {"x": {"kind": "colour"}}}), "kind"),
    ],
)
def test_bad_specs_are_clear_value_errors(build, field):
    with pytest.raises(ValueError, match=None) as info:
        build()
    assert field in str(info.value)


# -- templates ----------------------------------------------------------------------------------------------


def test_unknown_names_fail_before_generation_and_list_what_is_available():
    with pytest.raises(ValueError, match=r"persna.*available: .*instruction.*persona"):
        CompletionConfig(samplers=SPEC, completion_template="{{ persna }} {{ instruction }}")
    with pytest.raises(ValueError, match="system_prompt uses unknown name"):
        CompletionConfig(samplers=SPEC, system_prompt="You are {{ who }}.")
    with pytest.raises(ValueError, match=r"tpoic.*available: .*examples.*header.*topic"):
        SelfInstructConfig(samplers=SPEC, template="{% if false %}{{ tpoic }}{% endif %}{{ header }}")
    with pytest.raises(ValueError, match=r"operator 'mine' uses unknown name"):
        EvolveConfig(samplers=SPEC, operators=("mine",), templates={"mine": "{{ instruction }} {{ who }}"})
    with pytest.raises(ValueError, match="clash"):
        CompletionConfig(samplers=SamplerSpec(samplers={"input": PersonaSampler()}))
    check_template_names("{% for ex in examples %}{{ ex }}{{ loop.index }}{% endfor %}", ["examples"])


def test_instruction_prompt_renders_sampled_values():
    examples = [{"id": "a", "instruction": "Name a fruit."}]
    template = "{{ header }} About {{ topic }}, for {{ persona }}:\n{% for ex in examples %}Task: {{ ex.instruction }}\n{% endfor %}Task:"
    values = {"topic": "boats", "persona": "a sailor"}
    prompt = build_instruction_prompt(examples, "generation", template, values)
    assert prompt.startswith(
        "Come up with a series of tasks: About boats, for a sailor:\nTask: Name a fruit."
    )


# -- rows and ids -------------------------------------------------------------------------------------------


def test_completions_record_values_and_render_them(store):
    backend = FakeBackend()
    cfg = CompletionConfig(k=2, seed=11, samplers=SPEC, completion_template=TEMPLATE)
    out = run_completions(backend, store, PROMPTS, cfg)
    assert out.height == 6
    for row in out.iter_rows(named=True):
        values = json.loads(row["attributes"])
        assert values == SPEC.values(11, row["parent_id"])  # keyed by the prompt id
        assert row["prompt"].startswith(
            f"As {values['persona']}, on {values['topic']} ({values['dish']}, level"
        )
    # the k samples of one prompt share its draw (comparable answers to one prompt)
    assert out.group_by("parent_id").agg(pl.col("attributes").n_unique())["attributes"].to_list() == [1, 1, 1]
    wide = attribute_columns(store.rows())
    assert {"attr_topic", "attr_persona", "attr_dish", "attr_level"} <= set(wide.columns)
    assert wide["attr_topic"].to_list() == [json.loads(a)["topic"] for a in wide["attributes"]]


def test_ids_without_samplers_are_unchanged(store):
    out = run_completions(FakeBackend(), store, PROMPTS, CompletionConfig(k=1, seed=3))
    sp = CompletionConfig().params
    prompt = "### Instruction:\nWrite a haiku.\n### Response:\n"
    params = sp.model_copy(update={"stop": tuple(dict.fromkeys((*sp.stop, "\n###", "### Instruction")))})
    expected = row_id(
        "completion", "p1", prompt, {"params": params.with_seed(3).as_record(), "model": "fake:0"}, 3
    )
    assert out["id"][0] == expected
    assert "attributes" not in out.columns or out["attributes"].is_null().all()


def test_ids_stable_on_resume_and_different_with_different_draws(store, tmp_path):
    cfg = CompletionConfig(k=1, samplers=SPEC, completion_template=TEMPLATE)
    first = run_completions(FakeBackend(), store, PROMPTS, cfg)
    again_backend = FakeBackend()
    again = run_completions(again_backend, store, PROMPTS, cfg)
    assert again["id"].to_list() == first["id"].to_list() and not again_backend.calls  # nothing regenerated
    assert store.rows().height == 3
    # chat mode, a system prompt that shows no sampled value: the draw still decides the id
    chat = FakeBackend(chat_template="{{ messages }}")
    spec_a = SamplerSpec(samplers={"persona": PersonaSampler(personas=("a pilot",))})
    spec_b = SamplerSpec(samplers={"persona": PersonaSampler(personas=("a baker",))})
    other = RunStore.create(tmp_path, "chat")
    ids_a = run_completions(chat, other, PROMPTS, CompletionConfig(k=1, samplers=spec_a))["id"].to_list()
    ids_b = run_completions(chat, other, PROMPTS, CompletionConfig(k=1, samplers=spec_b))["id"].to_list()
    assert set(ids_a).isdisjoint(ids_b) and other.rows().height == 6


def test_system_prompt_is_a_template_with_samplers(store):
    chat = FakeBackend(chat_template="{{ messages }}")
    cfg = CompletionConfig(k=1, samplers=SPEC, system_prompt="You are {{ persona }}.")
    out = run_completions(chat, store, PROMPTS, cfg)
    for req, row in zip(chat.calls, out.iter_rows(named=True), strict=True):
        assert req.messages is not None
        assert req.messages[0]["content"] == f"You are {json.loads(row['attributes'])['persona']}."


def test_self_instruct_records_values_and_resumes(store):
    template = (
        "{{ header }} Tasks about {{ topic }}.\n\n"
        "{% for ex in examples %}Task {{ loop.index }}: {{ ex.instruction }}\n{% endfor %}Task {{ next_number }}:"
    )
    cfg = SelfInstructConfig(
        samplers=SPEC, template=template, rounds=2, prompts_per_round=4, num_instructions=50,
        generate_instances=False, seed=9, min_words=1,
    )  # fmt: skip
    out = run_self_instruct(FakeBackend(), store, cfg, seeds=default_seeds())
    inst = out.filter(pl.col("stage") == "instruction")
    assert inst.height == 8
    for row in inst.iter_rows(named=True):
        values = json.loads(row["attributes"])
        assert values == SPEC.values(9, f"{row['round']}:{row['prompt_index']}")
        assert f"Tasks about {values['topic']}." in row["prompt"]
    backend = FakeBackend()
    again = run_self_instruct(backend, store, cfg, seeds=default_seeds())
    assert not backend.calls and again["id"].to_list() == out["id"].to_list()


def test_evolution_records_values(store):
    cfg = EvolveConfig(
        samplers=SPEC, operators=("persona",), seed=2,
        templates={"persona": "Rewrite this prompt so {{ persona }} would ask it:\n{{ instruction }}\nRewritten:"},
        params=SamplingParams(max_tokens=16),
    )  # fmt: skip
    backend = FakeBackend()
    out = run_evolution(backend, store, PROMPTS, cfg)
    assert out.height == 3
    for req, row in zip(backend.calls, out.iter_rows(named=True), strict=True):
        persona = json.loads(row["attributes"])["persona"]
        assert req.prompt is not None and f"so {persona} would ask it" in req.prompt
        assert json.loads(row["attributes"]) == SPEC.values(2, f"{row['parent_id']}:1")


# -- the real default model -----------------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_completions_record_their_persona(tmp_path):
    from workbench.engine import load_backend

    backend = load_backend("default", n_parallel=3, n_ctx_per_seq=512)
    try:
        spec = SamplerSpec(samplers={"persona": PersonaSampler()})
        cfg = CompletionConfig(
            k=1, seed=4, samplers=spec, params=SamplingParams(temperature=0.8, max_tokens=24),
            completion_template="You are {{ persona }}.\n### Instruction:\n{{ instruction }}\n### Response:\n",
        )  # fmt: skip
        store = RunStore.create(tmp_path, "real")
        out = run_completions(backend, store, PROMPTS, cfg)
    finally:
        getattr(backend, "close", lambda: None)()  # the in-process engine holds a worker process
    assert out.height == 3 and out["attributes"].null_count() == 0
    personas = [json.loads(a)["persona"] for a in out["attributes"]]
    assert all(p in DEFAULT_PERSONAS for p in personas)
    for persona, prompt in zip(personas, out["prompt"], strict=True):
        assert prompt.startswith(f"You are {persona}.\n")
    assert (out["completion_tokens"] > 0).all() and (out["completion_tokens"] <= 24).all()
    assert np.all(out["status"].is_in(["kept", "dropped"]).to_numpy())
