"""Exact `\\w+` words of a text column, vectorised, with Python's own Unicode semantics.

The lexical metrics' words are `re.findall(r"\\w+", text.lower())`: Python's `\\w` (str.isalnum() or
'_') on Python's lower-casing. Rust's regex `\\w` (polars) is a different set outside ASCII: it takes
combining marks (so NFD 'é' is one word, not 'e' and a break) and joiners, leaves out '²' and '½', and
Rust and Python lower-case some characters differently (Python's 'İ' becomes 'i' + U+0307, a non-word
mark). So a polars regex is exact only on ASCII, and it is also the slow part (a regex over every row,
then a list of strings per row).

Here the words are found in numpy on the rows' UTF-8 bytes, read straight from the Arrow buffer: ASCII
letters are folded to lower case, every non-word byte becomes 0, and a word starts at a word byte after
a non-word byte or at a row's start. On ASCII Python's `\\w` is exactly [A-Za-z0-9_]. Rows holding a
non-ASCII character are first rewritten (same length) so that each non-ASCII character is its Python
lower-case form when that is `\\w` and a space otherwise, using a per-code-point table filled from
Python's own `str.lower` and `re` for the code points present; then every byte >= 0x80 is a word byte.
Rows whose lower-casing is not one character per character ('İ' -> 'i̇') or depends on context ('Σ' is
'ς' at a word's end) are rewritten by Python itself, as their words joined by spaces.

Word ids are exact, not hashed: the 8 bytes from a word's start, read as one little-endian uint64 and
cut at the first zero byte or the row's end, are the word when it is shorter than 8 bytes; a longer word
is that key plus, recursively, the id of its remaining bytes. Keys become dense ids through Arrow's hash
table (`dictionary_encode`), never by sorting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ._ngrams import TokenTable

__all__ = ["WordBytes", "count_distinct", "distinct_ngrams", "python_words", "word_bytes", "word_table"]

_WORD = re.compile(r"\w+")
_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_CHUNK = 1 << 17  # bytes (or words) per vectorised block: its temporaries stay in the CPU cache


def python_words(text: str | None) -> list[str]:
    """The reference definition every fast path must reproduce."""
    return _WORD.findall((text or "").lower())


@dataclass(frozen=True)
class WordBytes:
    """Rows as one buffer of lower-cased UTF-8 word bytes, every other byte set to 0."""

    buf: np.ndarray  # uint8: rows back to back, then 8 zero bytes of padding (empty unless with keys)
    offsets: np.ndarray  # int64, n + 1: row i is buf[offsets[i]:offsets[i + 1]]
    starts: np.ndarray  # int64: byte position of every word's first byte, in row order
    counts: np.ndarray  # int64: words per row


def _utf8(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets) of the rows back to back, straight from the Arrow buffers (no Python str)."""
    arr = texts.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data[offsets[0] : offsets[-1]], offsets - offsets[0]


# code point >= 128 -> its lower-cased form if that is one \w character, 32 (a space) if it is not \w,
# or -1 when Python's lower-casing is not one character per character (then Python rewrites the row)
_CODE_POINTS: dict[int, int] = {}
_SIGMA = 0x3A3  # 'Σ' lower-cases to 'σ' or, at a word's end, 'ς': context, so Python does those rows


def _code_point(c: int) -> int:
    low = chr(c).lower()
    if len(low) != 1 or c == _SIGMA:
        return -1
    return ord(low) if _WORD.fullmatch(low) else 32


