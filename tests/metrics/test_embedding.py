from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.metrics import (
    cluster_keywords,
    embed_frame,
    embedding_summary,
    kmeans_clusters,
    mean_pairwise_cosine_distance,
    vendi_score,
)


def emb_frame(mat: np.ndarray) -> pl.DataFrame:
    mat = np.asarray(mat, dtype=np.float32)
    return pl.DataFrame({"id": [str(i) for i in range(len(mat))]}).with_columns(
        pl.Series("embedding", mat, dtype=pl.Array(pl.Float32, mat.shape[1]))
    )


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_mean_pairwise_distance_equals_brute_force():
    x = unit_rows(30, 8)
    brute = np.mean([1 - float(x[i] @ x[j]) for i, j in itertools.combinations(range(30), 2)])
    out = mean_pairwise_cosine_distance(emb_frame(x))
    assert out["mean_cosine_distance"][0] == pytest.approx(brute, abs=1e-6)
    assert out["n"][0] == 30


def test_vendi_extremes_and_brute_force():
    same = np.tile(unit_rows(1, 6), (5, 1))
    assert vendi_score(emb_frame(same))["vendi"][0] == pytest.approx(1.0, abs=1e-5)
    assert vendi_score(emb_frame(np.eye(4)))["vendi"][0] == pytest.approx(4.0, abs=1e-5)
    x = unit_rows(12, 20, seed=3)  # d > n: the n x n kernel path
    lam = np.clip(np.linalg.eigvalsh(x @ x.T / 12), 1e-15, None)
    expected = np.exp(-np.sum(lam * np.log(lam)))
    assert vendi_score(emb_frame(x))["vendi"][0] == pytest.approx(expected, rel=1e-4)
    y = unit_rows(50, 5, seed=4)  # d < n: the d x d path must agree with the n x n kernel
    lam = np.clip(np.linalg.eigvalsh(y @ y.T / 50), 1e-15, None)
    assert vendi_score(emb_frame(y))["vendi"][0] == pytest.approx(
        np.exp(-np.sum(lam * np.log(lam))), rel=1e-4
    )


def test_kmeans_recovers_separated_groups():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16)
    x = np.vstack([c + 0.05 * rng.normal(size=(20, 16)) for c in centres])
    out = kmeans_clusters(emb_frame(x), k=3, seed=0)
    assert "embedding" not in out.columns and {"cluster", "x", "y", "centroid_sim"} <= set(out.columns)
    labels = out["cluster"].to_numpy()
    for g in range(3):
        assert len(set(labels[g * 20 : (g + 1) * 20])) == 1
    assert len(set(labels)) == 3
    assert kmeans_clusters(emb_frame(x[:2]), k=5)["cluster"].n_unique() <= 2  # k capped at n


def test_cluster_keywords_picks_telling_words():
    df = pl.DataFrame(
        {
            "text": [
                "the cat sat on the mat",
                "a cat and a kitten",
                "my cat purrs",
                "file your tax return",
                "tax forms are due",
                "pay the tax office",
            ],
            "cluster": [0, 0, 0, 1, 1, 1],
        }
    )
    out = cluster_keywords(df, top=2)
    assert out["cluster"].to_list() == [0, 1]
    assert out["size"].to_list() == [3, 3]
    assert out["keywords"][0][0] == "cat" and out["keywords"][1][0] == "tax"
    assert out["label"][1].startswith("tax")


def test_embed_frame_with_fake_backend_and_summary():
    df = pl.DataFrame({"id": ["a", "b", "c"], "text": ["cat dog", "cat dog", "tax form"]})
    out = embed_frame(df, FakeBackend(), batch_size=2)
    assert out["embedding"].dtype == pl.Array(pl.Float32, 64)
    assert mean_pairwise_cosine_distance(out.head(2))["mean_cosine_distance"][0] == pytest.approx(
        0.0, abs=1e-6
    )
    assert embed_frame(df, FakeBackend(), sample=2).height == 2
    summary = embedding_summary(df, FakeBackend())
    assert summary["metric"].to_list() == ["mean_cosine_distance", "vendi"]
    with pytest.raises(ValueError, match="batch_size"):
        embed_frame(df, FakeBackend(), batch_size=0)
    with pytest.raises(ValueError, match="no backend"):
        embedding_summary(df)


@pytest.mark.model
def test_real_model_embeddings(llama_backend):
    texts = [
        "Write a poem about the sea.",
        "Write a poem about the ocean.",
        "List three prime numbers.",
        "Translate 'good morning' into French.",
        "Explain photosynthesis.",
        "Name a famous painter.",
        "Write a poem about the sea.",
        "Give me a recipe for pancakes.",
    ]
    df = pl.DataFrame({"id": [str(i) for i in range(8)], "text": texts})
    out = embed_frame(df, llama_backend)
    mat = out["embedding"].to_numpy()
    assert mat.shape[0] == 8 and np.all(np.isfinite(mat))
    np.testing.assert_allclose(np.linalg.norm(mat, axis=1), 1.0, atol=1e-4)
    sims = mat @ mat.T
    # the same text lands (nearly) on the same vector; batching makes llama.cpp differ in the last digits
    assert sims[0, 6] > 0.99
    assert sims[0, 6] > max(sims[0, j] for j in range(1, 8) if j != 6)
    d = mean_pairwise_cosine_distance(out)["mean_cosine_distance"][0]
    vs = vendi_score(out)["vendi"][0]
    assert 0.0 < d < 2.0 and 1.0 < vs < 8.0
