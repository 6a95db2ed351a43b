"""Embedding diversity: embeddings from any backend, mean pairwise cosine distance, the Vendi
score, and k-means clusters labelled with their most telling words (c-TF-IDF).

Embeddings come from `backend.embed(texts)` (L2-normalised float32 rows): the default GGUF or any
embedding GGUF a user loads. They travel in polars as an `Array(Float32, d)` column named
`embedding`, so every function here is frame in, frame out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from ..engine.protocol import Backend
from ._ngrams import require_column, seeded_sample, words_expr

__all__ = [
    "STOPWORDS",
    "cluster_keywords",
    "embed_frame",
    "embedding_matrix",
    "embedding_summary",
    "kmeans_clusters",
    "mean_pairwise_cosine_distance",
    "vendi_score",
]

_STOPWORDS_WORDS = (
    "a an the and or but if then else of to in on at by for with from into about as is are was were "
    "be been being it its this that these those there here i me my we our you your he she they them "
    "their his her what which who whom how why when where do does did can could would should will "
    "shall may might must not no so than too very just also any some all each every more most other "
    "such only own same s t don up down out over under again further once both few nor off am has "
    "have having"
)
STOPWORDS = frozenset(_STOPWORDS_WORDS.split())


def embed_frame(
    df: pl.DataFrame,
    backend: Backend,
    column: str = "text",
    *,
    sample: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    on_batch: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> pl.DataFrame:
    """Add an `embedding` column (Array(Float32, d)) holding `backend.embed` of `column`.

    With `sample`, only a seeded sample of at most that many rows is embedded and returned
    (embedding is the slow step on a CPU). Empty texts embed as a single space. `on_batch(done, total)`
    is called after each batch of `batch_size` texts; once `cancel` is set, no further batch starts and
    only the rows embedded so far are returned (none: no `embedding` column).
    """
    require_column(df, column)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    picked = seeded_sample(df, sample, seed)
    texts = [t if t else " " for t in picked[column].fill_null("").cast(pl.Utf8).to_list()]
    blocks: list[np.ndarray] = []
    for i in range(0, len(texts), batch_size):
        if cancel is not None and cancel.is_set():
            break
        blocks.append(np.asarray(backend.embed(texts[i : i + batch_size]), dtype=np.float32))
        if on_batch is not None:
            on_batch(min(i + batch_size, len(texts)), len(texts))
    if not blocks:
        if texts:  # cancelled before the first batch
            return picked.head(0)
        raise ValueError("nothing to embed: the frame has no rows")
    mat = np.vstack(blocks)
    picked = picked.head(min(len(blocks) * batch_size, len(texts)))  # fewer rows only when cancelled
    if mat.shape[0] != picked.height:
        raise ValueError(
            f"backend {backend.name!r} returned {mat.shape[0]} embeddings for {picked.height} texts"
        )
    return picked.with_columns(pl.Series("embedding", mat, dtype=pl.Array(pl.Float32, mat.shape[1])))


def embedding_matrix(df: pl.DataFrame, column: str = "embedding") -> np.ndarray:
    """The embedding column as an (n, d) float64 matrix with unit rows (re-normalised defensively)."""
    require_column(df, column)
    mat = np.asarray(df[column].to_numpy(), dtype=np.float64)
    if mat.ndim != 2:
        raise ValueError(f"column {column!r} must hold fixed-size vectors; use embed_frame to make it")
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms == 0, 1.0, norms)


def mean_pairwise_cosine_distance(df: pl.DataFrame, column: str = "embedding") -> pl.DataFrame:
    """Mean cosine distance over all unordered pairs of distinct rows.

    With unit rows x_i and s = sum_i x_i:
      sum_{i != j} x_i . x_j = |s|^2 - n
      mean distance = 1 - (|s|^2 - n) / (n (n - 1))
    exact, in O(n d) instead of O(n^2 d). Returns one row: `mean_cosine_distance, n`.
    """
    x = embedding_matrix(df, column)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"mean pairwise distance needs at least 2 rows, got {n}")
    s = x.sum(axis=0)
    mean_sim = (float(s @ s) - n) / (n * (n - 1))
    return pl.DataFrame({"mean_cosine_distance": [1.0 - mean_sim], "n": [n]})


def vendi_score(df: pl.DataFrame, column: str = "embedding", *, order: float = 1.0) -> pl.DataFrame:
    """The Vendi score (Friedman & Dieng 2023) with the cosine-similarity kernel.

    K = X X^T / n (unit rows, so K_ii = 1/n and trace K = 1), eigenvalues l_i:
      VS = exp(-sum_i l_i log l_i)                      (order q = 1)
      VS_q = exp(log(sum_i l_i^q) / (1 - q))            (order q != 1)
    The "effective number of distinct items": 1 if all rows are identical, n if orthogonal.
    The non-zero eigenvalues of X X^T / n equal those of X^T X / n (d x d), so the cost is
    O(n d^2). Returns one row: `vendi, n`.
    """
    x = embedding_matrix(df, column)
    n = x.shape[0]
    if n < 1:
        raise ValueError("the Vendi score needs at least 1 row")
    gram = (x.T @ x) / n if x.shape[1] < n else (x @ x.T) / n
    lam = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    if order == 1.0:
        score = float(np.exp(-np.sum(lam * np.log(lam))))
    else:
        score = float(np.exp(np.log(np.sum(lam**order)) / (1.0 - order)))
    return pl.DataFrame({"vendi": [score], "n": [n]})


def _kmeans(x: np.ndarray, k: int, seed: int, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine) with k-means++ seeding. Returns (labels, unit centroids)."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(n)]
    d2 = np.maximum(2.0 - 2.0 * (x @ centers[0]), 0.0)
    for j in range(1, k):
        total = d2.sum()
        pick = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centers[j] = x[pick]
        d2 = np.minimum(d2, np.maximum(2.0 - 2.0 * (x @ centers[j]), 0.0))
    labels = np.full(n, -1)
    for _ in range(iters):
        new = np.argmax(x @ centers.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if members.shape[0] == 0:  # re-seed an empty cluster at the worst-served point
                worst = int(np.argmin(np.max(x @ centers.T, axis=1)))
                centers[j] = x[worst]
                continue
            c = members.sum(axis=0)
            norm = np.linalg.norm(c)
            centers[j] = c / norm if norm > 0 else members[0]
    return labels, centers


def kmeans_clusters(
    df: pl.DataFrame, k: int = 8, column: str = "embedding", *, seed: int = 0, iters: int = 50
) -> pl.DataFrame:
    """Cluster rows with spherical k-means and place them on a 2-D map.

    Assignment: cluster(i) = argmax_j x_i . c_j; update: c_j = normalise(sum_{i in j} x_i), repeated
    until assignments stop changing (k-means++ seeding with `seed`). Map coordinates are the first
    two principal components of the embeddings (x - mean) V[:, :2].
    Returns the input frame without the embedding column plus `cluster, x, y, centroid_sim`.
    """
    x = embedding_matrix(df, column)
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot cluster an empty frame")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, n)
    labels, centers = _kmeans(x, k, seed, iters)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt, np.zeros((2 - vt.shape[0], x.shape[1]))])
    xy = centred @ comps.T
    sim = np.sum(x * centers[labels], axis=1)
    return df.drop(column).with_columns(
        cluster=pl.Series(labels.astype(np.int64)),
        x=pl.Series(xy[:, 0]),
        y=pl.Series(xy[:, 1]),
        centroid_sim=pl.Series(sim),
    )


def cluster_keywords(
    df: pl.DataFrame,
    column: str = "text",
    *,
    cluster_column: str = "cluster",
    top: int = 6,
    stopwords: Sequence[str] | frozenset[str] = STOPWORDS,
) -> pl.DataFrame:
    """The most telling words of each cluster by class-based TF-IDF (c-TF-IDF, BERTopic).

    tf(t, c) = count of word t in cluster c / words in c
    W(t, c)  = tf(t, c) * log(1 + A / f(t)),  A = mean words per cluster, f(t) = count of t overall
    Stop words and single characters are dropped. Returns `cluster, size, keywords (list[str]),
    label` (the top words joined), one row per cluster, sorted by cluster.
    """
    require_column(df, column)
    require_column(df, cluster_column)
    stop = list(stopwords)
    words = (
        df.select(pl.col(cluster_column).alias("cluster"), words_expr(column).alias("w"))
        .explode("w")
        .filter(pl.col("w").is_not_null() & (pl.col("w").str.len_chars() > 1) & ~pl.col("w").is_in(stop))
    )
    sizes = df.group_by(pl.col(cluster_column).alias("cluster")).agg(size=pl.len().cast(pl.Int64))
    counts = words.group_by("cluster", "w").len("tf")
    n_clusters = max(int(sizes.height), 1)
    avg_words = words.height / n_clusters if words.height else 1.0
    scored = counts.with_columns(
        score=(pl.col("tf") / pl.col("tf").sum().over("cluster"))
        * (1.0 + avg_words / pl.col("tf").sum().over("w")).log()
    )
    top_words = (
        scored.sort(["cluster", "score", "w"], descending=[False, True, False])
        .group_by("cluster", maintain_order=True)
        .agg(keywords=pl.col("w").head(top))
    )
    out = sizes.join(top_words, on="cluster", how="left").with_columns(
        pl.col("keywords").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))
    )
    return out.with_columns(label=pl.col("keywords").list.join(", ")).sort("cluster")


def embedding_summary(
    df: pl.DataFrame,
    backend: Backend | None = None,
    column: str = "text",
    *,
    sample: int | None = 500,
    seed: int = 0,
) -> pl.DataFrame:
    """Mean cosine distance and Vendi score as a long frame `metric, value, sample_size`.

    Uses an existing `embedding` column, else embeds a seeded sample of `column` with `backend`.
    """
    if "embedding" in df.columns:
        emb = seeded_sample(df, sample, seed)
    elif backend is None:
        raise ValueError("no 'embedding' column and no backend: pass backend= to embed the texts")
    else:
        emb = embed_frame(df, backend, column, sample=sample, seed=seed)
    mpd = mean_pairwise_cosine_distance(emb)["mean_cosine_distance"][0]
    vs = vendi_score(emb)["vendi"][0]
    return pl.DataFrame(
        {"metric": ["mean_cosine_distance", "vendi"], "value": [mpd, vs], "sample_size": [emb.height] * 2},
        schema={"metric": pl.Utf8, "value": pl.Float64, "sample_size": pl.Int64},
    )