def _rewrite(texts: list[str]) -> list[str]:
    """Rows holding non-ASCII characters, each rewritten to the same length with every non-ASCII
    character lower-cased as Python does, or replaced by a space where it is not `\\w` (ASCII is left for
    the byte pass). Rows whose lower-casing depends on context or changes their length ('İ', 'Σ') are
    rewritten by Python itself: their words joined by spaces."""
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    cp = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).copy()
    high = np.flatnonzero(cp >= 128)
    uniq, inv = np.unique(cp[high], return_inverse=True)
    for c in uniq.tolist():
        if c not in _CODE_POINTS:
            _CODE_POINTS[c] = _code_point(c)
    table = np.array([_CODE_POINTS[c] for c in uniq.tolist()], dtype=np.int64)
    mapped = table[inv]
    cp[high] = np.maximum(mapped, 0).astype(np.uint32)
    ends = np.cumsum(lens)
    bad_rows = set(np.searchsorted(ends, high[mapped < 0], side="right").tolist())
    out = cp.tobytes().decode("utf-32-le")
    starts = ends - lens
    return [
        " ".join(python_words(texts[i])) if i in bad_rows else out[a:b]
        for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
    ]


def word_bytes(texts: pl.Series, *, keys: bool = True) -> WordBytes:
    """Tokenise a text column (nulls read as empty) into `WordBytes`; `keys=False` only finds where
    words start (enough to count them) and leaves `buf` empty."""
    s = texts.cast(pl.Utf8).fill_null("")
    odd = np.flatnonzero((s.str.len_bytes() != s.str.len_chars()).to_numpy())
    if odd.size:  # non-ASCII rows: rewritten so that their non-ASCII bytes are all word bytes
        s = s.scatter(odd, pl.Series(_rewrite(s.gather(odd).to_list()), dtype=pl.Utf8))
    data, offsets = _utf8(s)
    n = data.size
    buf = np.zeros(n + 8 if keys else 0, dtype=np.uint8)
    row_starts = offsets[:-1]
    parts = []
    before = False  # is the byte before this chunk a word byte
    for lo in range(0, n, _CHUNK):  # chunks that stay in cache across the dozen passes below
        d = data[lo : lo + _CHUNK]
        # uint8 arithmetic wraps, so (b - lo) < width tests lo <= b < lo + width
        folded = d | np.uint8(0x20)  # ASCII letters of either case as lower case
        scratch = folded - np.uint8(97)
        letter = scratch < 26
        np.subtract(d, np.uint8(48), out=scratch)
        word = scratch < 10  # digits
        word |= letter
        flag = scratch.view(np.bool_)
        np.equal(d, 95, out=flag)
        word |= flag
        np.greater_equal(d, 128, out=flag)  # only rewritten rows hold these bytes: all word bytes
        word |= flag
        first = flag  # a word byte after a non-word byte, or at a row's start
        first[0] = word[0] and not before
        np.greater(word[1:], word[:-1], out=first[1:])
        here = row_starts[np.searchsorted(row_starts, lo) : np.searchsorted(row_starts, lo + d.size)] - lo
        first[here] = word[here]
        parts.append(np.flatnonzero(first) + lo)
        before = bool(word[-1])
        if keys:
            out = buf[lo : lo + d.size]
            np.multiply(d, word, out=out)
            np.copyto(out, folded, where=letter)
    starts = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    counts = np.diff(np.searchsorted(starts, offsets)).astype(np.int64)
    return WordBytes(buf=buf, offsets=offsets, starts=starts, counts=counts)


def _dense(keys: np.ndarray) -> np.ndarray:
    """Dense int64 ids (0..k-1, in order of first appearance) of equal keys, by hashing."""
    return pc.dictionary_encode(pa.array(keys)).indices.to_numpy().astype(np.int64)


def count_distinct(codes: np.ndarray) -> int:
    """Number of distinct values of an integer array, by hashing."""
    return int(pc.count_distinct(pa.array(codes)).as_py())


