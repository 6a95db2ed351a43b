"""The prefix cache through `load_backend` options: sized or turned off by the caller (a recipe's
`model: {options: ...}`), its stats read on the backend, bad values refused before anything loads."""

from __future__ import annotations

import pytest

from workbench.engine import GenerationRequest, SamplingParams, load_backend
from workbench.judge import likert_rubric

RUBRIC = likert_rubric(
    "helpful",
    "Judge how helpful the response is to the instruction.",
    ["Answers what was asked", "Is correct", "Is concise"],
    {1: "Off topic or wrong.", 2: "Mostly wrong.", 3: "Partly right.", 4: "Right, minor gaps.", 5: "Right and complete."},
)
FIRST = [("Name a primary colour.", "Blue."), ("What is 2+2?", "Four.")]
SECOND = [("Capital of France?", "Paris."), ("Spell cat.", "C-A-T.")]


def _requests(rows: list[tuple[str, str]]) -> list[GenerationRequest]:
    params = SamplingParams(max_tokens=4, temperature=0.8, seed=3, logprobs=2)
    return [GenerationRequest(prompt=RUBRIC.render(q, a) + "\nFeedback:", params=params.with_seed(i))
            for i, (q, a) in enumerate(rows)]


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("prefix_cache_tokens", "4096", "prefix_cache_tokens must be a whole number"),  # quoted in YAML
        ("prefix_cache_tokens", 2.5, "prefix_cache_tokens must be a whole number"),
        ("prefix_cache_tokens", 10, "prefix_cache_tokens must be 0 .no cache. or at least 32"),
        ("prefix_cache_tokens", -1, "prefix_cache_tokens must be 0 .no cache. or at least 32"),
        ("prefix_cache_entries", -1, "prefix_cache_entries must be 0 .no cache. or more, got -1"),
        ("prefix_cache_entries", True, "prefix_cache_entries must be a whole number"),
        ("compact_streams", "yes", "compact_streams must be true or false"),  # the other engine option
    ],
)
def test_a_bad_cache_option_is_refused_by_name_before_any_model_loads(tmp_path, option, value, message):
    # The file does not exist: the option is checked first, so the error is about it and no process starts.
    with pytest.raises(ValueError, match=message):
        load_backend(tmp_path / "missing.gguf", **{option: value})


@pytest.mark.model
def test_the_cache_is_reused_across_calls_and_changes_no_text():
    runs = {}
    for label, options in (("on", {}), ("off", {"prefix_cache_tokens": 0})):
        backend = load_backend("default", n_parallel=2, n_ctx_per_seq=512, n_threads=2, **options)
        try:
            first = backend.generate(_requests(FIRST))  # the rubric prefix: computed once, then kept
            s1 = backend.last_prefix_stats
            second = backend.generate(_requests(SECOND))  # the same rubric: from the cache, if on
            s2 = backend.last_prefix_stats
            runs[label] = (first + second, s1, s2, backend.prefix_stats, backend.runtime)
        finally:
            backend.close()
    on, off = runs["on"], runs["off"]
    assert on[0][0].prompt_tokens > 64  # a judge-like prefix, longer than two chunks
    for _gens, s1, _s2, _total, _runtime in (on, off):
        assert s1.groups == 1 and s1.cache_tokens == 0 and s1.copied_tokens >= 2 * 64  # shared within a call
    assert on[2].cache_tokens >= 64 and on[2].prefill_tokens < off[2].prefill_tokens
    assert off[2].cache_tokens == 0 and off[2].groups == 1  # off: still shared among the call's rows
    assert on[3].cache_tokens == on[2].cache_tokens and on[3].prompt_tokens == on[1].prompt_tokens + on[2].prompt_tokens
    assert on[4]["prefix_cache_tokens"] == 4096 and off[4]["prefix_cache_tokens"] == 0
    assert all(g.ok for g in on[0] + off[0])
    assert [g.text for g in on[0]] == [g.text for g in off[0]]
    assert [[t.logprob for t in g.logprobs] for g in on[0]] == [[t.logprob for t in g.logprobs] for g in off[0]]
