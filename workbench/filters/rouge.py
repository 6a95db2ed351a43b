"""ROUGE-L near-duplicate search that gives exactly `rouge_score`'s answers, hundreds of times faster.

The self-instruct paper drops a candidate instruction when its ROUGE-L F-measure against any instruction
already in the pool is strictly above 0.7, computed with `rouge_score.RougeScorer(["rougeL"],
use_stemmer=False)`. That costs about 17 µs a pair in pure Python.

ROUGE-L F1 between token sequences of lengths m and n is 2·LCS/(m+n), and the Indel distance is
m + n - 2·LCS, so rapidfuzz's bit-parallel C++ Indel distance (run over all pairs by `process.cdist` on
every core) gives the integer LCS of each pair exactly. We then recompute the F-measure from that integer
with `rouge_score`'s own float formula (precision = lcs/len(prediction), recall = lcs/len(target),
f = 2·p·r/(p+r)), vectorised in numpy: IEEE float64 arithmetic in the same order gives the same bits, so
threshold decisions agree with the reference exactly, even at the boundary.

Tokens are mapped to integer ids and each sequence to a string of code points (one per token), so
rapidfuzz compares native strings instead of Python lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Indel

__all__ = [
    "RougeLIndex",
    "rouge_l_fmeasure",
    "rouge_l_matrix",
    "rouge_l_nearest",
    "rouge_l_self_nearest",
    "rouge_tokenize",
]

# rouge_score.tokenize: lower-case, replace every run of non-[a-z0-9] by a space, split, keep [a-z0-9]+.
# That is exactly the maximal ASCII-alphanumeric runs of the lower-cased text.
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_CHUNK_ROWS = 512  # candidate rows per cdist call: bounds memory at 512 x pool int32s


def rouge_tokenize(text: str) -> list[str]:
    """Exactly `rouge_score`'s default tokenizer without stemming."""
    return _TOKEN_RE.findall(text.lower())


def rouge_l_fmeasure(lcs: np.ndarray, target_len: np.ndarray, prediction_len: np.ndarray) -> np.ndarray:
    """`rouge_score`'s F-measure from integer LCS lengths, in the reference's float operation order."""
    lcs_f = lcs.astype(np.float64)
    t = target_len.astype(np.float64)
    p_len = prediction_len.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = lcs_f / p_len
        recall = lcs_f / t
        f = 2 * precision * recall / (precision + recall)
    # The reference returns 0 for an empty side and when precision + recall == 0.
    empty = (t == 0) | (p_len == 0) | (lcs == 0)
    return np.where(empty, 0.0, f)


class _Vocab:
    """Token → code point, so a token sequence becomes a str rapidfuzz compares natively."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def encode(self, text: str) -> tuple[str, int]:
        tokens = rouge_tokenize(text)
        chars = []
        for tok in tokens:
            i = self._ids.get(tok)
            if i is None:
                i = len(self._ids) + 1
                self._ids[tok] = i
            # Skip the surrogate block: those code points cannot live in a Python str safely.
            chars.append(chr(i if i < 0xD800 else i + 0x800))
        return "".join(chars), len(tokens)

    def encode_many(self, texts: Iterable[str]) -> tuple[list[str], np.ndarray]:
        seqs, lens = [], []
        for t in texts:
            s, n = self.encode(t)
            seqs.append(s)
            lens.append(n)
        return seqs, np.asarray(lens, dtype=np.int64)


def _nearest_encoded(
    cand: list[str],
    cand_len: np.ndarray,
    pool: list[str],
    pool_len: np.ndarray,
    *,
    exclude_self: bool = False,
    workers: int = -1,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(cand)
    scores = np.zeros(n, dtype=np.float64)
    idx = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(pool) == 0:
        return scores, idx
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n)
        # 1 - Indel/(m+n) = 2·LCS/(m+n): within a few ulps of rouge_score's value. Used only to find each
        # row's best pool items; the exact score is recomputed below from the integer LCS.
        sim = process.cdist(
            cand[start:stop], pool, scorer=Indel.normalized_similarity, dtype=np.float64, workers=workers
        )
        if exclude_self:
            rows = np.arange(start, stop)
            sim[rows - start, rows] = -1.0
        sim[cand_len[start:stop] == 0] = 0.0  # rapidfuzz scores two empty strings 1; the reference 0
        row_max = sim.max(axis=1)
        # Every pair within 1e-9 of its row's max: distinct rationals 2a/b with b < 20,000 differ by more.
        r, c = np.nonzero((sim >= row_max[:, None] - 1e-9) & (row_max[:, None] > 0))
        if r.size == 0:
            continue
        m, p_len = cand_len[start + r], pool_len[c]
        lensum = m + p_len
        dist = np.rint((1.0 - sim[r, c]) * lensum).astype(np.int64)
        lcs = (lensum - dist) // 2
        exact = rouge_l_fmeasure(lcs, m, p_len)  # target = candidate, prediction = pool item (paper order)
        order = np.lexsort((c, -exact, r))  # per row: highest exact score, then lowest pool index
        first = np.ones(order.size, dtype=bool)
        first[1:] = r[order][1:] != r[order][:-1]
        pick = order[first]
        scores[start + r[pick]] = exact[pick]
        idx[start + r[pick]] = np.where(exact[pick] > 0, c[pick], -1)
    return scores, idx


def rouge_l_nearest(
    candidates: Sequence[str], pool: Sequence[str], *, workers: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate: the max ROUGE-L F1 against the pool and the index of that pool item.

    The index is the first pool item reaching the max; it is -1 when the pool is empty or no pool item
    shares a token with the candidate (score 0). Scores equal `rouge_score`'s fmeasure bit for bit.
    """
    vocab = _Vocab()
    pool_seq, pool_len = vocab.encode_many(pool)
    cand_seq, cand_len = vocab.encode_many(candidates)
    return _nearest_encoded(cand_seq, cand_len, pool_seq, pool_len, workers=workers)


