"""The collapse experiment on the shipped human corpus: replace collapses, accumulate does not."""

from __future__ import annotations

import threading

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from workbench.experiments import METRICS, CollapseConfig, collapse_corpus, contrast, run_collapse

SMALL = CollapseConfig(generations=4, seeds=3)


@pytest.fixture(scope="module")
def result():
    return run_collapse(SMALL)


def test_corpus_ships_with_its_license():
    corpus = collapse_corpus()
    assert corpus.height == 1187 and corpus["group"].n_unique() == 175 + 252
    assert set(corpus["field"].unique()) == {"instruction", "input", "output"}
    from importlib import resources

    folder = resources.files("workbench") / "data" / "collapse_corpus"
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "Self-Instruct" in (folder / "README.md").read_text()


def test_frames_have_every_arm_seed_generation_and_metric(result):
    per_seed = result.per_seed
    assert per_seed.columns == ["arm", "seed", "generation", "metric", "value"]
    assert per_seed.height == 3 * 3 * 5 * len(METRICS)
    assert set(per_seed["metric"]) == set(METRICS)
    assert result.summary.filter(pl.col("n_seeds") != 3).height == 0
    assert result.summary.height == 3 * 5 * len(METRICS)
    assert set(result.reference["metric"]) == {"distinct_1", "distinct_2", "compression_ratio"}
    assert result.corpus["test_words"] > 1000 and result.corpus["tail_words"] > 1000
    assert not result.cancelled


def test_generation_zero_is_the_same_model_in_every_arm(result):
    g0 = result.per_seed.filter(pl.col("generation") == 0).pivot(
        on="arm", index=["seed", "metric"], values="value"
    )
    assert np.allclose(g0["replace"], g0["accumulate"]) and np.allclose(g0["replace"], g0["mix"])


def _mean(result, arm, metric, generation):
    s = result.summary.filter(
        (pl.col("arm") == arm) & (pl.col("metric") == metric) & (pl.col("generation") == generation)
    )
    return s.row(0, named=True)


def test_replace_collapses_beyond_its_ci(result):
    last = SMALL.generations
    for metric, worse in (("perplexity", 1), ("tail_mass", -1), ("coverage_1", -1), ("distinct_1", -1)):
        start, end = _mean(result, "replace", metric, 0), _mean(result, "replace", metric, last)
        # the whole interval at the end is on the bad side of the start
        assert (end["ci_low"] > start["ci_high"]) if worse > 0 else (end["ci_high"] < start["ci_low"]), metric
    assert (
        _mean(result, "replace", "perplexity", last)["mean"]
        > 2 * _mean(result, "replace", "perplexity", 0)["mean"]
    )
    assert (
        _mean(result, "replace", "compression_ratio", last)["mean"]
        > _mean(result, "replace", "compression_ratio", 0)["mean"]
    )


def test_accumulate_does_not_collapse_and_beats_replace(result):
    acc = result.per_seed.filter(pl.col("arm") == "accumulate")
    # accumulating never forgets a word: coverage of held-out words cannot fall below generation 0
    cov = acc.filter(pl.col("metric") == "coverage_1").sort("seed", "generation")
    assert (cov.group_by("seed").agg(ok=(pl.col("value").diff().drop_nulls() >= 0).all())["ok"]).all()
    diff = contrast(result.per_seed, "replace", "accumulate")
    by = {r["metric"]: r for r in diff.iter_rows(named=True)}
    assert (
        by["perplexity"]["ci_low"] > 0 and by["tail_mass"]["ci_high"] < 0 and by["coverage_2"]["ci_high"] < 0
    )
    assert by["perplexity"]["excludes_zero"] and by["tail_mass"]["excludes_zero"]
    # mixing in 10% fresh human data sits between the two
    ppl = {
        arm: _mean(result, arm, "perplexity", SMALL.generations)["mean"]
        for arm in ("replace", "mix", "accumulate")
    }
    assert ppl["accumulate"] < ppl["mix"] < ppl["replace"]


def test_runs_are_reproducible():
    cfg = CollapseConfig(generations=1, seeds=1, arms=("replace",))
    a, b = run_collapse(cfg), run_collapse(cfg)
    assert a.per_seed.equals(b.per_seed)


def test_a_user_corpus_and_progress():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, size=8, p=np.arange(300, 0, -1) / 45150)) for _ in range(400)]
    seen = []
    out = run_collapse(
        CollapseConfig(generations=2, seeds=2, arms=("replace", "accumulate")),
        pl.DataFrame({"text": texts}),
        on_progress=seen.append,
    )
    assert [p.rows_done for p in seen] == list(range(1, 2 * 2 * 3 + 1)) and seen[-1].rows_total == 12
    assert out.corpus["train_sentences"] == 320 and set(out.per_seed["arm"]) == {"replace", "accumulate"}


def test_cancel_returns_what_was_measured():
    cancel = threading.Event()

    def stop_after_three(p):
        if p.rows_done == 3:
            cancel.set()

    out = run_collapse(CollapseConfig(generations=5, seeds=2), on_progress=stop_after_three, cancel=cancel)
    assert out.cancelled
    assert out.per_seed.select("arm", "seed", "generation").unique().height == 3


def test_bad_input_says_what_to_fix():
    with pytest.raises(ValidationError, match="extra"):
        CollapseConfig(generation=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="replace"):
        CollapseConfig(arms=("refit",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one arm"):
        run_collapse(CollapseConfig(arms=()))
    with pytest.raises(ValueError, match="'text' column"):
        run_collapse(CollapseConfig(generations=1, seeds=1), pl.DataFrame({"body": ["a b c", "d e f"]}))
    with pytest.raises(ValueError, match="at least 2 groups"):
        run_collapse(CollapseConfig(generations=1, seeds=1), pl.DataFrame({"text": ["only one text here"]}))


def test_sample_metrics_match_the_workbench_metrics():
    """distinct-n as the experiment counts it equals `workbench.metrics.distinct_n` on the same text."""
    from workbench.experiments.collapse import _sample_metrics
    from workbench.experiments.ngram import Vocabulary
    from workbench.metrics import distinct_n

    texts = collapse_corpus()["text"].head(200).to_list()
    lines = [ln for t in texts for ln in t.split("\n") if any(c.isalnum() for c in ln)]
    vocab = Vocabulary.from_texts(lines)
    ours = _sample_metrics(vocab, vocab.encode(lines), tokens=10**9)
    theirs = distinct_n(pl.DataFrame({"text": lines}), orders=(1, 2))
    assert ours["distinct_1"] == pytest.approx(theirs["distinct"][0])
    assert ours["distinct_2"] == pytest.approx(theirs["distinct"][1])
