"""IFD (Superfiltering): the ratio, its columns, the threshold filter, and the real model's ranking."""

from __future__ import annotations

import math

import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.filters.ifd import add_ifd, filter_by_ifd, ifd_score
from workbench.generate.completions import DEFAULT_COMPLETION_TEMPLATE, render_template

PAIRS = pl.DataFrame(
    {
        "id": ["a", "b", "c", "d"],
        "instruction": ["Name a fruit.", "Add the numbers.", "Say hi.", "Write a poem."],
        "input": ["", "2 and 3", "", ""],
        "text": ["An apple is a fruit.", "Five is the sum.", "", "Roses are red, violets are blue."],
        "status": ["kept", "kept", "kept", "kept"],
    }
)


def test_ifd_is_conditioned_over_unconditioned_perplexity():
    backend = FakeBackend()
    out = add_ifd(backend, PAIRS)
    assert {"ppl_conditioned", "ppl_response", "ifd"} <= set(out.columns)
    row = out.row(1, named=True)
    prompt = render_template(
        DEFAULT_COMPLETION_TEMPLATE, instruction="Add the numbers.", input="2 and 3", system=""
    )
    assert "### Input:\n2 and 3" in prompt
    cond = backend.score([prompt], ["Five is the sum."])[0].perplexity
    alone = backend.score([""], ["Five is the sum."])[0].perplexity
    assert row["ppl_conditioned"] == pytest.approx(cond)
    assert row["ppl_response"] == pytest.approx(alone)
    assert row["ifd"] == pytest.approx(cond / alone)
    assert out["ifd"][2] is None  # empty response: no score


def test_ifd_score_edge_cases():
    assert ifd_score(2.0, 4.0) == 0.5
    assert ifd_score(float("nan"), 4.0) is None
    assert ifd_score(2.0, math.inf) is None


def test_filter_by_ifd_threshold_top_fraction_and_mark():
    frame = PAIRS.with_columns(pl.Series("ifd", [0.4, 1.3, None, 0.9]))
    assert filter_by_ifd(frame, 1.0)["id"].to_list() == ["a", "d"]
    assert filter_by_ifd(frame, 0.5)["id"].to_list() == ["a"]
    assert filter_by_ifd(frame, 1.0, top_fraction=0.5)["id"].to_list() == ["d"]  # highest IFD below 1
    marked = filter_by_ifd(frame, 1.0, top_fraction=0.5, mark=True)
    assert marked.height == 4
    assert marked["status"].to_list() == ["dropped", "dropped", "dropped", "kept"]
    assert marked["reason"].to_list() == ["ifd below top 50%", "ifd >= 1", "no ifd score", None]
    with pytest.raises(ValueError, match="add_ifd"):
        filter_by_ifd(PAIRS)
    with pytest.raises(ValueError, match="top_fraction"):
        filter_by_ifd(frame, top_fraction=1.5)


def test_missing_columns_are_explained():
    with pytest.raises(ValueError, match="instruction_column"):
        add_ifd(FakeBackend(), pl.DataFrame({"text": ["x"]}))


def test_a_pair_too_long_for_the_scorer_gets_null_not_a_crash():
    class Short(FakeBackend):
        def score(self, prompts, continuations):
            if any(len(c) > 25 for c in continuations):
                raise ValueError("prompt + continuation too long")
            return super().score(prompts, continuations)

    out = add_ifd(Short(), PAIRS)
    assert out["ifd"][0] is not None and out["ifd"][1] is not None
    assert out["ifd"][3] is None  # the long poem


@pytest.mark.model
def test_real_model_ifd_ranks_matching_instruction_lower(llama_backend):
    answer = "2, 3, 5, 7, 11"
    frame = pl.DataFrame(
        {
            "instruction": ["List the first five prime numbers.", "Write a haiku about autumn leaves."],
            "text": [answer, answer],
        }
    )
    out = add_ifd(llama_backend, frame)
    ifd = out["ifd"].to_list()
    assert all(v is not None and v > 0 for v in ifd)
    assert out["ppl_response"][0] == pytest.approx(out["ppl_response"][1], rel=1e-3)  # same answer alone
    assert ifd[0] < 1.0  # the right instruction makes the primes easier to predict
    assert ifd[0] < ifd[1]  # ...and more so than an unrelated one


def test_run_ifd_writes_rows_with_provenance_and_resumes(tmp_path):
    from workbench.filters.ifd import IFDConfig, run_ifd, with_ifd
    from workbench.runs import RunStore, stage_columns
    from workbench.runs.query import CardPages, RunQuery

    store = RunStore.create(tmp_path, "r")
    store.append(PAIRS.with_columns(pl.lit("completion").alias("stage"), (pl.col("id") + "-prompt").alias("parent_id")))
    backend = FakeBackend()
    out = run_ifd(backend, store, store.rows(), IFDConfig(batch_size=2))
    assert out.height == 4 and set(out["stage"]) == {"ifd"} and out["parent_id"].to_list() == ["a", "b", "c", "d"]
    expected = add_ifd(backend, PAIRS)["ifd"].to_list()
    assert [x is None for x in out["ifd"]] == [x is None for x in expected] == [False, False, True, False]
    assert [x for x in out["ifd"] if x is not None] == pytest.approx([x for x in expected if x is not None])
    assert out.row(2, named=True)["status"] == "dropped" and "empty response" in out.row(2, named=True)["reason"]
    for r in out.iter_rows(named=True):
        assert r["model"] == "fake" and r["model_sha"] == "fake:0" and r["created_at"] and r["params"]
        assert "### Instruction" in r["prompt"]
        assert {k for k, v in r.items() if v is not None} <= set(stage_columns("ifd"))
    # Resume: nothing written twice, nothing scored again.
    class Counting(FakeBackend):
        calls = 0

        def score(self, prompts, continuations):
            Counting.calls += 1
            return super().score(prompts, continuations)

    again = run_ifd(Counting(), store, store.rows().filter(pl.col("stage") == "completion"))
    assert Counting.calls == 0 and again["id"].to_list() == out["id"].to_list()
    assert store.rows().height == 8
    # The scored rows carry their IFD for the inspector's sort and chips.
    rows = store.rows()
    annotated = with_ifd(rows).filter(pl.col("stage") == "completion")
    assert annotated["ifd"][0] == pytest.approx(expected[0])
    cards = CardPages(RunQuery(stage="completion").apply(rows), size=10, sort_by="ifd", descending=True)
    ifds = [part["ifd"][0] for _, part in cards.page(0)]
    present = [x for x in ifds if x is not None]
    assert present == sorted(present, reverse=True) and len(present) == 3


def test_another_scorer_gets_its_own_ifd_rows(tmp_path):
    from workbench.filters.ifd import run_ifd
    from workbench.runs import RunStore

    class Other(FakeBackend):
        @property
        def model_id(self) -> str:
            return "fake:other"

    store = RunStore.create(tmp_path, "r")
    store.append(PAIRS.with_columns(pl.lit("completion").alias("stage")))
    a = run_ifd(FakeBackend(), store, store.rows())
    b = run_ifd(Other(), store, store.rows().filter(pl.col("stage") == "completion"))
    assert set(a["id"]).isdisjoint(b["id"]) and set(b["model_sha"]) == {"fake:other"}
