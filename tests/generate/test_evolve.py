"""Prompt evolution: operators as sandboxed templates, the eliminator, lineage, resume."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import ValidationError

from workbench.engine import FakeBackend, GenerationRequest
from workbench.generate.evolve import (
    DEFAULT_OPERATORS,
    EvolveConfig,
    clean_output,
    eliminate,
    lineage,
    run_evolution,
    template_ngrams,
)
from workbench.runs import RunStore

SEEDS = pl.DataFrame(
    {
        "id": ["s1", "s2"],
        "instruction": ["Write a poem about the sea.", "Explain how vaccines work."],
        "input": ["", ""],
    }
)


def test_eliminator_reasons():
    grams = template_ngrams(DEFAULT_OPERATORS["deepen"], 6)
    parent = "Write a poem about the sea."
    assert eliminate("", parent, grams) == "empty"
    assert eliminate(" ... ", parent, grams) == "empty"
    assert eliminate("write a poem about the sea", parent, grams) == "unchanged"
    assert eliminate("Write a poem about the sea!", parent, grams) == "unchanged"
    assert eliminate("Rewritten Prompt: write a sonnet", parent, grams) == "copied template text"
    copied = "Rewrite a given prompt into a more complex version to make famous AI systems harder."
    assert eliminate(copied, parent, grams) == "copied template text"
    assert eliminate("Poem now.", parent, grams, min_words=3) == "too short"
    assert eliminate("Sorry, I cannot help with writing poems today.", parent, grams) == "refusal"
    good = "Write a sonnet about the sea at night that rhymes and mentions three kinds of fish."
    assert eliminate(good, parent, grams) is None


def test_clean_output_strips_labels_and_quotes():
    assert clean_output('#Rewritten Prompt#: "Write two poems."') == "Write two poems."
    assert clean_output("  Created Prompt: Describe a storm.\n") == "Describe a storm."
    assert clean_output("Describe a storm.") == "Describe a storm."


def _scripted(req: GenerationRequest) -> str:
    """A rewriter that fails in known ways depending on the operator in its meta-prompt."""
    text = req.prompt or ""
    given = text.split("Prompt#:\n", 1)[1].split("\n\n#", 1)[0]
    if "more specific concepts" in text:  # concretize: returns the prompt unchanged
        return given
    if "multiple-step reasoning" in text:  # increase_reasoning: parrots the template
        return "Here is the given prompt made harder: " + given
    if "Prompt Creator" in text:  # breadth: empty
        return ""
    if "constraint" in text:
        return given + " Use at most fifty words."
    return given + " Also explain why it matters to people in everyday life."


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore.create(tmp_path, "evo")


def test_all_operators_rows_reasons_and_lineage(store):
    backend = FakeBackend(responder=_scripted)
    cfg = EvolveConfig(strategy="all", generations=2)
    out = run_evolution(backend, store, SEEDS, cfg)
    gen1 = out.filter(pl.col("generation") == 1)
    assert gen1.height == 10  # 2 prompts x 5 operators
    by_op = {
        r["operator"]: (r["status"], r["reason"])
        for r in gen1.filter(pl.col("parent_id") == "s1").iter_rows(named=True)
    }
    assert by_op == {
        "add_constraints": ("kept", None),
        "deepen": ("kept", None),
        "concretize": ("dropped", "unchanged"),
        "increase_reasoning": ("dropped", "copied template text"),
        "breadth": ("dropped", "empty"),
    }
    # round 2 evolves only the 4 kept prompts of round 1
    gen2 = out.filter(pl.col("generation") == 2)
    kept1 = set(gen1.filter(pl.col("status") == "kept")["id"])
    assert len(kept1) == 4 and set(gen2["parent_id"]) == kept1 and gen2.height == 20
    assert set(gen2["root_id"]) == {"s1", "s2"}
    leaf = gen2.filter((pl.col("operator") == "add_constraints") & (pl.col("status") == "kept"))["id"][0]
    chain = lineage(store.rows(), leaf)
    assert chain["generation"].to_list() == [0, 1, 2]
    assert chain["text"][0] in SEEDS["instruction"].to_list()
    assert chain["id"][-1] == leaf and chain["parent_id"][2] == chain["id"][1]
    assert chain["text"][2].startswith(chain["text"][1])  # each rewrite builds on its parent


def test_random_strategy_is_reproducible_and_resumes(store, tmp_path):
    cfg = EvolveConfig(strategy="random", generations=1, seed=3)
    b1 = FakeBackend(responder=_scripted)
    out1 = run_evolution(b1, store, SEEDS, cfg)
    assert out1.height == 2
    again = run_evolution(b1, store, SEEDS, cfg)
    assert len(b1.calls) == 2 and store.rows().height == 2  # resume: nothing regenerated
    other = run_evolution(FakeBackend(responder=_scripted), RunStore.create(tmp_path, "evo2"), SEEDS, cfg)
    assert other["operator"].to_list() == out1["operator"].to_list() == again["operator"].to_list()


def test_templates_are_editable_and_validated(store):
    cfg = EvolveConfig(
        operators=("shorten",),
        templates={"shorten": "Make this shorter but keep its meaning:\n{{ instruction }}\nShorter:"},
    )
    backend = FakeBackend(responder=lambda r: "Write sea poems for children and adults alike.")
    out = run_evolution(backend, store, SEEDS.head(1), cfg)
    assert (
        backend.calls[0].prompt
        == "Make this shorter but keep its meaning:\nWrite a poem about the sea.\nShorter:"
    )
    assert out["operator"].to_list() == ["shorten"] and out["status"].to_list() == ["kept"]
    with pytest.raises(ValidationError, match="unknown or no operators"):
        EvolveConfig(operators=("nope",))
    with pytest.raises(ValidationError, match="must use"):
        EvolveConfig(templates={"x": "no variable here"})
    with pytest.raises(ValidationError, match="not valid Jinja"):
        EvolveConfig(templates={"x": "{{ instruction "})


def test_lineage_of_unknown_row_is_a_clear_error(store):
    run_evolution(FakeBackend(responder=_scripted), store, SEEDS, EvolveConfig(strategy="all"))
    with pytest.raises(KeyError, match="not in this frame"):
        lineage(store.rows(), "nope")


@pytest.mark.model
def test_real_model_evolves_one_prompt(llama_backend, tmp_path):
    from workbench.engine import SamplingParams

    store = RunStore.create(tmp_path, "evo-real")
    cfg = EvolveConfig(
        operators=("add_constraints",), params=SamplingParams(max_tokens=32, temperature=0.7, stop=("\n\n",))
    )
    out = run_evolution(llama_backend, store, SEEDS.head(1), cfg)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["status"] in ("kept", "dropped") and row["raw_text"] is not None
    assert (row["status"] == "dropped") == (row["reason"] is not None)
    assert row["prompt"].endswith("#Rewritten Prompt#:\n")
