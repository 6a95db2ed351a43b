"""Shared tokenisation and exact n-gram coding, vectorised with polars and numpy.

Every lexical metric reads text the same way: lower-cased, split into `\\w+` runs (punctuation and
whitespace dropped). N-grams are coded as exact integers (no hashing, so no collisions): the code of
an n-gram is `dense_rank(code of its first n-1 tokens) * V + id of its last token`, which stays
below `T * V` (T tokens, V vocabulary), far inside int64 for any realistic corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

WORD_PATTERN = r"\w+"


def words_expr(column: str) -> pl.Expr:
    """The list of lower-cased words of a text column (null text reads as empty)."""
    return pl.col(column).fill_null("").str.to_lowercase().str.extract_all(WORD_PATTERN)


def require_column(df: pl.DataFrame, column: str) -> None:
    if column not in df.columns:
        raise ValueError(
            f"column {column!r} not in frame (columns: {df.columns}); pass column=<a text column>"
        )


@dataclass(frozen=True)
class TokenTable:
    """All tokens of a set of documents, flattened in document order."""

    doc: np.ndarray  # int64 document index of each token
    tok: np.ndarray  # int64 dense token id
    n_docs: int
    lengths: np.ndarray  # int64 tokens per document
    vocab: int

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(doc, code) of every n-gram that does not cross a document boundary."""
        total = self.tok.shape[0]
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if total < n:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        codes = self.tok
        if self.vocab**n < 2**62:  # exact polynomial code fits in int64: no ranking needed
            for k in range(2, n + 1):
                codes = codes[: total - k + 1] * self.vocab + self.tok[k - 1 :]
            start_doc = self.doc[: total - n + 1]
            valid = start_doc == self.doc[n - 1 :]
            return start_doc[valid], codes[valid]
        for k in range(2, n + 1):
            prefix = codes[: total - k + 1]
            # dense rank of the (k-1)-gram prefix keeps codes exact and small
            ranks = pl.Series(prefix).rank("dense").to_numpy().astype(np.int64)
            codes = ranks * self.vocab + self.tok[k - 1 :]
        start_doc = self.doc[: total - n + 1]
        valid = start_doc == self.doc[n - 1 :]
        return start_doc[valid], codes[valid]


def token_table(texts: pl.Series) -> TokenTable:
    """Tokenise `texts` once into flat numpy arrays."""
    frame = pl.DataFrame({"t": texts.cast(pl.Utf8)}).select(words=words_expr("t"))
    lengths = frame.select(pl.col("words").list.len()).to_series().to_numpy().astype(np.int64)
    flat = frame.with_row_index("doc").explode("words").drop_nulls("words")
    # categorical physical ids are exact per-string ids and far cheaper than ranking strings
    tok = (
        flat["words"].cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
        if flat.height
        else np.empty(0, np.int64)
    )
    vocab = int(tok.max()) + 1 if tok.size else 1
    doc = flat["doc"].to_numpy().astype(np.int64)
    return TokenTable(doc=doc, tok=tok, n_docs=len(texts), lengths=lengths, vocab=vocab)


def seeded_sample(df: pl.DataFrame, size: int | None, seed: int) -> pl.DataFrame:
    """At most `size` rows drawn without replacement, reproducibly (all rows, in order, if fewer)."""
    if size is None or df.height <= size:
        return df
    if size < 1:
        raise ValueError(f"sample size must be >= 1, got {size}")
    return df.sample(n=size, seed=seed, shuffle=False)
