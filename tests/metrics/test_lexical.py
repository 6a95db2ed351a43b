from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
import reference_impl as ref

from workbench.engine import FakeBackend
from workbench.metrics import (
    distinct_n,
    lexical_summary,
    nearest_rouge_l,
    self_bleu,
    self_bleu_scores,
    text_lengths,
)


def frame(*texts: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": [f"r{i}" for i in range(len(texts))], "text": list(texts)},
        schema={"id": pl.Utf8, "text": pl.Utf8},
    )


def test_distinct_n_hand_computed():
    out = distinct_n(frame("a b a b", "c"), orders=(1, 2))
    one, two = out.row(0, named=True), out.row(1, named=True)
    assert (one["unique"], one["total"]) == (3, 5)
    # bigrams: ab, ba, ab  (none across rows, "b c" must not appear)
    assert (two["unique"], two["total"]) == (2, 3)
    assert two["distinct"] == pytest.approx(2 / 3)
    assert two["per_word"] == pytest.approx(2 / 5)


def test_distinct_n_never_crosses_rows():
    out = distinct_n(frame("x y", "y x", "z"), orders=(2, 3))
    assert out["total"].to_list() == [2, 0]
    assert out["distinct"].to_list() == [1.0, None]


def test_distinct_n_matches_reference_on_seeds(seed_frame):
    texts = seed_frame["text"].to_list()
    ours = distinct_n(seed_frame)
    for n in (1, 2, 3):
        assert ours.filter(pl.col("n") == n)["distinct"][0] == pytest.approx(
            ref.distinct_n(texts, n), abs=1e-12
        )


def test_text_lengths_words_tokens_and_nulls():
    out = text_lengths(frame("Hello, world!", None, "one two three"), backend=FakeBackend())
    assert out["id"].to_list() == ["r0", "r1", "r2"]
    assert out["words"].to_list() == [2, 0, 3]
    assert out["tokens"].to_list() == [2, 0, 3]  # FakeBackend counts whitespace tokens


def test_self_bleu_matches_nltk_sentence_bleu(seed_frame):
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    texts = [*seed_frame["text"].to_list()[:80], "", "write a poem", "write a poem", "a"]
    ours = self_bleu_scores(frame(*texts), sample=None)["self_bleu"].to_numpy()
    toks = [ref.words(t) for t in texts]
    smooth = nltk_bleu.SmoothingFunction().method1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [
            nltk_bleu.sentence_bleu(toks[:i] + toks[i + 1 :], toks[i], smoothing_function=smooth)
            for i in range(len(toks))
        ]
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    np.testing.assert_allclose(
        ref.self_bleu_scores(texts), expected, atol=1e-12
    )  # the benchmark's baseline too
    assert ours[-3] == pytest.approx(ours[-2]) and ours[-4] == 0.0


def test_self_bleu_sample_is_seeded_and_reported(seed_frame):
    a = self_bleu_scores(seed_frame, sample=50, seed=1)
    b = self_bleu_scores(seed_frame, sample=50, seed=1)
    c = self_bleu_scores(seed_frame, sample=50, seed=2)
    assert a.height == 50 and a["sample_size"].unique().to_list() == [50]
    assert a.equals(b)
    assert set(a["id"]) != set(c["id"])
    # scores are against the other sampled rows only
    sampled = seed_frame.filter(pl.col("id").is_in(a["id"].to_list()))
    order = {i: k for k, i in enumerate(sampled["id"].to_list())}
    expected = ref.self_bleu_scores(sampled["text"].to_list())
    got = {i: s for i, s in a.select("id", "self_bleu").iter_rows()}
    for i, k in order.items():
        assert got[i] == pytest.approx(expected[k], abs=1e-12)
    summary = self_bleu(seed_frame, sample=50, seed=1)
    assert summary["sample_size"][0] == 50 and summary["n_rows"][0] == 175
    assert summary["self_bleu"][0] == pytest.approx(a["self_bleu"].mean())


def test_self_bleu_separates_repetitive_from_varied():
    varied = frame(
        "write a poem about the sea",
        "list three prime numbers",
        "explain how a bicycle works",
        "translate hello into french",
        "summarize the plot of hamlet",
    )
    repetitive = frame(*["write a poem about the sea"] * 4, "write a poem about the moon")
    assert self_bleu(repetitive)["self_bleu"][0] > 0.8
    assert self_bleu(varied)["self_bleu"][0] < 0.2


def test_self_bleu_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        self_bleu_scores(frame("only one"))
    with pytest.raises(ValueError, match="column 'prompt' not in frame"):
        self_bleu_scores(frame("a", "b"), "prompt")


def test_nearest_rouge_l_agrees_with_rouge_score(seed_frame):
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    sub = seed_frame.head(40)
    out = nearest_rouge_l(sub, sample=None)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    texts = sub["text"].to_list()
    for i in (0, 7, 21):
        best = max(scorer.score(texts[i], texts[j])["rougeL"].fmeasure for j in range(len(texts)) if j != i)
        assert out["nn_rouge_l"][i] == pytest.approx(best, abs=1e-12)
        assert out["nn_id"][i] != out["id"][i]
    assert out["sample_size"][0] == 40


def test_nearest_rouge_l_finds_the_twin():
    out = nearest_rouge_l(frame("write a poem about cats", "write a poem about cats", "name three rivers"))
    assert out["nn_rouge_l"].to_list()[:2] == [1.0, 1.0]
    assert out["nn_id"].to_list()[:2] == ["r1", "r0"]


def test_lexical_summary_lists_every_metric(seed_frame):
    out = lexical_summary(seed_frame, backend=FakeBackend(), sample=60)
    assert out["metric"].to_list() == [
        "mean_words",
        "mean_tokens",
        "distinct_1",
        "distinct_2",
        "distinct_3",
        "self_bleu",
        "nn_rouge_l",
    ]
    assert out.filter(pl.col("metric") == "self_bleu")["sample_size"][0] == 60
    assert out.filter(pl.col("metric") == "distinct_1")["sample_size"][0] is None
