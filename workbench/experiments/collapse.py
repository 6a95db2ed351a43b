"""Model collapse by refitting: an n-gram model is fitted on human text, samples a corpus, and the
next generation's model is fitted on that corpus; repeat.

Three arms decide what each generation is fitted on (Shumailov et al. 2024; Gerstgrasser et al. 2024):

* `replace`    — only the previous generation's samples;
* `accumulate` — the human text plus every generation's samples so far;
* `mix`        — a fixed fraction of fresh human sentences, the rest the previous generation's samples
                 (same size as `replace`).

Every generation's model is measured on held-out human text (perplexity, n-gram coverage), against
the human tail (how much of the rare words' mass it keeps), and through a fixed-size sample it writes
(distinct-n, gzip compression ratio). `run_collapse` repeats this for several seeds and returns polars
frames; `workbench.experiments.report` turns them into CIs, contrasts and a chart.

```python
from workbench.experiments import CollapseConfig, run_collapse, collapse_chart
result = run_collapse(CollapseConfig(generations=10, seeds=5))
collapse_chart(result.summary)
```
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..engine.results import Progress
from .ngram import Corpus, NGramModel, Vocabulary
from .report import summarize

__all__ = [
    "ARMS",
    "METRICS",
    "Arm",
    "CollapseConfig",
    "CollapseResult",
    "collapse_corpus",
    "run_collapse",
]

Arm = Literal["replace", "accumulate", "mix"]
ARMS: tuple[Arm, ...] = ("replace", "accumulate", "mix")
METRICS: dict[str, str] = {
    "perplexity": "perplexity of held-out human text (lower: the model still knows human text)",
    "coverage_1": "share of held-out word tokens the model was fitted on at least once",
    "coverage_2": "share of held-out bigram tokens the model was fitted on at least once",
    "tail_mass": "share of the human rare words' probability mass the model still gives them",
    "distinct_1": "unique words / words in a fixed-size sample the model writes",
    "distinct_2": "unique bigrams / bigrams in that sample",
    "compression_ratio": "raw bytes / gzip bytes of that sample (higher: more repetitive)",
}
"""Every metric `run_collapse` reports, with what it measures."""
SAMPLE_METRICS = ("distinct_1", "distinct_2", "compression_ratio")


class CollapseConfig(BaseModel):
    """One collapse experiment: the model, the loop, the arms and the measurements."""

    model_config = ConfigDict(extra="forbid")

    arms: tuple[Arm, ...] = ARMS
    """Which arms to run (any of 'replace', 'accumulate', 'mix')."""
    generations: int = Field(10, ge=1, le=200)
    """Refits after generation 0 (the model fitted on human text)."""
    seeds: int = Field(5, ge=1, le=100)
    """Independent repetitions (seeds 0..seeds-1); CIs are over seeds."""
    order: int = Field(2, ge=1, le=4)
    """n of the n-gram model (2: bigrams backing off to words)."""
    add_k: float = Field(0.01, gt=0.0, le=10.0)
    """Add-k smoothing of the unigram. Small on purpose: a large k makes every generation sample
    unseen words uniformly, which adds noise instead of losing the tail."""
    backoff: float = Field(0.4, gt=0.0, lt=1.0)
    """Weight of the lower order in the interpolation (Jelinek-Mercer)."""
    mix_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    """mix arm: share of each generation's training sentences drawn fresh from the human text
    (Shumailov et al. keep 10% of the original data)."""
    sample_size: int | None = Field(None, ge=10)
    """Sentences sampled per generation (None: as many as the human training text has)."""
    max_words: int = Field(200, ge=5, le=5000)
    """Longest sampled sentence; longer ones are cut."""
    held_out_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    """Share of groups (tasks) held out as the human test text, never fitted on."""
    split_seed: int = Field(0, ge=0)
    """Seed of the held-out split (fixed across seeds, so generation 0 is the same model in every run)."""
    rare_max_count: int = Field(2, ge=1)
    """A word is in the human tail when the human training text has it at most this many times."""
    metric_tokens: int = Field(5000, ge=100)
    """Size, in words, of the sample distinct-n and the compression ratio are measured on."""
    split_lines: bool = True
    """Treat every line of a text as its own sentence."""


@dataclass
class CollapseResult:
    """What `run_collapse` measured. `per_seed`: arm, seed, generation, metric, value;
    `summary`: arm, generation, metric, mean, ci_low, ci_high, n_seeds; `reference`: the same
    sample metrics on the held-out human text (metric, value); `corpus`: sizes of the split."""

    config: CollapseConfig
    per_seed: pl.DataFrame
    summary: pl.DataFrame
    reference: pl.DataFrame
    corpus: dict[str, int]
    elapsed_s: float
    cancelled: bool = False


def collapse_corpus() -> pl.DataFrame:
    """The shipped human corpus (Self-Instruct seed and user-oriented tasks, Apache-2.0; see
    workbench/data/collapse_corpus/README.md): one row per text, columns `group, field, text`."""
    path = resources.files("workbench") / "data" / "collapse_corpus" / "self_instruct_human_text.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return pl.DataFrame(
        [{"group": r["task_id"], "field": r["field"], "text": r["text"]} for r in rows],
        schema={"group": pl.Utf8, "field": pl.Utf8, "text": pl.Utf8},
    )


def _sentences(corpus: pl.DataFrame, split_lines: bool) -> pl.DataFrame:
    if "text" not in corpus.columns:
        raise ValueError(f"the corpus needs a 'text' column (it has {corpus.columns})")
    frame = corpus.select(
        pl.col("group").cast(pl.Utf8)
        if "group" in corpus.columns
        else pl.int_range(pl.len()).cast(pl.Utf8).alias("group"),
        pl.col("text").cast(pl.Utf8).fill_null(""),
    )
    if split_lines:
        frame = frame.with_columns(pl.col("text").str.split("\n")).explode("text")
    return frame.filter(pl.col("text").str.contains(r"\w"))


@dataclass(frozen=True)
class _Human:
    vocab: Vocabulary
    train: Corpus
    test: Corpus
    tail: np.ndarray  # token ids of the human tail
    tail_share: np.ndarray  # their probabilities in the human training text
    test_bigrams: np.ndarray
    reference: dict[str, float]


def _split(corpus: pl.DataFrame, cfg: CollapseConfig) -> _Human:
    sents = _sentences(corpus, cfg.split_lines)
    groups = sents["group"].unique().sort().to_list()
    if len(groups) < 2:
        raise ValueError("the corpus needs at least 2 groups (or 2 texts) to hold some out")
    rng = np.random.default_rng(cfg.split_seed)
    n_held = min(len(groups) - 1, max(1, round(cfg.held_out_fraction * len(groups))))
    held = set(rng.choice(np.array(groups, dtype=object), size=n_held, replace=False).tolist())
    is_held = sents["group"].is_in(list(held))
    train_texts, test_texts = (
        sents.filter(~is_held)["text"].to_list(),
        sents.filter(is_held)["text"].to_list(),
    )
    vocab = Vocabulary.from_texts(sents["text"].to_list())
    train, test = vocab.encode(train_texts), vocab.encode(test_texts)
    counts = np.bincount(train.tokens, minlength=vocab.size)
    tail = np.flatnonzero((counts >= 1) & (counts <= cfg.rare_max_count))
    if tail.size == 0:
        raise ValueError(
            f"no word occurs 1..{cfg.rare_max_count} times in the training text: raise rare_max_count"
        )
    ctx, nxt = test.padded_ngrams(2, vocab.size)
    return _Human(
        vocab=vocab,
        train=train,
        test=test,
        tail=tail,
        tail_share=counts[tail] / counts.sum(),
        test_bigrams=ctx * vocab.size + nxt,
        reference=_sample_metrics(vocab, test, cfg.metric_tokens),
    )


def _first_tokens(corpus: Corpus, tokens: int) -> Corpus:
    """The leading sentences of `corpus` holding at least `tokens` words (all of it if shorter)."""
    n = int(np.searchsorted(corpus.offsets, tokens)) if corpus.n_tokens > tokens else corpus.n_sentences
    return corpus.take(np.arange(min(n, corpus.n_sentences)))


def _sample_metrics(vocab: Vocabulary, sample: Corpus, tokens: int) -> dict[str, float]:
    sub = _first_tokens(sample, tokens)
    out = {"distinct_1": len(np.unique(sub.tokens)) / max(sub.n_tokens, 1)}
    ctx, nxt = sub.padded_ngrams(2, vocab.size)
    inside = (ctx != 0) & (nxt != 1)  # bigrams within a sentence, as workbench.metrics.distinct_n counts
    codes = (ctx * vocab.size + nxt)[inside]
    out["distinct_2"] = len(np.unique(codes)) / max(codes.shape[0], 1)
    raw = "\n".join(vocab.decode(sub)).encode("utf-8")
    out["compression_ratio"] = len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0)) if raw else 1.0
    return out


def _model_metrics(model: NGramModel, data: Corpus, human: _Human) -> dict[str, float]:
    seen_words = np.bincount(data.tokens, minlength=human.vocab.size) > 0
    ctx, nxt = data.padded_ngrams(2, human.vocab.size)
    seen_bigrams = np.isin(human.test_bigrams, ctx * human.vocab.size + nxt)
    return {
        "perplexity": model.perplexity(human.test),
        "coverage_1": float(seen_words[human.test.tokens].mean()),
        "coverage_2": float(seen_bigrams.mean()),
        # a rare word that became common is no longer tail: count at most its human share
        "tail_mass": float(
            np.minimum(model.unigram[human.tail], human.tail_share).sum() / human.tail_share.sum()
        ),
    }


def run_collapse(
    config: CollapseConfig | None = None,
    corpus: pl.DataFrame | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> CollapseResult:
    """Run every arm for every seed; `corpus` is a frame with `text` (and optionally `group`, the unit
    of the held-out split), by default `collapse_corpus()`. `cancel.set()` stops after the current
    generation and returns what was measured so far (`cancelled=True`)."""
    cfg = config or CollapseConfig()
    if not cfg.arms:
        raise ValueError("choose at least one arm: 'replace', 'accumulate' or 'mix'")
    human = _split(collapse_corpus() if corpus is None else corpus, cfg)
    n = cfg.sample_size or human.train.n_sentences
    n_human_mix = max(1, round(cfg.mix_fraction * n))
    total = len(cfg.arms) * cfg.seeds * (cfg.generations + 1)
    rows: list[dict[str, object]] = []
    done, sampled, started, stopped = 0, 0, time.monotonic(), False

    def fit(data: Corpus) -> NGramModel:
        return NGramModel(human.vocab, data, order=cfg.order, add_k=cfg.add_k, backoff=cfg.backoff)

    for seed in range(cfg.seeds):
        for arm in cfg.arms:
            rng = np.random.default_rng(seed)  # the same draws in every arm: generation 0 is shared
            human_rng = np.random.default_rng([seed, 1])
            data, pool = human.train, [human.train]
            for gen in range(cfg.generations + 1):
                if cancel is not None and cancel.is_set():
                    stopped = True
                    break
                model = fit(data)
                sample = model.sample(n, rng, max_words=cfg.max_words)
                measured = _model_metrics(model, data, human) | _sample_metrics(
                    human.vocab, sample, cfg.metric_tokens
                )
                rows += [
                    {"arm": arm, "seed": seed, "generation": gen, "metric": k, "value": float(v)}
                    for k, v in measured.items()
                ]
                if arm == "replace":
                    data = sample
                elif arm == "accumulate":
                    pool.append(sample)
                    data = Corpus.concat(pool)
                else:
                    fresh = human.train.take(
                        human_rng.choice(human.train.n_sentences, n_human_mix, replace=True)
                    )
                    data = Corpus.concat([fresh, sample.take(np.arange(n - n_human_mix))])
                done, sampled = done + 1, sampled + sample.n_tokens
                if on_progress is not None:
                    on_progress(Progress(done, total, sampled, time.monotonic() - started))
            if stopped:
                break
        if stopped:
            break
    per_seed = pl.DataFrame(
        rows,
        schema={
            "arm": pl.Utf8,
            "seed": pl.Int64,
            "generation": pl.Int64,
            "metric": pl.Utf8,
            "value": pl.Float64,
        },
    )
    reference = pl.DataFrame(
        {"metric": list(human.reference), "value": list(human.reference.values())},
        schema={"metric": pl.Utf8, "value": pl.Float64},
    )
    sizes = {
        "vocabulary": len(human.vocab.words),
        "train_sentences": human.train.n_sentences,
        "train_words": human.train.n_tokens,
        "test_sentences": human.test.n_sentences,
        "test_words": human.test.n_tokens,
        "tail_words": int(human.tail.size),
        "sample_sentences": n,
    }
    return CollapseResult(
        cfg, per_seed, summarize(per_seed), reference, sizes, time.monotonic() - started, stopped
    )
