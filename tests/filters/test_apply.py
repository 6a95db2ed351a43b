"""apply_filters: every filter over generated rows, the first failing one names the drop; Apply records
the decisions as filter rows and with_filter_drops reads them back, never losing a generated row."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from workbench.filters import (
    FILTER_STAGE,
    FILTERS,
    NEAR_DUPLICATE,
    FilterResult,
    FilterSettings,
    apply_filters,
    filter_decision_rows,
    load_benchmark,
    record_filter_drops,
    rouge_l_matrix,
    with_filter_drops,
)
from workbench.runs import RunStore

BASE = "Write a short poem about the sea at night for a child"
NEAR = "Write a short poem about the sea at night for a small child"  # one word added: ROUGE-L ~0.96
LEAK = "the quick brown fox jumps over the lazy dog while the farmer sleeps in the barn"
OFF = FilterSettings(min_words=None, max_words=None, blocklist=(), near_dup=None)


def frame(texts: list[str], **cols: list[object]) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"r{k}" for k in range(len(texts))], "text": texts, **cols})


def decision(result: FilterResult, rid: str) -> dict[str, Any]:
    return result.rows.filter(pl.col("id") == rid).row(0, named=True)


def test_length_and_keywords_name_their_filter_and_the_first_failing_one_wins():
    rows = frame(
        ["Too short", "Describe the image in this picture please", "Explain how tides work on Earth", ""]
    )
    s = OFF.model_copy(update={"min_words": 4, "max_words": 20, "blocklist": ("image", "picture")})
    res = apply_filters(rows, s)
    assert decision(res, "r0")["filter"] == "length" and decision(res, "r0")["reason"] == "too_short"
    assert decision(res, "r1")["reason"] == "blacklist:image" and decision(res, "r1")["filter"] == "keywords"
    assert decision(res, "r2")["status"] == "kept" and decision(res, "r2")["filter"] is None
    assert decision(res, "r3")["reason"] == "empty"
    counts = {r["filter"]: r for r in res.counts.iter_rows(named=True)}
    assert list(counts) == list(FILTERS)
    assert (counts["length"]["checked"], counts["length"]["dropped"]) == (4, 2)
    assert (counts["keywords"]["checked"], counts["keywords"]["dropped"]) == (2, 1)  # only rows length kept
    assert counts["near_dup"]["setting"] == "off" and counts["near_dup"]["checked"] == 0
    assert res.kept == 1 and res.evaluated == 4
    # A row too short *and* blocked is counted once, under the first filter.
    both = apply_filters(frame(["an image"]), s)
    assert decision(both, "r0")["filter"] == "length"


def test_near_duplicate_names_the_row_it_repeats_and_the_exact_similarity():
    rows = frame([BASE, "Explain how tides work on Earth", NEAR])
    res = apply_filters(rows, OFF.model_copy(update={"near_dup": 0.7}))
    d = decision(res, "r2")
    assert d["filter"] == "near_dup" and d["reason"] == NEAR_DUPLICATE and d["dup_of"] == "r0"
    assert d["similarity"] == pytest.approx(float(rouge_l_matrix([NEAR], [BASE])[0, 0]))
    assert "r0" in d["detail"] and f"{d['similarity']:.2f}" in d["detail"]
    assert decision(res, "r0")["status"] == "kept"
    # Raising the threshold above their similarity keeps both.
    high = apply_filters(rows, OFF.model_copy(update={"near_dup": min(1.0, d["similarity"] + 0.01)}))
    assert high.dropped.height == 0


def test_rows_an_earlier_filter_dropped_are_not_in_the_near_duplicate_pool():
    first = "Describe the image of a short poem about the sea at night"
    second = "Describe the photo of a short poem about the sea at night"
    rows = frame([first, second])
    only_dup = apply_filters(rows, OFF.model_copy(update={"near_dup": 0.7}))
    assert decision(only_dup, "r1")["dup_of"] == "r0"
    both = apply_filters(rows, OFF.model_copy(update={"near_dup": 0.7, "blocklist": ("image",)}))
    assert decision(both, "r0")["filter"] == "keywords"
    assert decision(both, "r1")["status"] == "kept"  # what it duplicated is not in the pool any more


def test_rouge_l_against_references_names_the_reference():
    refs = pl.DataFrame({"id": ["seed_a", "seed_b"], "text": ["Explain how tides work on Earth", BASE]})
    rows = frame([NEAR, "List three prime numbers above one hundred"])
    res = apply_filters(rows, OFF.model_copy(update={"rouge_l_max": 0.7}), references=refs)
    d = decision(res, "r0")
    assert d["filter"] == "rouge_l" and d["dup_of"] == "seed_b" and "seed_b" in d["detail"]
    assert d["similarity"] == pytest.approx(float(rouge_l_matrix([NEAR], [BASE])[0, 0]))
    assert decision(res, "r1")["status"] == "kept"
    assert (
        apply_filters(rows, OFF.model_copy(update={"rouge_l_max": 1.0}), references=refs).dropped.height == 0
    )


def test_decontamination_from_a_benchmark_file_names_the_item_and_span(tmp_path):
    path = tmp_path / "bench.jsonl"
    items = [
        {"qid": "q1", "question": "What is the capital of France?"},
        {"qid": "q2", "question": f"Story: {LEAK}."},
    ]
    path.write_text("\n".join(json.dumps(i) for i in items))
    bench = load_benchmark(path, text_column="question", id_column="qid")
    rows = frame([f"Continue this: {LEAK} and then", "Explain how tides work on Earth every day"])
    res = apply_filters(rows, OFF.model_copy(update={"decontam_n": 13}), benchmark=bench)
    d = decision(res, "r0")
    assert d["filter"] == "decontam" and d["reason"] == "contamination:bench" and d["contaminated_by"] == "q2"
    assert d["contamination_span"] == LEAK  # 16 shared words: the longest run of shared 13-grams
    assert "q2" in d["detail"] and decision(res, "r1")["status"] == "kept"
    # A larger n than the shared span flags nothing.
    assert apply_filters(rows, OFF.model_copy(update={"decontam_n": 17}), benchmark=bench).dropped.height == 0


def test_ifd_threshold_uses_scores_and_keeps_unscored_rows():
    rows = frame(["a b c d e", "f g h i j", "k l m n o"], ifd=[0.4, 1.3, None])
    res = apply_filters(rows, OFF.model_copy(update={"max_ifd": 1.0}))
    assert decision(res, "r1")["reason"] == "ifd >= 1" and decision(res, "r0")["status"] == "kept"
    assert decision(res, "r2")["status"] == "kept" and res.not_scored == 1


def test_rows_not_kept_when_generated_are_left_alone():
    rows = frame(["ok row with enough words", "x"], status=["kept", "dropped"], reason=[None, "truncated"])
    res = apply_filters(rows, OFF.model_copy(update={"min_words": 4}))
    assert decision(res, "r1")["reason"] == "truncated" and decision(res, "r1")["filter"] is None
    assert res.skipped == 1 and res.evaluated == 1 and res.decided_ids == ["r0"]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValidationError, match="min words"):
        FilterSettings(min_words=10, max_words=5)
    with pytest.raises(ValueError, match="'text' column"):
        apply_filters(pl.DataFrame({"id": ["a"]}))
    with pytest.raises(ValueError, match="repeat ids"):
        apply_filters(pl.DataFrame({"id": ["a", "a"], "text": ["x", "y"]}))


def test_apply_records_drops_as_rows_never_loses_one_and_a_later_apply_can_restore(tmp_path):
    store = RunStore.create(tmp_path, "run")
    texts = [BASE, "Explain how tides work on Earth", NEAR, "Too short"]
    gen = [{"id": f"i{k}", "stage": "instruction", "text": t, "round": 1} for k, t in enumerate(texts)]
    store.append(gen)
    tight = OFF.model_copy(update={"min_words": 4, "near_dup": 0.7})
    res = apply_filters(store.rows().filter(pl.col("stage") == "instruction"), tight)
    assert record_filter_drops(store, res) == 2
    run = store.rows()
    assert run.filter(pl.col("stage") == "instruction").height == 4  # nothing generated is lost
    fr = run.filter(pl.col("stage") == FILTER_STAGE)
    assert set(fr["parent_id"]) == {"i2", "i3"} and set(fr["status"]) == {"dropped"}
    assert json.loads(fr["params"][0])["settings"]["near_dup"] == 0.7
    view = with_filter_drops(run).filter(pl.col("stage") == "instruction")
    assert dict(zip(view["id"], view["status"], strict=True)) == {
        "i0": "kept",
        "i1": "kept",
        "i2": "dropped",
        "i3": "dropped",
    }
    assert view.filter(pl.col("id") == "i2")["reason"][0] == NEAR_DUPLICATE
    assert view.filter(pl.col("id") == "i3")["reason"][0] == "too_short"
    # The filters read the rows as generated, so applying the same thresholds again writes nothing.
    again = apply_filters(store.rows().filter(pl.col("stage") == "instruction"), tight)
    assert filter_decision_rows(again, store.rows()) == [] and record_filter_drops(store, again) == 0
    # Loosen the near-duplicate threshold: i2 comes back (a 'kept' filter row), i3 stays dropped.
    loose = tight.model_copy(update={"near_dup": None})
    assert (
        record_filter_drops(
            store, apply_filters(store.rows().filter(pl.col("stage") == "instruction"), loose)
        )
        == 1
    )
    view = with_filter_drops(store.rows()).filter(pl.col("stage") == "instruction")
    assert dict(zip(view["id"], view["status"], strict=True))["i2"] == "kept"
    assert view.filter(pl.col("id") == "i2")["reason"][0] is None
    # Tighten again: a new drop row (ids never repeat, the latest decision wins).
    assert (
        record_filter_drops(
            store, apply_filters(store.rows().filter(pl.col("stage") == "instruction"), tight)
        )
        == 1
    )
    run = store.rows()
    assert not run["id"].is_duplicated().any()
    assert with_filter_drops(run).filter(pl.col("id") == "i2")["status"][0] == "dropped"


def test_the_view_never_revives_a_row_the_generator_dropped():
    rows = pl.DataFrame([
        {"id": "a", "stage": "instruction", "parent_id": None, "status": "dropped", "reason": "truncated"},
        {"id": "f1", "stage": FILTER_STAGE, "parent_id": "a", "status": "kept", "reason": None},
    ])  # fmt: skip
    out = with_filter_drops(rows)
    assert out.row(0, named=True)["status"] == "dropped" and out.row(0, named=True)["reason"] == "truncated"
    plain = pl.DataFrame(
        {"id": ["x"], "stage": ["instruction"], "parent_id": [None], "status": ["kept"], "reason": [None]}
    )
    assert with_filter_drops(plain).equals(plain)