def _word_ids(buf: np.ndarray, starts: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Ids of the words starting at `starts`, with `room` bytes left in their row: equal id <=> equal
    bytes. Ids are below 2**62 but not dense (a key held only by long words leaves its id unused)."""
    if starts.size == 0:
        return np.zeros(0, np.int64)
    # every byte offset as the start of an unaligned little-endian uint64 (buf ends in 8 zero bytes)
    windows = np.ndarray((buf.size - 7,), dtype="<u8", buffer=buf, strides=(1,))
    v = windows[starts]
    near_end = np.flatnonzero(room < 8)  # the row ends within these 8 bytes: cut the next row's off
    if near_end.size:
        bits = (np.maximum(room[near_end], 0) * 8).astype(np.uint64)
        v[near_end] &= (np.uint64(1) << bits) - np.uint64(1)
    longer = np.empty(v.size, dtype=np.bool_)  # no 0 among the 8 bytes: the word goes on
    step = max(1, _CHUNK // 8)
    with np.errstate(over="ignore"):
        for lo in range(0, v.size, step):
            c = v[lo : lo + step]
            zero = c - _ONES
            zero &= ~c
            zero &= _HIGHS  # high bit of every 0 byte (spurious ones only above the first 0)
            np.equal(zero, 0, out=longer[lo : lo + step])
            low = ~zero
            low += np.uint64(1)
            low &= zero  # lowest set bit: the first 0 byte
            low >>= np.uint64(7)
            low -= np.uint64(1)  # bytes before the first 0 (all 8 when there is none)
            c &= low
    # A word shorter than 8 bytes has a 0 byte in its key, a longer one has none, so keys never mix them.
    ids = _dense(v)
    longer = np.flatnonzero(longer)
    if longer.size:
        rest = _word_ids(buf, starts[longer] + 8, room[longer] - 8)
        both = (ids[longer].astype(np.uint64) << np.uint64(32)) | rest.astype(np.uint64)
        ids[longer] = int(ids.max()) + 1 + _dense(both)
    return ids


def _densify(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """(ids renumbered 0..k-1 keeping their order, k)."""
    if ids.size == 0:
        return ids, 0
    used = np.bincount(ids) > 0
    rank = np.cumsum(used) - 1
    return rank[ids], int(rank[-1]) + 1


def word_table(texts: pl.Series) -> TokenTable:
    """All words of `texts` as a `TokenTable` (dense exact ids, document of each word, words per row)."""
    wb = word_bytes(texts)
    doc = np.repeat(np.arange(wb.counts.size, dtype=np.int64), wb.counts)
    room = wb.offsets[1:][doc] - wb.starts
    tok, vocab = _densify(_word_ids(wb.buf, wb.starts, room))
    return TokenTable(doc=doc, tok=tok, n_docs=int(wb.counts.size), lengths=wb.counts, vocab=max(vocab, 1))


def distinct_ngrams(table: TokenTable, orders: list[int]) -> dict[int, int]:
    """Number of distinct n-grams (within rows) of a dense-id `TokenTable`, for each n in `orders`.

    Codes are exact polynomials (id_1 * V + id_2) * V + ... (the prefix renumbered densely should it
    ever near 2**62); windows that cross a row end get the code
    -1 instead of being filtered out (a scatter at the row ends, not a pass over every window), and -1
    is then not counted.
    """
    out: dict[int, int] = {}
    tok, vocab = table.tok, table.vocab
    ends = np.cumsum(table.lengths)
    codes = tok.copy()
    for n in range(1, max(orders) + 1):
        total = tok.size - n + 1
        if total <= 0:
            out[n] = 0
            continue
        if n == 1:
            out[n] = vocab if n in orders else 0
            continue
        codes = codes[:total]
        if (int(codes.max()) + 1) * vocab >= 2**62:  # renumber the (n-1)-grams densely: still exact
            codes = _dense(codes.astype(np.uint64))
        codes = codes * vocab
        codes += tok[n - 1 :]
        if n in orders:
            marked = codes.copy()
            # window starting at position p crosses a row end e (exclusive) when e - n < p < e
            bad = (ends[:, None] - np.arange(1, n)[None, :]).ravel()
            bad = bad[(bad >= 0) & (bad < total)]
            marked[bad] = -1
            out[n] = count_distinct(marked) - int(bad.size > 0)
    return out
