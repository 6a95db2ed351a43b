"""Metrics of a synthetic set as a whole: lengths, lexical and embedding diversity, instruction
shape, and comparisons between sets. Every function takes a polars frame and returns one, and its
docstring states its formula."""

from .by_attribute import BY_ATTRIBUTE_SCHEMA, attribute_names, by_attribute
from .compare import (
    COMPARE_SCHEMA,
    bootstrap_mean_ci,
    compare_runs,
    compare_sets,
    jackknife_se,
    set_level_estimates,
    split_sets,
)
from .embedding import (
    STOPWORDS,
    cluster_keywords,
    embed_frame,
    embedding_matrix,
    embedding_summary,
    kmeans_clusters,
    mean_pairwise_cosine_distance,
    vendi_score,
)
from .lexical import distinct_n, lexical_summary, nearest_rouge_l, self_bleu, self_bleu_scores, text_lengths
from .shape import instruction_shape, instruction_shapes, shape_counts

__all__ = [
    "BY_ATTRIBUTE_SCHEMA",
    "COMPARE_SCHEMA",
    "STOPWORDS",
    "attribute_names",
    "bootstrap_mean_ci",
    "by_attribute",
    "cluster_keywords",
    "compare_runs",
    "compare_sets",
    "distinct_n",
    "embed_frame",
    "embedding_matrix",
    "embedding_summary",
    "instruction_shape",
    "instruction_shapes",
    "jackknife_se",
    "kmeans_clusters",
    "lexical_summary",
    "mean_pairwise_cosine_distance",
    "nearest_rouge_l",
    "self_bleu",
    "self_bleu_scores",
    "set_level_estimates",
    "shape_counts",
    "split_sets",
    "text_lengths",
    "vendi_score",
]
