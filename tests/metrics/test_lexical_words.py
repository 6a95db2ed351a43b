"""The vectorised word path of the lexical metrics (workbench.metrics._words) against the pure-Python
reference, `re.findall(r"\\w+", text.lower())`, on text where Python's `\\w` and lower-casing differ from
polars' (Rust's): accents composed and decomposed, CJK, digits and other numbers, underscores,
apostrophes, Turkish dotted I, final sigma, empty rows, nulls and words running up to row boundaries."""

from __future__ import annotations

import polars as pl
import pytest
import reference_impl as ref
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench.metrics._words as words_mod
from workbench.metrics import distinct_n, self_bleu_scores, text_lengths
from workbench.metrics._words import distinct_ngrams, word_table

TRICKY = [
    "Café crème brûlée, naïve façade",
    "cafe\u0301 cre\u0300me",  # decomposed accents: Python splits at the combining mark, Rust does not
    "日本語のテキストと中文文本",
    "x² + y³ = z½, Ⅻ and ٣٤٥ digits 0123",
    "snake_case __dunder__ _x_ a_1",
    "don't it’s l’été rock'n'roll “quoted” «guillemets»",
    "İstanbul İİ ΣΑΣ ΟΔΥΣΣΕΥΣ σς",  # 'İ' lowers to two characters, 'Σ' depends on its context
    "ǅemal ﬁne STRASSE Straße ǈ",
    "",
    "   ...   ",
    "emoji 🙂 are not words; 🙂🙂",
    "A" * 40 + " " + "b" * 17 + " " + "Ωmega" * 5,  # words longer than 8 and 16 bytes
    "ends with a word",
    "starts again",  # a word at a row's start right after a row that ends in a word
    "tab\tseparated\nlines\r\nand\x00nul",
    "MiXeD CaSe WORDS words Words",
]


def frame(texts: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": [str(i) for i in range(len(texts))], "text": texts}, schema={"id": pl.Utf8, "text": pl.Utf8}
    )


def assert_words_match(texts: list[str | None]) -> None:
    """Same words in the same order: the ids of word_table are a bijection onto Python's words."""
    table = word_table(pl.Series(texts, dtype=pl.Utf8))
    expected = [ref.words(t) for t in texts]
    assert table.lengths.tolist() == [len(w) for w in expected]
    flat = [w for row in expected for w in row]
    assert table.tok.size == len(flat)
    seen: dict[int, str] = {}
    for word, tok in zip(flat, table.tok.tolist(), strict=True):
        assert seen.setdefault(tok, word) == word  # one id, one word
    assert len(set(seen.values())) == len(seen)  # one word, one id
    assert table.vocab == (len(seen) or 1)
    assert table.doc.tolist() == [i for i, row in enumerate(expected) for _ in row]


def test_tricky_unicode_words_are_pythons():
    assert_words_match([*TRICKY, None])


def test_tricky_unicode_metrics_equal_the_reference_exactly():
    texts = [*TRICKY, *TRICKY[:5], None]
    df = frame(texts)
    assert text_lengths(df)["words"].to_list() == ref.lengths(texts)
    got = distinct_n(df, orders=(1, 2, 3, 4))
    for n in (1, 2, 3, 4):
        assert got.filter(pl.col("n") == n)["distinct"][0] == ref.distinct_n(texts, n)  # exactly equal
    nonempty = [t for t in TRICKY if ref.words(t)]
    assert self_bleu_scores(frame(nonempty), sample=None)["self_bleu"].to_list() == pytest.approx(
        ref.self_bleu_scores(nonempty), abs=1e-12
    )


def test_polars_regex_would_differ_on_this_text():
    """Why the fast path does not use polars' `\\w`: on decomposed accents and superscripts it gives
    other words than Python, while the fast path gives Python's."""
    texts = ["cafe\u0301 x²", "İx"]
    polars_words = pl.Series(texts).str.to_lowercase().str.extract_all(r"\w+").to_list()
    assert polars_words != [ref.words(t) for t in texts]
    assert_words_match(texts)


def test_rows_never_join_and_chunk_edges_do_not_matter(monkeypatch):
    texts = ["abc", "def", "abcdefgh", "ijklmnopq", "x", "", "y" * 9, "z" * 16, "w" * 8, "é", "ab"]
    assert_words_match(texts)
    for chunk in (1, 3, 8, 13):  # the byte and key passes run block by block: blocks cut words anywhere
        monkeypatch.setattr(words_mod, "_CHUNK", chunk)
        assert_words_match(texts)
        assert_words_match(TRICKY)


def test_orders_past_the_int64_code_renumber_exactly():
    texts = [" ".join(f"w{(i * 7 + k) % 211}" for k in range(30)) for i in range(40)]
    table = word_table(pl.Series(texts))
    assert table.vocab**9 > 2**62  # 9-gram codes must be renumbered on the way
    got = distinct_ngrams(table, [2, 9, 12])
    for n in (2, 9, 12):
        assert got[n] == len({g for t in texts for g in ref.ngrams(ref.words(t), n)})


def test_distinct_n_counts_repeated_rows_in_totals():
    texts = ["the cat sat", "the cat sat", "a dog", None, ""]
    got = distinct_n(frame(texts), orders=(1, 2))
    assert got["total"].to_list() == [8, 5]
    assert got["distinct"].to_list() == [ref.distinct_n(texts, 1), ref.distinct_n(texts, 2)]
    with pytest.raises(ValueError, match="orders must be >= 1"):
        distinct_n(frame(texts), orders=(0,))


_PIECES = st.sampled_from(
    [
        *"aZz_09 .,'’-\t\n",
        "\u00e9",
        "e\u0301",
        "İ",
        "Σ",
        "ς",
        "ß",
        "日",
        "²",
        "½",
        "٣",
        "🙂",
        "\u200d",
        "ǅ",
        "abcdefgh",
    ]
)
_TRICKY_TEXT = st.lists(_PIECES, max_size=30).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(_TRICKY_TEXT, min_size=1, max_size=8))
def test_property_tricky_alphabet(texts):
    assert_words_match(texts)
    df = frame(texts)
    assert text_lengths(df)["words"].to_list() == ref.lengths(texts)
    got = distinct_n(df)["distinct"].to_list()
    assert got == [ref.distinct_n(texts, n) for n in (1, 2, 3)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",)), max_size=20), min_size=1, max_size=6))
def test_property_any_unicode(texts):
    assert_words_match(texts)
