"""Filters that decide which generated instructions join the pool, and record why others did not.

- `rouge`: exact, fast ROUGE-L nearest-neighbour search (the paper's near-duplicate filter).
- `text_filters`: length, keyword blacklist, banned prefixes, punctuation / non-ASCII start.
- `minhash`: optional MinHash/LSH candidate pre-filter for very large pools.
"""

from .rouge import (
    RougeLIndex,
    rouge_l_fmeasure,
    rouge_l_matrix,
    rouge_l_nearest,
    rouge_l_self_nearest,
    rouge_tokenize,
)
from .text_filters import (
    DEFAULT_BANNED_PREFIXES,
    DEFAULT_BLACKLIST,
    TextFilterConfig,
    blacklisted_word,
    text_filter_reason,
    text_filter_reasons,
)

__all__ = [
    "DEFAULT_BANNED_PREFIXES",
    "DEFAULT_BLACKLIST",
    "RougeLIndex",
    "TextFilterConfig",
    "blacklisted_word",
    "rouge_l_fmeasure",
    "rouge_l_matrix",
    "rouge_l_nearest",
    "rouge_l_self_nearest",
    "rouge_tokenize",
    "text_filter_reason",
    "text_filter_reasons",
]
