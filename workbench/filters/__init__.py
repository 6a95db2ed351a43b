"""Filters that decide which generated instructions join the pool, and record why others did not.

- `rouge`: exact, fast ROUGE-L nearest-neighbour search (the paper's near-duplicate filter).
- `text_filters`: length, keyword blacklist, banned prefixes, punctuation / non-ASCII start.
- `near_dup`: MinHash/LSH near-duplicate detection at scale, within a set and against earlier runs or
  datasets; LSH proposes candidates, the exact ROUGE-L decides, each drop names its row and similarity.
- `decontam`: flags rows sharing a word n-gram (13 by default) with a benchmark's test items, hashed;
  each flag names the item and the shared span.
- `apply`: every filter at once over rows already generated (the Filters view): kept/dropped with the
  filter, reason and detail of each drop, counts per filter; Apply records the drops as run rows.
- `ifd`: Instruction-Following Difficulty (Li et al., 2024; Superfiltering): how much an instruction helps the
  model predict its answer, scored by a (small) model and written to the run as rows.
"""

from .apply import (
    FILTER_STAGE,
    FILTERS,
    FilterResult,
    FilterSettings,
    apply_filters,
    filter_decision_rows,
    record_filter_drops,
    with_filter_drops,
)
from .decontam import Benchmark, DecontamConfig, decontaminate, load_benchmark
from .ifd import IFDConfig, add_ifd, filter_by_ifd, ifd_score, run_ifd, with_ifd
from .near_dup import NEAR_DUPLICATE, NearDupConfig, NearDupStats, near_duplicates
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
    "FILTERS",
    "FILTER_STAGE",
    "NEAR_DUPLICATE",
    "Benchmark",
    "DecontamConfig",
    "FilterResult",
    "FilterSettings",
    "IFDConfig",
    "NearDupConfig",
    "NearDupStats",
    "RougeLIndex",
    "TextFilterConfig",
    "add_ifd",
    "apply_filters",
    "blacklisted_word",
    "decontaminate",
    "filter_by_ifd",
    "filter_decision_rows",
    "ifd_score",
    "load_benchmark",
    "near_duplicates",
    "record_filter_drops",
    "rouge_l_fmeasure",
    "rouge_l_matrix",
    "rouge_l_nearest",
    "rouge_l_self_nearest",
    "rouge_tokenize",
    "run_ifd",
    "text_filter_reason",
    "text_filter_reasons",
    "with_filter_drops",
    "with_ifd",
]