def rouge_l_matrix(targets: Sequence[str], predictions: Sequence[str], *, workers: int = -1) -> np.ndarray:
    """Full matrix of exact ROUGE-L F1 (rouge_score's float value), rows = targets. For small sets."""
    vocab = _Vocab()
    t_seq, t_len = vocab.encode_many(targets)
    p_seq, p_len = vocab.encode_many(predictions)
    if not t_seq or not p_seq:
        return np.zeros((len(t_seq), len(p_seq)), dtype=np.float64)
    dist = process.cdist(t_seq, p_seq, scorer=Indel.distance, dtype=np.int64, workers=workers)
    lensum = t_len[:, None] + p_len[None, :]
    lcs = (lensum - dist) // 2
    shape = lcs.shape
    return rouge_l_fmeasure(
        lcs, np.broadcast_to(t_len[:, None], shape), np.broadcast_to(p_len[None, :], shape)
    )


def rouge_l_self_nearest(texts: Sequence[str], *, workers: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Each text's nearest OTHER text in the same list: (max ROUGE-L F1, its index; -1 if none overlaps)."""
    vocab = _Vocab()
    seq, lens = vocab.encode_many(texts)
    return _nearest_encoded(seq, lens, seq, lens, exclude_self=True, workers=workers)


class RougeLIndex:
    """An incremental pool of instructions for repeated nearest-neighbour queries.

    `add` tokenizes once; `nearest` compares new texts against everything added so far. Indices refer to
    insertion order (`texts[i]`).
    """

    def __init__(self, texts: Iterable[str] = (), *, workers: int = -1) -> None:
        self._vocab = _Vocab()
        self._seqs: list[str] = []
        self._lens: list[int] = []
        self._len_arr: np.ndarray | None = None
        self.texts: list[str] = []
        self.workers = workers
        self.add(texts)

    def add(self, texts: Iterable[str]) -> None:
        """Append texts to the pool."""
        for t in texts:
            s, n = self._vocab.encode(t)
            self._seqs.append(s)
            self._lens.append(n)
            self.texts.append(t)
        self._len_arr = None

    def _pool_lens(self) -> np.ndarray:
        if self._len_arr is None:
            self._len_arr = np.asarray(self._lens, dtype=np.int64)
        return self._len_arr

    def nearest(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(max ROUGE-L F1 against the pool, index of the nearest pool text or -1) for each text."""
        # Encoding queries may grow the vocab with unseen tokens; harmless, they match nothing.
        seqs, lens = self._vocab.encode_many(texts)
        return _nearest_encoded(seqs, lens, self._seqs, self._pool_lens(), workers=self.workers)

    def __len__(self) -> int:
        return len(self._seqs)
