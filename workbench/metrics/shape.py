"""The instruction "shape" view of the self-instruct paper: root verb and its direct object.

Wang et al. (2022, Fig. 2) parse each instruction with the Berkeley Neural Parser and keep the verb
closest to the root and its first direct noun object. A parser needs a hub download, so this is a
light stand-in that reads imperative instructions the way they are usually written:

1. lower-case words; drop polite openers ("please", "can you", "i want you to", ...);
2. an opening clause ("Given a list of ..., sort ...", "Using ..., write ...") is skipped up to
   its first comma;
3. an instruction that opens with a question word or auxiliary ("What is ...", "How do I ...")
   gets verb "(question)" and the question word as object;
4. otherwise the first word is the verb; the object is the first following word that is not a
   determiner, pronoun, number or common adjective, crudely singularised ("tips" -> "tip"); a
   preposition before any such word means no direct object ("(none)" in the counts).
It misreads some sentences (a leading noun is taken as a verb); the counts are a view of the set's
shape, not a parse.
"""

from __future__ import annotations

import re

import polars as pl

from ._ngrams import require_column

__all__ = ["instruction_shape", "instruction_shapes", "shape_counts"]

_OPENERS = (
    "please",
    "kindly",
    "now",
    "also",
    "can you",
    "could you",
    "would you",
    "will you",
    "you are given",
    "you will be given",
    "i want you to",
    "i need you to",
    "i would like you to",
    "i'd like you to",
    "your task is to",
    "you need to",
    "you should",
    "you are asked to",
    "try to",
    "help me",
    "let's",
    "lets",
)
_CLAUSE_OPENERS = frozenset(
    {"given", "using", "based", "for", "in", "if", "after", "when", "from", "with", "as"}
)
_QUESTION_WORDS = (
    "what how why who whom whose when where which is are was were do does did can could should would "
    "will shall may might have has am"
)
_QUESTION = frozenset(_QUESTION_WORDS.split())
_SKIP_WORDS = (
    "a an the this that these those some any all each every another me us him her them it you my our "
    "your his their its one two three four five six seven eight nine ten few several many more most "
    "short brief simple new good great detailed creative funny different possible interesting catchy "
    "concise quick small single random unique famous popular common main best top little long "
    "following given appropriate suitable proper relevant specific same other of"
)
_SKIP = frozenset(_SKIP_WORDS.split())
_PREPOSITIONS_WORDS = (
    "in on to for about into with from by at as up out over under between through without within"
)
_PREPOSITIONS = frozenset(_PREPOSITIONS_WORDS.split())
_PARTICLES = frozenset({"up", "out", "in", "down"})
_PHRASAL = frozenset(
    {"come", "make", "figure", "find", "point", "sum", "look", "think", "fill", "write", "set"}
)
_WORD = re.compile(r"[a-z][a-z'-]*|\d+")


def _singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "ous")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def _strip_openers(words: list[str]) -> list[str]:
    changed = True
    while changed and words:
        changed = False
        for opener in _OPENERS:
            parts = opener.split()
            if words[: len(parts)] == parts:
                words = words[len(parts) :]
                changed = True
                break
    return words


def instruction_shape(text: str | None) -> tuple[str | None, str | None]:
    """(verb, object) of one instruction by the heuristic above; (None, None) if it has no words."""
    if not text:
        return None, None
    lowered = text.strip().lower()
    words = _WORD.findall(lowered)
    words = _strip_openers(words)
    if words and words[0] in _CLAUSE_OPENERS and "," in lowered:
        after_clause = lowered.split(",", 1)[1]
        rest_words = _strip_openers(_WORD.findall(after_clause))
        if rest_words:
            words = rest_words
    if not words:
        return None, None
    head = words[0]
    if head in _QUESTION:
        return "(question)", head
    rest = words[1:]
    if rest and rest[0] in _PARTICLES and head in _PHRASAL:  # "come up with", "find out", "fill in"
        head = f"{head} {rest[0]}"
        rest = rest[2:] if len(rest) > 1 and rest[1] == "with" else rest[1:]
    obj = None
    for w in rest:
        if w in _PREPOSITIONS:  # "sort them in order", "write about x": no direct noun object
            break
        if w in _SKIP or w.isdigit() or len(w) < 2:
            continue
        obj = _singular(w.strip("'-"))
        break
    return head, obj


def instruction_shapes(df: pl.DataFrame, column: str = "text") -> pl.DataFrame:
    """Per row: `id` (if present), `verb`, `object` from `instruction_shape` (computed once per
    distinct text)."""
    require_column(df, column)
    texts = df[column].cast(pl.Utf8)
    uniq = texts.unique().to_list()
    shapes = [instruction_shape(t) for t in uniq]
    table = pl.DataFrame(
        {"_t": uniq, "verb": [s[0] for s in shapes], "object": [s[1] for s in shapes]},
        schema={"_t": pl.Utf8, "verb": pl.Utf8, "object": pl.Utf8},
    )
    joined = pl.DataFrame({"_t": texts}).join(
        table, on="_t", how="left", maintain_order="left", nulls_equal=True
    )
    out = joined.select("verb", "object")
    if "id" in df.columns:
        out = out.with_columns(id=df["id"].cast(pl.Utf8)).select("id", "verb", "object")
    return out


def shape_counts(
    df: pl.DataFrame, column: str = "text", *, top_verbs: int = 20, top_objects: int = 4
) -> pl.DataFrame:
    """Counts of (verb, object) pairs for the `top_verbs` most common verbs and, within each, the
    `top_objects` most common objects (the paper's sunburst, flattened).

    count(v, o) = |{rows with verb v and object o}|; share = count / rows with a verb.
    Returns `verb, object, count, verb_count, share`, sorted by verb_count then count.
    """
    shapes = instruction_shapes(df, column).filter(pl.col("verb").is_not_null())
    total = max(shapes.height, 1)
    pairs = shapes.with_columns(pl.col("object").fill_null("(none)")).group_by("verb", "object").len("count")
    verbs = pairs.group_by("verb").agg(verb_count=pl.col("count").sum())
    verbs = verbs.sort(["verb_count", "verb"], descending=[True, False]).head(top_verbs)
    out = (
        pairs.join(verbs, on="verb", how="inner")
        .sort(["verb_count", "verb", "count", "object"], descending=[True, False, True, False])
        .group_by("verb", maintain_order=True)
        .head(top_objects)
        .with_columns(share=pl.col("count") / total)
    )
    return out.select(
        "verb", "object", pl.col("count").cast(pl.Int64), pl.col("verb_count").cast(pl.Int64), "share"
    )
