"""Query API: filters, search, sort, paging, diffs, card pages, and the real four-model predictions."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import ValidationError

from workbench.runs import RunStore, normalise_rows
from workbench.runs.query import (
    CardPages,
    RunQuery,
    diff_models,
    diff_runs,
    facet_values,
    load_predictions,
    page,
    page_count,
    search,
    sort_rows,
    with_labels,
)

MODELS = ("davinci-self-instruct", "davinci-t0-ft", "text-davinci-001", "text-davinci-003")


@pytest.fixture
def rows() -> pl.DataFrame:
    return normalise_rows(
        [
            {"id": "e1", "stage": "evolution", "parent_id": "s1", "round": 1, "text": "Write a haiku (about rain).", "operator": "deepen", "status": "kept"},
            {"id": "e2", "stage": "evolution", "parent_id": "s1", "round": 1, "text": "", "operator": "breadth", "status": "dropped", "reason": "empty"},
            {"id": "e3", "stage": "evolution", "parent_id": "e1", "round": 2, "text": "Write a haiku about RAIN in Tokyo.", "operator": "concretize", "status": "kept"},
            {"id": "c1", "stage": "completion", "parent_id": "e1", "round": 1, "text": "Rain falls softly down", "model": "m1", "sample": 0, "score": 4.0},
            {"id": "c2", "stage": "completion", "parent_id": "e1", "round": 1, "text": "Drops", "model": "m1", "sample": 1, "score": 2.0},
            {"id": "c3", "stage": "completion", "parent_id": "e3", "round": 2, "text": "Neon puddles shine in the rain", "model": "m2", "sample": 0},
        ]
    )  # fmt: skip


def test_filters_combine(rows):
    assert RunQuery(stage="evolution", status="kept").apply(rows)["id"].to_list() == ["e1", "e3"]
    assert RunQuery(reason="EMP").apply(rows)["id"].to_list() == ["e2"]
    assert RunQuery(operator="deepen").apply(rows)["id"].to_list() == ["e1"]
    assert RunQuery(round=2).apply(rows)["id"].to_list() == ["e3", "c3"]
    assert RunQuery(model="m1", min_length=10).apply(rows)["id"].to_list() == ["c1"]
    assert RunQuery(max_length=5).apply(rows)["id"].to_list() == ["e2", "c2"]
    assert RunQuery(min_score=3).apply(rows)["id"].to_list() == ["c1"]
    assert RunQuery(ids=("c3", "e1")).apply(rows)["id"].to_list() == ["e1", "c3"]
    assert RunQuery().apply(rows).height == rows.height


def test_search_is_case_insensitive_literal_unless_regex(rows):
    assert search(rows, "rain")["id"].to_list() == ["e1", "e3", "c1", "c3"]
    assert search(rows, "(about")["id"].to_list() == ["e1"]  # regex characters are literal
    assert RunQuery(search="haiku.*tokyo", regex=True).apply(rows)["id"].to_list() == ["e3"]
    assert RunQuery(search="haiku.*tokyo").apply(rows).height == 0
    with pytest.raises(ValueError, match="not a valid regular expression"):
        RunQuery(search="(unclosed", regex=True).apply(rows)


def test_missing_columns_and_bad_fields_are_explained(rows):
    with pytest.raises(ValueError, match="judge the run first"):
        RunQuery(min_score=1).apply(rows.drop("score"))
    with pytest.raises(ValueError, match="no 'operator' column"):
        RunQuery(operator="deepen").apply(rows.drop("operator"))
    with pytest.raises(ValidationError):
        RunQuery(sort_by="colour")
    with pytest.raises(ValidationError):
        RunQuery(stauts="kept")


def test_sort_and_page(rows):
    by_len = sort_rows(rows, "length", descending=True)["id"].to_list()
    assert by_len[0] == "e3" and by_len[-1] == "e2"
    scored = RunQuery(sort_by="score", descending=True).apply(rows)["id"].to_list()
    assert scored[:2] == ["c1", "c2"]  # nulls last
    assert page(rows, 0, 4)["id"].to_list() == ["e1", "e2", "e3", "c1"]
    assert page(rows, 1, 4)["id"].to_list() == ["c2", "c3"]
    assert page(rows, 5, 4).height == 0
    assert page_count(6, 4) == 2 and page_count(0, 4) == 1
    with pytest.raises(ValueError):
        page(rows, -1, 4)
    with pytest.raises(ValueError):
        page_count(3, 0)


def test_card_pages_group_completions_under_their_prompt(rows):
    cards = CardPages(rows, size=2)
    assert cards.keys == ["e1", "e2", "e3"]  # completions join their parent's card
    first = cards.page(0)
    assert [k for k, _ in first] == ["e1", "e2"]
    assert first[0][1]["id"].to_list() == ["e1", "c1", "c2"]
    assert cards.page(1)[0][1]["id"].to_list() == ["e3", "c3"]
    assert cards.n_pages == 2 and cards.page(2) == []
    assert cards.card_number("c3") == 2 and cards.card_number("zzz") is None
    by_len = CardPages(
        rows.filter(pl.col("stage") == "completion"), size=5, sort_by="length", descending=True
    )
    assert by_len.keys == ["e3", "e1"]  # mean completion length 30 vs 12.5


def test_diff_runs_over_the_same_prompts():
    a = pl.DataFrame(
        {"prompt": ["p1", "p1", "p2", "p3"], "sample": [1, 0, 0, 0], "text": ["b", "a", "same", "gone"]}
    )
    b = pl.DataFrame(
        {"prompt": ["p1", "p1", "p2", "p4"], "sample": [0, 1, 0, 0], "text": ["a", "B!", "same", "new"]}
    )
    d = diff_runs(a, b).sort("prompt")
    assert d["prompt"].to_list() == ["p1", "p2", "p3", "p4"]
    assert d["texts_a"][0].to_list() == ["a", "b"]  # sample order
    assert d["changed"].to_list() == [True, False, True, True]
    assert d["presence"].to_list() == ["both", "both", "only_a", "only_b"]
    assert d["similarity"][1] == 1.0 and d["similarity"][2] is None
    assert diff_runs(a, b)["prompt"][0] == "p1"  # most changed first


def test_with_labels_reads_flags_from_the_run(tmp_path, rows):
    store = RunStore.create(tmp_path, "r")
    store.append(rows)
    store.set_label("c2", "flag", True)
    store.set_label("c1", "note", "check the metre")
    out = with_labels(store.rows(), store, kinds=("flag", "note"))
    assert out.filter(pl.col("flagged"))["id"].to_list() == ["c2"]
    assert out.filter(pl.col("id") == "c1")["label_note"][0] == '"check the metre"'
    assert RunQuery(flagged=True).apply(out)["id"].to_list() == ["c2"]


# -- the real data: four models' answers to the same 252 instructions ------------------------------


@pytest.fixture(scope="module")
def predictions(shared_data) -> pl.DataFrame:
    return load_predictions(shared_data)


def test_predictions_load_as_a_multi_model_run(predictions):
    assert predictions.height == 4 * 252
    assert facet_values(predictions, "model") == list(MODELS)
    assert predictions["id"].n_unique() == predictions.height
    per_prompt = predictions.group_by("parent_id").agg(pl.col("model").n_unique())
    assert per_prompt.height == 252 and (per_prompt["model"] == 4).all()
    assert set(predictions["stage"]) == {"completion"}
    # davinci-t0-ft left some answers empty: they load as dropped rows, not silently kept
    empty = predictions.filter(pl.col("text") == "")
    assert empty.height > 0 and set(empty["status"]) == {"dropped"}


def test_predictions_page_as_cards(predictions):
    cards = CardPages(predictions, size=10)
    assert cards.n_cards == 252 and cards.n_pages == 26
    seen = [k for p in range(cards.n_pages) for k, _ in cards.page(p)]
    assert len(seen) == 252 and len(set(seen)) == 252
    _, last = cards.page(25)[-1]
    assert sorted(last["model"].to_list()) == list(MODELS)
    only_003 = RunQuery(model="text-davinci-003", search="email").apply(predictions)
    assert only_003.height > 0 and only_003["text"].str.len_chars().min() > 0


def test_diff_two_real_models(predictions):
    d = diff_models(predictions, "text-davinci-003", "davinci-self-instruct")
    assert d.height == 252 and set(d["presence"]) == {"both"}
    # check `changed` against the files themselves, answer by answer
    by_model = {
        m: dict(zip(g["prompt"], g["text"], strict=True)) for (m,), g in predictions.group_by("model")
    }
    same = {p for p, t in by_model["text-davinci-003"].items() if by_model["davinci-self-instruct"][p] == t}
    assert 0 < len(same) < 30  # a few short classification answers agree, most differ
    assert set(d.filter(~pl.col("changed"))["prompt"]) == same
    assert (d.filter(~pl.col("changed"))["similarity"] == 1.0).all()
    assert d["similarity"].is_sorted(nulls_last=True)
    lengths = predictions.group_by("model").agg(pl.col("text").str.len_chars().mean())
    mean_len = dict(zip(lengths["model"], lengths["text"], strict=True))
    expected = mean_len["davinci-self-instruct"] - mean_len["text-davinci-003"]
    assert d["len_delta"].mean() == pytest.approx(expected)
    with pytest.raises(ValueError, match="models in this run"):
        diff_models(predictions, "gpt-9", "text-davinci-003")


def test_loading_predictions_into_a_run_twice_adds_nothing(shared_data, tmp_path):
    store = RunStore.create(tmp_path, "preds")
    files = sorted(shared_data.glob("predictions_*.jsonl"))[:2]
    load_predictions(files, store=store)
    load_predictions(files, store=store)
    assert store.rows().height == 2 * 252
    with pytest.raises(FileNotFoundError):
        load_predictions(tmp_path / "missing.jsonl")


def test_cards_sort_by_a_text_key():
    """Sorting cards by model or operator (text) failed: a card's key was the mean of its rows."""
    frame = pl.DataFrame(
        {
            "id": ["p1", "c1", "c2", "p2", "c3"],
            "stage": ["instruction", "completion", "completion", "instruction", "completion"],
            "parent_id": [None, "p1", "p1", None, "p2"],
            "text": ["q1", "a", "b", "q2", "c"],
            "model": [None, "zeta", "zeta", None, "alpha"],
        }
    )
    pages = CardPages(frame, size=10, sort_by="model")
    assert pages.keys == ["p2", "p1"]
    assert CardPages(frame, size=10, sort_by="model", descending=True).keys == ["p1", "p2"]
