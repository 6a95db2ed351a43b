"""MinHash/LSH near-duplicates: the same drops as the exact all-pairs sequential rule, each naming its row."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from workbench.filters.near_dup import NEAR_DUPLICATE, NearDupConfig, NearDupStats, near_duplicates
from workbench.filters.rouge import rouge_l_matrix
from workbench.generate.seeds import default_seeds, self_instruct_seeds

FILLERS = ["the", "a", "please", "quickly", "new", "short", "simple", "detailed", "now", "also"]


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(rng.randint(1, 5)):
        op = rng.random()
        if op < 0.25 and len(words) > 2:
            del words[rng.randrange(len(words))]
        elif op < 0.5:
            words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS))
        elif op < 0.7 and len(words) > 1:
            k = rng.randrange(len(words) - 1)
            words[k], words[k + 1] = words[k + 1], words[k]
        elif op < 0.85 and words:
            words[rng.randrange(len(words))] = rng.choice(FILLERS)
        else:
            words.append(rng.choice(["Explain why!", "(in French)", "ÉTÉ 2024", "now."]))
    return " ".join(words)


@pytest.fixture(scope="module")
def pool() -> pl.DataFrame:
    """The shipped seeds, then deterministic perturbed copies of them (and of copies), in a fixed order."""
    base = default_seeds()["instruction"].to_list() + self_instruct_seeds()["instruction"].to_list()
    rng = random.Random(17)
    texts = list(base)
    for _ in range(400):
        src = texts[rng.randrange(len(texts))]
        texts.append(src if rng.random() < 0.05 else _perturb(src, rng))
    order = list(range(len(texts)))
    rng.shuffle(order)  # copies may come before or after their source
    texts = [texts[k] for k in order]
    return pl.DataFrame({"id": [f"row{k}" for k in range(len(texts))], "text": texts})


def _exact_sequential(
    texts: list[str], threshold: float, refs: tuple[str, ...] = ()
) -> list[tuple[int, float] | None]:
    """The rule by brute force: each row vs every reference and every earlier kept row."""
    pool = list(refs) + texts
    sim = rouge_l_matrix(pool, pool)  # rows = targets (the row tested), cols = predictions (the pool)
    kept = [True] * len(refs)
    out: list[tuple[int, float] | None] = []
    for k in range(len(texts)):
        i = len(refs) + k
        cands = [(sim[i, j], -j) for j in range(i) if kept[j] and sim[i, j] >= threshold]
        if cands:
            s, neg_j = max(cands)
            out.append((-neg_j, float(s)))
            kept.append(False)
        else:
            out.append(None)
            kept.append(True)
    return out


def test_lsh_finds_the_exact_all_pairs_drops(pool: pl.DataFrame) -> None:
    texts = pool["text"].to_list()
    exact = _exact_sequential(texts, 0.7)
    st = NearDupStats()
    out = near_duplicates(pool, stats=st)
    lsh = out["status"].to_list()
    exact_dropped = {k for k, e in enumerate(exact) if e is not None}
    lsh_dropped = {k for k, s in enumerate(lsh) if s == "dropped"}
    assert len(exact_dropped) > 150  # the set really has near duplicates to find
    assert len(lsh_dropped & exact_dropped) / len(exact_dropped) >= 0.99
    # LSH compared far fewer pairs than all pairs
    assert st.candidate_pairs < len(texts) * (len(texts) - 1) / 2 / 5
    # every drop names an earlier kept row, with the exact similarity of that pair
    ids = pool["id"].to_list()
    pos = {rid: k for k, rid in enumerate(ids)}
    status = dict(zip(ids, lsh, strict=True))
    for k in lsh_dropped:
        j = pos[out["dup_of"][k]]
        assert j < k and status[ids[j]] == "kept"
        assert out["dup_similarity"][k] == float(rouge_l_matrix([texts[k]], [texts[j]])[0, 0]) >= 0.7
        assert (out["dup_set"][k], out["reason"][k]) == ("self", NEAR_DUPLICATE)
    # and almost always the very row the exact rule names (it can differ after a miss changed the pool)
    same = [out["dup_of"][k] == ids[exact[k][0]] for k in lsh_dropped & exact_dropped]  # type: ignore[index]
    assert sum(same) / len(same) >= 0.98


def test_similarity_is_rouge_score_on_the_named_pair(pool: pl.DataFrame) -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    out = near_duplicates(pool).filter(pl.col("status") == "dropped").head(40)
    by_id = dict(zip(pool["id"].to_list(), pool["text"].to_list(), strict=True))
    for row in out.iter_rows(named=True):
        ref = scorer.score(by_id[row["dup_of"]], row["text"])["rougeL"].fmeasure  # target = the dropped row
        assert row["dup_similarity"] == ref
        assert row["dup_similarity"] >= 0.7


def test_drop_names_earlier_kept_row_and_copies_follow_their_first() -> None:
    frame = pl.DataFrame({
        "id": ["a", "b", "c", "d", "e", ""],
        "text": [
            "Write a short poem about the autumn rain in the city",
            "Write a short poem about the autumn rain in my city",  # near dup of a
            "Explain how a bicycle gear system works to a child",
            "write a short poem about the autumn rain in my city!",  # same tokens as b (dropped): dup of a
            "Explain how a bicycle gear system works to a child",  # exact copy of c (kept)
            "",  # no token: never a duplicate
        ],
    })  # fmt: skip
    out = near_duplicates(frame)
    assert out["status"].to_list() == ["kept", "dropped", "kept", "dropped", "dropped", "kept"]
    assert out["dup_of"].to_list() == [None, "a", None, "a", "c", None]
    ab = float(rouge_l_matrix([frame["text"][1]], [frame["text"][0]])[0, 0])
    assert out["dup_similarity"].to_list() == [None, ab, None, ab, 1.0, None]
    assert out["reason"].to_list() == [None, NEAR_DUPLICATE, None, NEAR_DUPLICATE, NEAR_DUPLICATE, None]


def test_threshold_boundary_and_strict_compare() -> None:
    a = "one two three four five six seven eight nine ten"
    b = "one two three four five six seven xx yy zz"  # LCS 7 of 10 and 10
    s = float(rouge_l_matrix([b], [a])[0, 0])
    frame = pl.DataFrame({"id": ["a", "b"], "text": [a, b]})
    ge = near_duplicates(frame, NearDupConfig(threshold=s))
    gt = near_duplicates(frame, NearDupConfig(threshold=s, compare=">"))
    assert ge["status"].to_list() == ["kept", "dropped"]
    assert gt["status"].to_list() == ["kept", "kept"]


def test_against_references_and_earlier_runs(pool: pl.DataFrame) -> None:
    refs = pool.head(300)
    new = pool.slice(300).with_columns(pl.col("id") + "_new")
    out = near_duplicates(new, references={"earlier_run": refs})
    exact = _exact_sequential(new["text"].to_list(), 0.7, tuple(refs["text"].to_list()))
    ref_text = dict(zip(refs["id"].to_list(), refs["text"].to_list(), strict=True))
    new_text = dict(zip(new["id"].to_list(), new["text"].to_list(), strict=True))
    agree = [
        (e is not None) == (st == "dropped") for e, st in zip(exact, out["status"].to_list(), strict=True)
    ]
    assert sum(agree) / len(agree) >= 0.99
    for row in out.filter(pl.col("status") == "dropped").iter_rows(named=True):
        dup_text = ref_text[row["dup_of"]] if row["dup_set"] == "earlier_run" else new_text[row["dup_of"]]
        assert row["dup_similarity"] == float(rouge_l_matrix([row["text"]], [dup_text])[0, 0]) >= 0.7
    assert (out["dup_set"] == "earlier_run").sum() > 20
    assert (out["dup_set"] == "self").sum() > 5


def test_reference_as_text_list_and_dropped_rows_are_not_pooled() -> None:
    text = "Summarize the following news article in three sentences"
    frame = pl.DataFrame({
        "id": ["x", "y", "z"],
        "text": [text, text + " please", "Summarize the following news article in three short sentences"],
        "status": ["dropped", "kept", None],
        "reason": ["too_long", None, None],
    })  # fmt: skip
    out = near_duplicates(frame)
    # x was already dropped: untouched and not in the pool, so y is kept and z duplicates y
    assert out["status"].to_list() == ["dropped", "kept", "dropped"]
    assert out["reason"].to_list() == ["too_long", None, NEAR_DUPLICATE]
    assert out["dup_of"].to_list() == [None, None, "y"]
    against = near_duplicates(frame.drop("status", "reason"), references=[text.upper()])
    assert against["dup_set"].to_list() == ["reference"] * 3
    assert against["dup_of"].to_list() == ["0", "0", "0"]
    assert against["dup_similarity"][0] == 1.0


def test_no_false_drops_on_unrelated_rows() -> None:
    frame = default_seeds().select("id", pl.col("instruction").alias("text"))
    out = near_duplicates(frame)
    sim = rouge_l_matrix(frame["text"].to_list(), frame["text"].to_list())
    np.fill_diagonal(sim, 0)
    assert sim.max() < 0.7  # the project's seeds are distinct
    assert (out["status"] == "kept").all()


def test_config_and_input_errors() -> None:
    with pytest.raises(ValidationError):
        NearDupConfig(threshold=0)
    with pytest.raises(ValidationError):
        NearDupConfig(treshold=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        NearDupConfig(compare="=>")
    with pytest.raises(ValueError, match="rows_per_band"):
        near_duplicates(
            pl.DataFrame({"id": ["a"], "text": ["x"]}), NearDupConfig(num_perm=8, rows_per_band=9)
        )
    with pytest.raises(ValueError, match="no 'text' column"):
        near_duplicates(pl.DataFrame({"id": ["a"], "instruction": ["x"]}))
    with pytest.raises(ValueError, match="repeated ids"):
        near_duplicates(pl.DataFrame({"id": ["a", "a"], "text": ["x", "y"]}))
    with pytest.raises(ValueError, match="must hold strings"):
        near_duplicates(pl.DataFrame({"id": ["a"], "text": [1]}))
    with pytest.raises(ValueError, match=r"reference 'old'.*no 'id' column"):
        near_duplicates(
            pl.DataFrame({"id": ["a"], "text": ["x"]}), references={"old": pl.DataFrame({"text": ["x"]})}
        )
    custom = near_duplicates(
        pl.DataFrame({"key": ["a", "b"], "instruction": ["same words here", "same words here"]}),
        NearDupConfig(id_column="key", text_column="instruction"),
    )
    assert custom["dup_of"].to_list() == [None, "a"]
