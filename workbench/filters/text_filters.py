"""Cheap text filters from the self-instruct paper, each naming why it dropped a row.

Defaults follow the paper's code (`bootstrap_instructions.py`): drop instructions of 3 words or fewer or
more than 150, instructions mentioning a blacklisted word (things a text model cannot see or make),
instructions starting with "Write a program", and instructions starting with punctuation or a non-ASCII
character. The reason strings are stable: they are stored in run rows and shown in the widget.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_BANNED_PREFIXES",
    "DEFAULT_BLACKLIST",
    "TextFilterConfig",
    "blacklisted_word",
    "text_filter_reason",
    "text_filter_reasons",
]

# The paper's list: tasks a language model cannot do in text.
DEFAULT_BLACKLIST: tuple[str, ...] = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
)
DEFAULT_BANNED_PREFIXES: tuple[str, ...] = ("Write a program",)


class TextFilterConfig(BaseModel):
    """Which cheap filters run, with what limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: int = Field(4, ge=0)
    """Drop instructions with fewer whitespace-separated words than this (the paper drops <= 3)."""
    max_words: int = Field(150, ge=1)
    """Drop instructions with more words than this (the paper's limit is 150)."""
    blacklist: tuple[str, ...] = DEFAULT_BLACKLIST
    """Whole words or phrases (case-insensitive) whose presence drops the instruction."""
    banned_prefixes: tuple[str, ...] = DEFAULT_BANNED_PREFIXES
    """Drop instructions starting with one of these (the paper drops 'Write a program')."""
    reject_punctuation_start: bool = True
    """Drop instructions whose first character is ASCII punctuation."""
    reject_non_ascii_start: bool = True
    """Drop instructions whose first character is not ASCII."""

    @field_validator("blacklist", "banned_prefixes")
    @classmethod
    def _clean_words(cls, words: Sequence[str]) -> tuple[str, ...]:
        cleaned = tuple(w.strip() for w in words if w and w.strip())
        return cleaned

    @model_validator(mode="after")
    def _limits(self) -> TextFilterConfig:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) must not exceed max_words ({self.max_words})")
        return self


@lru_cache(maxsize=64)
def _blacklist_re(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b({alternatives})\b", flags=re.IGNORECASE)


def blacklisted_word(text: str, blacklist: Sequence[str] = DEFAULT_BLACKLIST) -> str | None:
    """The first blacklisted word or phrase found in `text` (whole-word, case-insensitive), or None."""
    pattern = _blacklist_re(tuple(blacklist))
    if pattern is None:
        return None
    match = pattern.search(text)
    return match.group(1).lower() if match else None


def text_filter_reason(text: str, config: TextFilterConfig | None = None) -> str | None:
    """Why the cheap filters drop `text` (e.g. 'too_short', 'blacklist:image'), or None to keep it."""
    cfg = config or TextFilterConfig()
    stripped = text.strip()
    if not stripped:
        return "empty"
    n_words = len(stripped.split())
    if n_words < cfg.min_words:
        return "too_short"
    if n_words > cfg.max_words:
        return "too_long"
    word = blacklisted_word(stripped, cfg.blacklist)
    if word is not None:
        return f"blacklist:{word}"
    for prefix in cfg.banned_prefixes:
        if stripped.startswith(prefix):
            return f"banned_prefix:{prefix}"
    first = stripped[0]
    if cfg.reject_punctuation_start and first in string.punctuation:
        return "starts_with_punctuation"
    if cfg.reject_non_ascii_start and not first.isascii():
        return "starts_with_non_ascii"
    return None


def text_filter_reasons(texts: Sequence[str], config: TextFilterConfig | None = None) -> list[str | None]:
    """`text_filter_reason` for each text."""
    cfg = config or TextFilterConfig()
    return [text_filter_reason(t, cfg) for t in texts]
