"""A word-level n-gram language model small enough to refit hundreds of times in a test.

Text is read the way every lexical metric of the workbench reads it: lower-cased `\\w+` runs. The
vocabulary is closed (fixed once from the human corpus), so probabilities of different models are
over the same events and perplexities compare. Token ids: 0 = `<s>` (context only, never predicted),
1 = `</s>`, 2.. = words.

Smoothing is recursive interpolation (Jelinek-Mercer) down to an add-k unigram:

    P_1(w)        = (c(w) + k) / (N + k * |V|)              V = words + </s>, N = predicted tokens
    P_j(w | h)    = (1 - b) * c(h, w) / c(h) + b * P_{j-1}(w | h')    if c(h) > 0   (h' = h minus its first word)
                  = P_{j-1}(w | h')                                  if c(h) = 0

so every word keeps a probability above zero however the counts drift, and sampling from it is
exact: at each order, with probability 1 - b (when the context was seen) copy the word that followed
a uniformly drawn occurrence of the context, otherwise back off one order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["BOS", "EOS", "Corpus", "NGramModel", "Vocabulary"]

BOS, EOS = 0, 1
_FIRST_WORD = 2


def words_expr(column: str) -> pl.Expr:
    """Lower-cased `\\w+` runs of a text column: the tokenisation of `workbench.metrics`."""
    return pl.col(column).fill_null("").str.to_lowercase().str.extract_all(r"\w+")


@dataclass(frozen=True)
class Vocabulary:
    """A closed word list; word `words[i]` has token id `i + 2`."""

    words: tuple[str, ...]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocabulary:
        frame = pl.DataFrame({"t": list(texts)}, schema={"t": pl.Utf8}).select(w=words_expr("t"))
        uniq = frame.explode("w").drop_nulls("w")["w"].unique().sort()
        return cls(tuple(uniq.to_list()))

    @property
    def size(self) -> int:
        """Number of token ids, including `<s>` and `</s>`."""
        return len(self.words) + _FIRST_WORD

    def encode(self, texts: Sequence[str]) -> Corpus:
        """Token ids of every text (one sentence each); words outside the vocabulary are an error."""
        frame = pl.DataFrame({"t": list(texts)}, schema={"t": pl.Utf8}).select(w=words_expr("t"))
        lengths = frame["w"].list.len().to_numpy().astype(np.int64)
        flat = frame.explode("w").drop_nulls("w")["w"]
        lookup = pl.DataFrame(
            {"w": list(self.words), "id": np.arange(_FIRST_WORD, self.size, dtype=np.int64)}
        )
        ids = pl.DataFrame({"w": flat}).join(lookup, on="w", how="left", maintain_order="left")["id"]
        if ids.null_count():
            missing = flat.filter(ids.is_null()).unique().head(5).to_list()
            raise ValueError(
                f"words outside the vocabulary, e.g. {missing}: build the Vocabulary from these texts too"
            )
        return Corpus(ids.to_numpy().astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]))

    def decode(self, corpus: Corpus) -> list[str]:
        """Each sentence as space-joined words."""
        words = np.array(("<s>", "</s>", *self.words), dtype=object)
        return [" ".join(words[corpus.sentence(i)]) for i in range(corpus.n_sentences)]


@dataclass(frozen=True)
class Corpus:
    """Sentences of token ids, flattened: sentence i is `tokens[offsets[i]:offsets[i + 1]]`."""

    tokens: np.ndarray
    offsets: np.ndarray

    @property
    def n_sentences(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    def sentence(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def take(self, index: np.ndarray) -> Corpus:
        """The sentences at `index`, in that order."""
        lengths = np.diff(self.offsets)[index]
        parts = [self.sentence(int(i)) for i in index]
        tokens = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return Corpus(tokens.astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    @staticmethod
    def concat(parts: Sequence[Corpus]) -> Corpus:
        tokens = np.concatenate([p.tokens for p in parts]) if parts else np.empty(0, np.int64)
        lengths = np.concatenate([np.diff(p.offsets) for p in parts]) if parts else np.empty(0, np.int64)
        return Corpus(tokens.astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    def padded_ngrams(self, order: int, base: int) -> tuple[np.ndarray, np.ndarray]:
        """(context code, predicted token) of every predicted position: each word and the final `</s>`,
        the context being the `order - 1` tokens before it (`<s>`-padded). Codes are exact base-`base`
        integers of the context ids."""
        n, pad = self.n_sentences, order - 1
        lengths = np.diff(self.offsets)
        plen = lengths + pad + 1
        starts = np.concatenate([[0], np.cumsum(plen)])[:-1]
        padded = np.full(int(plen.sum()), BOS, dtype=np.int64)
        word_pos = np.repeat(starts + pad, lengths) + (
            np.arange(self.n_tokens) - np.repeat(self.offsets[:-1], lengths)
        )
        padded[word_pos] = self.tokens
        padded[starts + plen - 1] = EOS
        predicted = np.concatenate([word_pos, starts + plen - 1]) if n else np.empty(0, np.int64)
        predicted.sort()
        context = np.zeros(predicted.shape[0], dtype=np.int64)
        for j in range(pad, 0, -1):
            context = context * base + padded[predicted - j]
        return context, padded[predicted]


@dataclass(frozen=True)
class _Order:
    """Counts of one order j >= 2: context codes and (context, word) codes, sorted for lookups."""

    ctx_sorted: np.ndarray  # context code of every training occurrence, sorted
    next_sorted: np.ndarray  # the word that followed each occurrence, in the same order
    full_codes: np.ndarray  # sorted unique (context * base + word) codes
    full_counts: np.ndarray


class NGramModel:
    """Interpolated n-gram model (see the module docstring) fitted on a `Corpus`."""

    def __init__(
        self, vocab: Vocabulary, corpus: Corpus, *, order: int = 2, add_k: float = 0.1, backoff: float = 0.3
    ):
        if order < 1 or vocab.size ** max(order, 1) >= 2**62:
            raise ValueError(f"order must be >= 1 and small enough for exact codes, got {order}")
        self.vocab, self.order, self.add_k, self.backoff = vocab, order, add_k, backoff
        self.base = vocab.size
        _, last = corpus.padded_ngrams(1, self.base)
        counts = np.bincount(last, minlength=self.base).astype(np.float64)
        self.unigram_counts = counts
        predicted_types = self.base - 1  # every id except <s>
        probs = (counts + add_k) / (counts.sum() + add_k * predicted_types)
        probs[BOS] = 0.0
        self.unigram = probs
        self._cum = np.cumsum(probs)
        self._orders: list[_Order] = []
        for j in range(2, order + 1):
            ctx, nxt = corpus.padded_ngrams(j, self.base)
            sort = np.argsort(ctx, kind="stable")
            full, full_counts = np.unique(ctx * self.base + nxt, return_counts=True)
            self._orders.append(_Order(ctx[sort], nxt[sort], full, full_counts))

    def token_probs(self, corpus: Corpus) -> np.ndarray:
        """P(token | context) of every predicted position of `corpus` (words and each `</s>`)."""
        _, last = corpus.padded_ngrams(1, self.base)
        p = self.unigram[last]
        for j, counts in enumerate(self._orders, start=2):
            ctx, nxt = corpus.padded_ngrams(j, self.base)
            lo = np.searchsorted(counts.ctx_sorted, ctx, "left")
            c_ctx = np.searchsorted(counts.ctx_sorted, ctx, "right") - lo
            full = ctx * self.base + nxt
            at = np.clip(np.searchsorted(counts.full_codes, full), 0, max(counts.full_codes.shape[0] - 1, 0))
            c_full = (
                np.where(counts.full_codes[at] == full, counts.full_counts[at], 0)
                if counts.full_codes.size
                else 0
            )
            seen = c_ctx > 0
            ml = np.divide(c_full, c_ctx, out=np.zeros_like(p), where=seen)
            p = np.where(seen, (1 - self.backoff) * ml + self.backoff * p, p)
        return p

    def perplexity(self, corpus: Corpus) -> float:
        """exp(-mean log P) over every predicted position of `corpus`."""
        return float(np.exp(-np.log(self.token_probs(corpus)).mean()))

    def sample(self, n_sentences: int, rng: np.random.Generator, *, max_words: int = 60) -> Corpus:
        """`n_sentences` sentences drawn from the model, all decoded together one position at a time.
        A sentence ends at `</s>` or is cut at `max_words` words."""
        pad = self.order - 1
        history = np.full((n_sentences, max(pad, 1)), BOS, dtype=np.int64)
        out = np.full((n_sentences, max_words), -1, dtype=np.int64)
        active = np.arange(n_sentences)
        for t in range(max_words):
            if active.size == 0:
                break
            m = active.shape[0]
            token = np.minimum(
                np.searchsorted(self._cum, rng.random(m) * self._cum[-1], "right"), self.base - 1
            )
            for j, counts in enumerate(self._orders, start=2):
                ctx = np.zeros(m, dtype=np.int64)
                for col in range(pad - (j - 1), pad):
                    ctx = ctx * self.base + history[active, col]
                lo = np.searchsorted(counts.ctx_sorted, ctx, "left")
                n_ctx = np.searchsorted(counts.ctx_sorted, ctx, "right") - lo
                take = (n_ctx > 0) & (rng.random(m) >= self.backoff)
                pick = lo + np.floor(rng.random(m) * np.maximum(n_ctx, 1)).astype(np.int64)
                copied = counts.next_sorted[np.minimum(pick, counts.next_sorted.shape[0] - 1)]
                token = np.where(take, copied, token)
            out[active, t] = token
            if pad:
                history[active] = np.column_stack([history[active, 1:], token]) if pad > 1 else token[:, None]
            active = active[token != EOS]
        lengths = np.argmax((out == EOS) | (out == -1), axis=1)
        lengths = np.where(((out == EOS) | (out == -1)).any(axis=1), lengths, max_words)
        mask = np.arange(max_words)[None, :] < lengths[:, None]
        return Corpus(out[mask], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
