"""In-context drift: the self-instruct loop fed its own output, the weaker cousin of collapse.

No weights change here. A model writes instructions from a few-shot list of examples, and the next
generation's examples are drawn from what the previous generation wrote:

* `replace` — every example comes from the previous generation (generation 1 from the human pool);
* `mix`     — `human_examples` of the examples stay human-written in every generation.

Each (arm, seed, generation) set of instructions is measured with `workbench.metrics.compare_sets`
(distinct-n, self-BLEU, nearest-neighbour ROUGE-L, mean words) plus its gzip compression ratio, and
the per-seed values go through the same t-intervals and paired contrasts as `run_collapse`, so the
two experiments can be read side by side. Refitting (`run_collapse`) is what the papers mean by
collapse; this loop only shows whether copying one's own phrasing in context narrows a set.

```python
from workbench import load_backend
from workbench.experiments import DriftConfig, contrast, run_drift
result = run_drift(load_backend(), DriftConfig(seeds=4))
contrast(result.per_seed, "replace", "mix")
```
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ..engine.params import GenerationRequest, SamplingParams
from ..engine.protocol import Backend
from ..engine.results import Progress
from ..metrics.compare import compare_sets
from .report import summarize

__all__ = ["DRIFT_ARMS", "DRIFT_METRICS", "DriftArm", "DriftConfig", "DriftResult", "run_drift"]

DriftArm = Literal["replace", "mix"]
DRIFT_ARMS: tuple[DriftArm, ...] = ("replace", "mix")
DRIFT_METRICS: dict[str, str] = {
    "distinct_2": "unique word bigrams / word bigrams in the generation's instructions",
    "self_bleu": "mean BLEU of each instruction against the others (higher: more alike)",
    "nn_rouge_l": "mean ROUGE-L of each instruction to its nearest other one (higher: more alike)",
    "compression_ratio": "raw bytes / gzip bytes of the generation's instructions (higher: more repetitive)",
    "mean_words": "mean words per instruction",
}
"""Every metric `run_drift` reports per (arm, seed, generation), with what it measures."""


class DriftConfig(BaseModel):
    """One in-context drift experiment: the loop, the arms, the sampling."""

    model_config = ConfigDict(extra="forbid")

    arms: tuple[DriftArm, ...] = DRIFT_ARMS
    """Which arms to run ('replace', 'mix')."""
    generations: int = Field(3, ge=1, le=50)
    """Generations after the human pool (generation 0 is a same-size sample of the human pool)."""
    per_generation: int = Field(24, ge=4, le=10_000)
    """Instructions each generation asks for, per arm and seed (one prompt each)."""
    seeds: int = Field(4, ge=1, le=100)
    """Independent repetitions (seeds 0..seeds-1); CIs are over seeds."""
    examples: int = Field(4, ge=1, le=16)
    """Examples in each few-shot prompt."""
    human_examples: int = Field(2, ge=1)
    """mix arm: how many of the `examples` stay human-written every generation."""
    min_words: int = Field(3, ge=1)
    """Shorter outputs are dropped (a base model sometimes stops at once); the pool keeps the rest."""
    max_tokens: int = Field(32, ge=4, le=512)
    """Longest instruction, in tokens (generation also stops at a newline)."""
    temperature: float = Field(0.9, ge=0.0, le=5.0)
    """Sampling temperature of every request."""
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    """Nucleus sampling share of every request."""
    header: str = "Here is a list of varied tasks people asked an assistant to do:"
    """The line above the numbered examples (a base model continues the list)."""


@dataclass
class DriftResult:
    """What `run_drift` measured: long per-seed values, their summary, and every instruction written."""

    config: DriftConfig
    per_seed: pl.DataFrame
    """arm, seed, generation, metric, value (generation 0: the human pool, same size)."""
    summary: pl.DataFrame
    """arm, generation, metric, mean, ci_low, ci_high, n_seeds (`summarize`)."""
    texts: pl.DataFrame
    """arm, seed, generation, index, text, kept: every output, kept or dropped as too short."""
    elapsed_s: float
    tokens: int
    cancelled: bool = False


def _prompt(header: str, examples: Sequence[str]) -> str:
    lines = [f"{i + 1}. {e}" for i, e in enumerate(examples)]
    return header + "\n" + "\n".join(lines) + f"\n{len(examples) + 1}."


def _clean(text: str, min_words: int) -> str | None:
    text = text.strip().strip('"').strip()
    return text if len(text.split()) >= min_words else None


def _examples(
    rng: np.random.Generator, arm: str, gen: int, pool: list[str], human: list[str], cfg: DriftConfig
) -> list[str]:
    if arm == "mix" and gen > 1:
        h = min(cfg.human_examples, cfg.examples)
        picked = list(rng.choice(human, size=h, replace=False))
        return picked + list(rng.choice(pool, size=min(cfg.examples - h, len(pool)), replace=False))
    return list(rng.choice(pool, size=min(cfg.examples, len(pool)), replace=False))


def _measure(texts: list[str], seed: int) -> dict[str, float]:
    frame = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
    table = compare_sets({"s": frame}, n_boot=10, seed=seed, sample=None)
    out = {m: float(v) for m, v in zip(table["metric"], table["value"], strict=True) if m in DRIFT_METRICS}
    raw = "\n".join(texts).encode()
    out["compression_ratio"] = len(raw) / len(gzip.compress(raw, mtime=0)) if raw else float("nan")
    return out


def run_drift(
    backend: Backend,
    config: DriftConfig | None = None,
    human: Sequence[str] | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> DriftResult:
    """Run every arm for every seed on `backend`; `human` is the human pool (default: the shipped
    seed instructions). One `generate` call per generation carries every arm and seed, so the
    engine batches them. Stopping keeps the generations that finished."""
    from ..generate.seeds import default_seeds

    cfg = config or DriftConfig()
    pool0 = list(human) if human is not None else default_seeds()["instruction"].to_list()
    if len(pool0) < cfg.examples or len(pool0) < 2:
        raise ValueError(
            f"the human pool has {len(pool0)} instructions; it needs at least examples={cfg.examples}"
        )
    if cfg.human_examples > cfg.examples:
        raise ValueError(
            f"human_examples={cfg.human_examples} is more than examples={cfg.examples}: lower it"
        )
    started, tokens = time.monotonic(), 0
    keys: list[tuple[str, int]] = [(a, s) for a in cfg.arms for s in range(cfg.seeds)]
    pools = {k: list(pool0) for k in keys}
    values: list[dict[str, object]] = []
    texts: list[dict[str, object]] = []
    size = min(cfg.per_generation, len(pool0))
    for seed in range(cfg.seeds):  # generation 0: the human pool, at the size later sets will have
        human_set = list(np.random.default_rng(seed).choice(pool0, size=size, replace=False))
        for arm0 in cfg.arms:
            values += [
                {"arm": arm0, "seed": seed, "generation": 0, "metric": m, "value": v}
                for m, v in _measure(human_set, seed).items()
            ]
    cancelled = False
    for gen in range(1, cfg.generations + 1):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        requests, meta = [], []
        for arm, seed in keys:
            rng = np.random.default_rng([seed, gen])
            for j in range(cfg.per_generation):
                params = SamplingParams(
                    max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, stop=("\n",),
                    seed=(seed * 1_000_003 + gen * 10_007 + j) % 2**32,
                )  # fmt: skip
                prompt = _prompt(cfg.header, _examples(rng, arm, gen, pools[(arm, seed)], pool0, cfg))
                requests.append(GenerationRequest(prompt=prompt, params=params))
                meta.append((arm, seed, j))
        outs = backend.generate(requests, cancel=cancel)
        if any(g.finish_reason == "cancelled" for g in outs):
            cancelled = True
            break
        new: dict[tuple[str, int], list[str]] = {k: [] for k in keys}
        for (arm, seed, j), g in zip(meta, outs, strict=True):
            tokens += g.completion_tokens
            text = _clean(g.text, cfg.min_words) if g.ok else None
            texts.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "generation": gen,
                    "index": j,
                    "text": g.text,
                    "kept": text is not None,
                }
            )
            if text is not None:
                new[(arm, seed)].append(text)
        for (arm, seed), kept in new.items():
            # with fewer than 2 kept rows the arm keeps its previous pool, and the gap shows as no value
            if len(kept) >= 2:
                pools[(arm, seed)] = kept
                values += [
                    {"arm": arm, "seed": seed, "generation": gen, "metric": m, "value": v}
                    for m, v in _measure(kept, seed).items()
                ]
        if on_progress is not None:
            on_progress(Progress(gen, cfg.generations, tokens, time.monotonic() - started))
    per_seed = pl.DataFrame(
        values,
        schema={
            "arm": pl.Utf8,
            "seed": pl.Int64,
            "generation": pl.Int64,
            "metric": pl.Utf8,
            "value": pl.Float64,
        },
    )
    text_schema = {
        "arm": pl.Utf8,
        "seed": pl.Int64,
        "generation": pl.Int64,
        "index": pl.Int64,
        "text": pl.Utf8,
        "kept": pl.Boolean,
    }
    return DriftResult(
        config=cfg, per_seed=per_seed, summary=summarize(per_seed), texts=pl.DataFrame(texts, schema=text_schema),
        elapsed_s=time.monotonic() - started, tokens=tokens, cancelled=cancelled,
    )  # fmt: skip
