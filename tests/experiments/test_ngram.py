"""The n-gram model: a proper distribution, a sampler that draws from it, closed-vocabulary encoding."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.experiments import Corpus, NGramModel, Vocabulary
from workbench.experiments.ngram import EOS

TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the mat is red",
    "dogs and cats",
]


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary.from_texts([*TEXTS, "an unseen word"])


def _next_word_distribution(model: NGramModel, vocab: Vocabulary, history: list[str]) -> np.ndarray:
    """P(w | history) for every predicted id (each word, then </s>), read off `token_probs`."""
    words = list(vocab.words)
    # sentence "history w": its position len(history) holds P(w | history)
    probs = model.token_probs(vocab.encode([" ".join([*history, w]) for w in words]))
    p_words = probs.reshape(len(words), len(history) + 2)[:, len(history)]
    # sentence "history": its last position (</s>) holds P(</s> | history)
    p_end = model.token_probs(vocab.encode([" ".join(history)]))[-1]
    return np.append(p_words, p_end)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("history", [["the"], ["the", "cat"], ["unseen", "word"]])
def test_conditional_probabilities_sum_to_one(vocab, order, history):
    model = NGramModel(vocab, vocab.encode(TEXTS), order=order, add_k=0.1, backoff=0.3)
    dist = _next_word_distribution(model, vocab, history)
    assert np.all(dist > 0)  # smoothing leaves no word impossible
    assert dist.sum() == pytest.approx(1.0, abs=1e-9)


def test_unigram_is_add_k(vocab):
    train = vocab.encode(TEXTS)
    model = NGramModel(vocab, train, order=1, add_k=0.5)
    the = vocab.words.index("the") + 2
    n_predicted = train.n_tokens + train.n_sentences  # every word and one </s> per sentence
    assert model.unigram[the] == pytest.approx((5 + 0.5) / (n_predicted + 0.5 * (vocab.size - 1)))
    assert model.unigram[0] == 0.0  # <s> is never predicted


def test_sampler_draws_from_the_model(vocab):
    model = NGramModel(vocab, vocab.encode(TEXTS), order=2, add_k=0.1, backoff=0.3)
    sample = model.sample(40_000, np.random.default_rng(0), max_words=30)
    first = np.array(
        [s[0] if s.size else EOS for s in (sample.sentence(i) for i in range(sample.n_sentences))]
    )
    observed = np.bincount(first, minlength=vocab.size) / first.size
    start = model.token_probs(vocab.encode([w for w in vocab.words]))
    # P(first word = w) is the probability of w after <s>: the first position of the one-word sentence w
    expected = np.zeros(vocab.size)
    offsets = np.arange(len(vocab.words)) * 2
    expected[2:] = start[offsets]
    expected[EOS] = 1 - expected.sum()
    assert np.abs(observed - expected).max() < 0.01


def test_sampler_ends_sentences_and_cuts_long_ones(vocab):
    model = NGramModel(vocab, vocab.encode(TEXTS), order=2)
    sample = model.sample(500, np.random.default_rng(1), max_words=3)
    lengths = np.diff(sample.offsets)
    assert lengths.max() <= 3 and sample.n_sentences == 500
    assert EOS not in sample.tokens and 0 not in sample.tokens


def test_fitted_text_is_likelier_than_other_text(vocab):
    model = NGramModel(vocab, vocab.encode(TEXTS), order=2)
    assert model.perplexity(vocab.encode(TEXTS)) < model.perplexity(vocab.encode(["word unseen an cats red"]))


def test_encode_rejects_words_outside_the_vocabulary(vocab):
    with pytest.raises(ValueError, match=r"outside the vocabulary.*zebra"):
        vocab.encode(["the zebra"])


def test_corpus_take_concat_and_decode(vocab):
    corpus = vocab.encode(TEXTS)
    two = corpus.take(np.array([2, 0]))
    assert vocab.decode(two) == ["a cat and a dog", "the cat sat on the mat"]
    both = Corpus.concat([two, corpus])
    assert both.n_sentences == 2 + len(TEXTS) and vocab.decode(both)[2:] == TEXTS
    assert pl.Series(vocab.words).is_sorted()
