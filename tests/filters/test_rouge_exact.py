"""Our ROUGE-L search must reproduce rouge_score's fmeasure bit for bit, hence its keep/drop decisions."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from workbench.filters import RougeLIndex, rouge_l_nearest, rouge_l_self_nearest, rouge_tokenize

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
rouge_tokenize_ref = pytest.importorskip("rouge_score.tokenize")


@pytest.fixture(scope="module")
def scorer():
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


@pytest.fixture(scope="module")
def seed_instructions(shared_data) -> list[str]:
    with open(shared_data / "seed_tasks.jsonl") as fh:
        return [json.loads(line)["instruction"] for line in fh if line.strip()]


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.3 and len(words) > 1:
            del words[rng.randrange(len(words))]
        elif op < 0.6:
            words.insert(rng.randrange(len(words) + 1), rng.choice(["the", "a", "please", "quickly", "new"]))
        elif op < 0.8 and len(words) > 1:
            i, j = rng.randrange(len(words)), rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        else:
            words.append(rng.choice(["now.", "Explain why!", "(in French)", "–", "ÉTÉ 2024"]))
    return " ".join(words)


@pytest.fixture(scope="module")
def candidates(seed_instructions, shared_data) -> list[str]:
    rng = random.Random(7)
    out = [_perturb(rng.choice(seed_instructions), rng) for _ in range(300)]
    # Real machine-written instructions (the paper's released generations) and edge cases.
    with open(shared_data / "user_oriented_instructions.jsonl") as fh:
        out += [json.loads(line)["instruction"] for line in fh if line.strip()][:120]
    out += ["", "!!!", "ÉTÉ", seed_instructions[0], seed_instructions[5].upper(), "a a a a", "Write a poem."]
    return out


def test_tokenizer_matches_reference(candidates, seed_instructions):
    for text in [*candidates, *seed_instructions, "İstanbul ünïcode ß straße x_y 3.14 don't"]:
        assert rouge_tokenize(text) == rouge_tokenize_ref.tokenize(text, None)


def test_scores_and_decisions_equal_reference(scorer, seed_instructions, candidates):
    pool = seed_instructions
    ours, idx = rouge_l_nearest(candidates, pool)
    near_threshold = 0
    for i, cand in enumerate(candidates):
        # The paper's code: scorer.score(new_instruction, pool_item) against every pool item.
        ref = [scorer.score(cand, p)["rougeL"].fmeasure for p in pool]
        best = max(ref)
        assert ours[i] == best, (cand, ours[i], best)  # bit-exact, not approximately equal
        assert (ours[i] > 0.7) == (best > 0.7)
        if best > 0:
            assert ref[idx[i]] == best and idx[i] == ref.index(best)
        else:
            assert idx[i] == -1
        near_threshold += abs(best - 0.7) < 0.08
    assert near_threshold >= 5, "the candidate set must exercise decisions near the threshold"
    assert (ours > 0.7).sum() >= 10 and (ours <= 0.7).sum() >= 10


def test_exact_threshold_boundary(scorer):
    # 7 shared tokens of 10 each side: F = 0.7 exactly in rouge_score's float arithmetic -> kept (not > 0.7).
    a = "w1 w2 w3 w4 w5 w6 w7 a1 a2 a3"
    b = "w1 w2 w3 w4 w5 w6 w7 b1 b2 b3"
    ref = scorer.score(a, b)["rougeL"].fmeasure
    ours, _ = rouge_l_nearest([a], [b])
    assert ours[0] == ref
    assert (ours[0] > 0.7) == (ref > 0.7)


def test_self_nearest_and_index_match_reference(scorer, seed_instructions):
    texts = seed_instructions[:60]
    scores, idx = rouge_l_self_nearest(texts)
    for i, t in enumerate(texts):
        ref = [scorer.score(t, o)["rougeL"].fmeasure if j != i else -1.0 for j, o in enumerate(texts)]
        assert scores[i] == max(ref)
        assert idx[i] == ref.index(max(ref))


def test_index_incremental_equals_batch(seed_instructions, candidates):
    index = RougeLIndex(seed_instructions[:100])
    index.add(seed_instructions[100:])
    assert len(index) == len(seed_instructions)
    s1, i1 = index.nearest(candidates)
    s2, i2 = rouge_l_nearest(candidates, seed_instructions)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(i1, i2)


def test_empty_pool():
    scores, idx = rouge_l_nearest(["hello world"], [])
    assert scores.tolist() == [0.0] and idx.tolist() == [-1]
    assert len(RougeLIndex()) == 0
