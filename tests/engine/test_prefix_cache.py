"""Shared prompt prefixes: grouping and the LRU cache (pure), then reuse on the real default model."""

from __future__ import annotations

import ctypes

import pytest

from workbench.engine import GenerationRequest, SamplingParams
from workbench.engine.prefix_cache import CHUNK, PrefixCache, SeqState, plan_groups
from workbench.judge import likert_rubric


def _state(tokens) -> SeqState:
    return SeqState(tuple(tokens), (ctypes.c_uint8 * 4)())


def test_groups_are_whole_chunks_and_leave_the_last_token_to_the_row():
    head = list(range(1000, 1000 + 2 * CHUNK + 5))
    prompts = [[*head, 1, 2], [*head, 3], list(range(50)), head[: CHUNK + 3] + [9] * 40]
    plan = plan_groups(prompts)
    # Rows 0, 1 and 3 share one chunk, rows 0 and 1 two: (3-1) x 32 saved tokens ties with (2-1) x 64,
    # and ties split (a longer prefix serves later calls better).
    assert plan[0] == plan[1] == tuple(head[: 2 * CHUNK]) and 3 not in plan and 2 not in plan
    assert plan_groups([head[: CHUNK + 1], head[: CHUNK + 1]]) == {0: tuple(head[:CHUNK]), 1: tuple(head[:CHUNK])}
    assert plan_groups([head[:CHUNK], head[:CHUNK]]) == {}  # the row's last token needs its own decode


def test_cache_is_lru_within_its_bounds_and_keeps_the_longest_prefix():
    cache = PrefixCache(max_tokens=4 * CHUNK, max_entries=2)
    a, b, c = ([k] * (2 * CHUNK) for k in (1, 2, 3))
    cache.store(_state(a))
    cache.store(_state(b))
    assert cache.lookup(a[:CHUNK] + [7] * 5)[1] == CHUNK  # a becomes the most recent
    cache.store(_state(c))  # over both bounds: b (least recently used) goes
    assert cache.lookup(b)[0] is None and cache.lookup(c)[1] == 2 * CHUNK and len(cache) == 2
    cache.store(_state(c + [4] * CHUNK))  # extends c: replaces it
    assert len(cache) == 1 and cache.tokens == 3 * CHUNK
    cache.store(_state(c))  # served by the longer one already
    assert len(cache) == 1
    assert not PrefixCache(max_tokens=0).enabled
    with pytest.raises(ValueError, match="must be >= 0"):
        PrefixCache(max_tokens=-1)


RUBRIC = likert_rubric(
    "helpful",
    "Judge how helpful the response is to the instruction.",
    ["Answers what was asked", "Is correct", "Is concise"],
    {1: "Off topic or wrong.", 2: "Mostly wrong.", 3: "Partly right.", 4: "Right, minor gaps.", 5: "Right and complete."},
)
ROWS = [("Name a primary colour.", "Blue."), ("What is 2+2?", "Four."), ("Say hi.", "Hello!"),
        ("Capital of France?", "Paris."), ("A word for happy?", "Glad."), ("Spell cat.", "C-A-T.")]


def _requests(rows, **params):
    base = {"max_tokens": 10, "temperature": 0.8, "seed": 3, "logprobs": 2} | params
    return [GenerationRequest(prompt=RUBRIC.render(q, a) + "\nFeedback:", params=SamplingParams(**base).with_seed(i))
            for i, (q, a) in enumerate(rows)]


@pytest.fixture(scope="module")
def engine(default_model_path):
    from workbench.engine.llama import InProcessLlamaBackend

    backend = InProcessLlamaBackend(default_model_path, n_parallel=4, n_ctx_per_seq=512, n_threads=2)
    yield backend
    backend.close()


@pytest.mark.model
def test_texts_are_identical_with_and_without_the_cache(engine):
    engine.prefix_cache.clear()
    first, second = _requests(ROWS[:4]), _requests(ROWS[2:])
    a1 = engine.generate(first)  # no cache yet: the rubric prefix is computed once, alone
    s1 = engine.last_prefix_stats
    a2 = engine.generate(second)  # the second batch of the run: the rubric comes from the cache
    s2 = engine.last_prefix_stats
    engine.prefix_cache.clear()
    b2 = engine.generate(second)  # the same batch without the cache
    s3 = engine.last_prefix_stats
    assert s1.groups == 1 and s1.cache_tokens == 0 and s1.copied_tokens >= 4 * 64
    assert s2.cache_tokens >= 64 and s2.reused_tokens > 0 and s2.prefill_tokens < s3.prefill_tokens
    assert s3.cache_tokens == 0 and s3.prefill_tokens - s2.prefill_tokens == s2.cache_tokens
    assert [g.text for g in a2] == [g.text for g in b2]
    assert [[t.logprob for t in g.logprobs] for g in a2] == [[t.logprob for t in g.logprobs] for g in b2]
    assert all(g.ok for g in a1 + a2) and sum(g.completion_tokens for g in a1 + a2) > 0
    assert engine.prefix_stats.cache_tokens >= s2.cache_tokens


@pytest.mark.model
def test_a_longer_cached_prefix_cut_at_a_chunk_gives_the_same_bits(engine):
    """The cells of a prefix's first k chunks do not depend on what follows: a cached longer prefix,
    cut, equals the shorter one computed from scratch, byte for byte."""
    from workbench.engine.prefix_cache import PrefixStats, canonical_prefix

    tokens = engine.model.tokenize(RUBRIC.render("q", "a"), add_bos=True)
    assert len(tokens) >= 3 * CHUNK
    long_, short = tuple(tokens[: 3 * CHUNK]), tuple(tokens[: 2 * CHUNK])
    engine.prefix_cache.clear()
    fresh = canonical_prefix(engine, short, PrefixStats())
    engine.prefix_cache.clear()
    canonical_prefix(engine, long_, PrefixStats())
    stats = PrefixStats()
    cut = canonical_prefix(engine, short, stats)
    assert stats.cache_tokens == 2 * CHUNK and stats.prefill_tokens == 0
    assert fresh is not None and cut is not None and bytes(fresh.data) == bytes(cut.data)


@pytest.mark.model
def test_one_sequence_never_shares(default_model_path):
    """n_parallel=1 keeps its promise: a row's text does not depend on the other requests."""
    from workbench.engine.llama import InProcessLlamaBackend

    solo = InProcessLlamaBackend(default_model_path, n_parallel=1, n_ctx_per_seq=512, n_threads=2)
    try:
        reqs = _requests(ROWS[:2], max_tokens=3)
        solo.generate(reqs)
        assert solo.last_prefix_stats.groups == 0 and solo.last_prefix_stats.reused_tokens == 0
    finally:
        solo.close()
