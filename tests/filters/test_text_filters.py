from __future__ import annotations

import pytest
from pydantic import ValidationError

from workbench.filters import DEFAULT_BLACKLIST, TextFilterConfig, blacklisted_word, text_filter_reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Write a poem", "too_short"),
        ("Describe the image in one sentence please.", "blacklist:image"),
        ("Please go to the market and list prices.", "blacklist:go to"),
        ("Write a program that sorts a list of numbers.", "banned_prefix:Write a program"),
        ("- List three fruits that are red.", "starts_with_punctuation"),
        ("Écris un poème sur la mer.", "starts_with_non_ascii"),
        ("Give three tips for staying focused.", None),
        ("Summarise the imagery in this poem for me.", None),  # whole words only: 'imagery' is fine
    ],
)
def test_reasons(text, reason):
    assert text_filter_reason(text) == reason


def test_paper_blacklist_and_editable_limits():
    assert {"image", "graph", "map", "draw", "plot", "go to", "video", "audio", "music", "flowchart"} <= set(
        DEFAULT_BLACKLIST
    )
    long_text = " ".join(["word"] * 151)
    assert text_filter_reason(long_text) == "too_long"
    cfg = TextFilterConfig(min_words=2, max_words=200, blacklist=("poem",), banned_prefixes=())
    assert text_filter_reason(long_text, cfg) is None
    assert text_filter_reason("Write a poem", cfg) == "blacklist:poem"
    assert blacklisted_word("Draw a MAP of Europe") in ("map", "draw")
    with pytest.raises(ValidationError, match="min_words"):
        TextFilterConfig(min_words=10, max_words=5)
    with pytest.raises(ValidationError):
        TextFilterConfig(unknown=1)
