"""Preview a generating step on a handful of rows, in seconds, and estimate the full run's time from it.

A preview runs the real step (same prompts, parameters and sub-steps) on a few inputs in a throwaway run
directory — the user's run is never written — through a `RecordingBackend`, then prices the full run with
`estimate.substeps_from_preview` and this machine's measured rates (`estimate.measure_rates`, measured
once per backend and reused). Each function returns the preview's rows, to check the prompt and the
parameters by eye, and the `Estimate` of the full run with its sub-steps (instances, judge samples).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..engine import Backend
from ..generate.completions import CompletionConfig, run_completions
from ..generate.conversation import ConversationConfig, extend_conversations
from ..generate.evolve import EvolveConfig, run_evolution
from ..generate.magpie import MagpieConfig, magpie_prefix, run_magpie
from ..generate.selfinstruct import SelfInstructConfig, build_instruction_prompt, run_self_instruct
from ..runs import RunStore
from .estimate import Estimate, Rates, RecordingBackend, measure_rates, substeps_from_preview

__all__ = [
    "Preview",
    "preview_completions",
    "preview_conversation",
    "preview_evolve",
    "preview_judge",
    "preview_magpie",
    "preview_pairwise_judge",
    "preview_self_instruct",
    "rates_for",
]

_RATES: weakref.WeakKeyDictionary[Any, Rates] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Preview:
    """A preview's rows, the full run's estimate, and what the preview itself took."""

    rows: pl.DataFrame
    estimate: Estimate
    seconds: float

    def describe(self) -> str:
        return f"preview: {self.rows.height} rows in {self.seconds:.1f} s · {self.estimate.describe()}"


def rates_for(backend: Backend, prompts: list[str]) -> Rates:
    """This machine's rates on `backend`, measured on first use and kept for the backend's lifetime."""
    try:
        return _RATES[backend]
    except (KeyError, TypeError):
        pass
    rates = measure_rates(backend, prompts)
    with contextlib.suppress(TypeError):  # a backend that cannot be weakly referenced is measured each time
        _RATES[backend] = rates
    return rates


def _recorded(
    backend: Backend, run: Callable[[Backend, RunStore], pl.DataFrame]
) -> tuple[RecordingBackend, pl.DataFrame, float]:
    """Run `run(recording backend, scratch store)` in a throwaway run directory: what it sent, made and took."""
    rec = RecordingBackend(backend)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="workbench-preview-") as tmp:
        rows = run(rec, RunStore.create(tmp, "preview"))
    return rec, rows, time.perf_counter() - t0


def preview_self_instruct(
    backend: Backend,
    config: SelfInstructConfig,
    seeds: pl.DataFrame,
    *,
    prompts: int = 4,
    rates: Rates | None = None,
) -> Preview:
    """One round of `prompts` generation prompts (and their instances, if the config asks for them).

    The full run's instruction prompts are the rounds it needs at the preview's acceptance per prompt
    (all `config.rounds` if the preview kept none), and its instance requests scale with the
    instructions it keeps."""
    small = config.model_copy(update={"rounds": 1, "prompts_per_round": max(1, min(prompts, config.prompts_per_round)),
                                      "num_instructions": 10**6})  # fmt: skip
    rec, rows, seconds = _recorded(backend, lambda b, store: run_self_instruct(b, store, small, seeds=seeds))
    instr = rows.filter(pl.col("stage") == "instruction")
    kept = instr.filter(pl.col("status") == "kept").height
    per_prompt = kept / small.prompts_per_round
    if per_prompt > 0:
        rounds = min(config.rounds, math.ceil(config.num_instructions / (per_prompt * config.prompts_per_round)))
    else:
        rounds = config.rounds
    full_prompts = rounds * config.prompts_per_round
    full_kept = min(full_prompts * per_prompt, float(config.num_instructions + config.prompts_per_round))
    scale = {"instruction": full_prompts / small.prompts_per_round, "instance": full_kept / max(kept, 1)}
    notes = {"instruction": f"{rounds} of at most {config.rounds} rounds at the preview's {per_prompt:.2f} kept per prompt",
             "instance": f"one per kept instruction, ≈{full_kept:.0f}"}  # fmt: skip
    examples = seeds.head(max(config.k_human, 1)).to_dicts()
    values = config.samplers.values(config.seed, "0:0") if config.samplers else None
    measured = rates or rates_for(backend, [build_instruction_prompt(examples, "generation", config.template, values)])
    return Preview(rows, Estimate(substeps_from_preview(rec, rows, scale, notes=notes), measured), seconds)


def preview_completions(
    backend: Backend,
    prompts: pl.DataFrame,
    config: CompletionConfig,
    *,
    rows: int = 4,
    full_rows: int | None = None,
    rates: Rates | None = None,
) -> Preview:
    """`config.k` answers to the first `rows` prompts; the full run answers `full_rows` prompts (default:
    all of `prompts`)."""
    if prompts.height == 0:
        raise ValueError("nothing to preview: there are no prompts to answer yet")
    head = prompts.head(rows)
    rec, out, seconds = _recorded(backend, lambda b, store: run_completions(b, store, head, config))
    scale = {"completion": (full_rows if full_rows is not None else prompts.height) / head.height}
    texts = [str(t) for t in head.get_column(head.columns[0]).cast(pl.Utf8).to_list()]
    measured = rates or rates_for(backend, [t for t in texts if t] or ["Hello"])
    return Preview(out, Estimate(substeps_from_preview(rec, out, scale), measured), seconds)


def preview_judge(
    backend: Backend,
    rows: pl.DataFrame,
    rubric: Any,
    config: Any,
    *,
    sample: int = 4,
    full_rows: int | None = None,
    rates: Rates | None = None,
) -> Preview:
    """Judge the first `sample` rows with `rubric`; the full run judges `full_rows` (default: all `rows`)."""
    from ..judge import run_absolute_judge

    if rows.height == 0:
        raise ValueError("nothing to preview: there are no answers to judge yet")
    head = rows.head(sample)
    rec, out, seconds = _recorded(backend, lambda b, store: run_absolute_judge(b, store, head, rubric, config))
    total = full_rows if full_rows is not None else rows.height
    scale = {"judgment": total / head.height}
    measured = rates or rates_for(backend, [str(t) for t in head["text"].to_list()] if "text" in head.columns else ["x"])
    return Preview(out, Estimate(substeps_from_preview(rec, out, scale), measured), seconds)


def preview_pairwise_judge(
    backend: Backend,
    pairs: pl.DataFrame,
    rubric: Any,
    config: Any,
    *,
    sample: int = 2,
    full_pairs: int | None = None,
    rates: Rates | None = None,
) -> Preview:
    """Judge the first `sample` pairs (columns a_id, a_text, b_id, b_text and the instruction, as
    `make_pairs` gives them) in the orders `config` asks for; the full run judges `full_pairs` (default: all
    `pairs`) with as many requests per pair."""
    from ..judge import run_pairwise_judge

    if pairs.height == 0:
        raise ValueError("nothing to preview: there are no pairs of answers to the same prompt to judge yet")
    head = pairs.head(sample)
    rec, out, seconds = _recorded(backend, lambda b, store: run_pairwise_judge(b, store, head, rubric, config))
    total = full_pairs if full_pairs is not None else pairs.height
    orders = "both orders" if config.both_orders else "one order"
    notes = {"judgment": f"{total} pairs, each in {orders}"}
    texts = [str(t) for t in head["a_text"].to_list()] or ["x"]
    measured = rates or rates_for(backend, texts)
    substeps = substeps_from_preview(rec, out, {"judgment": total / head.height}, notes=notes)
    return Preview(out, Estimate(substeps, measured), seconds)


def preview_evolve(
    backend: Backend,
    prompts: pl.DataFrame,
    config: EvolveConfig,
    *,
    rows: int = 4,
    full_rows: int | None = None,
    rates: Rates | None = None,
) -> Preview:
    """Evolve the first `rows` prompts through every generation (the eliminator included); the full run
    evolves `full_rows` prompts (default: all of `prompts`) with as many requests per prompt."""
    if prompts.height == 0:
        raise ValueError("nothing to preview: there are no prompts to evolve yet")
    head = prompts.head(rows)
    rec, out, seconds = _recorded(backend, lambda b, store: run_evolution(b, store, head, config))
    total = full_rows if full_rows is not None else prompts.height
    notes = {"evolution": f"{config.generations} generations at the preview's requests per prompt"}
    measured = rates or rates_for(backend, [str(t) for t in head["instruction"].to_list()] or ["Hello"])
    substeps = substeps_from_preview(rec, out, {"evolution": total / head.height}, notes=notes)
    return Preview(out, Estimate(substeps, measured), seconds)


def preview_magpie(
    backend: Backend,
    config: MagpieConfig,
    seeds: pl.DataFrame | None = None,
    *,
    prompts: int = 4,
    rates: Rates | None = None,
) -> Preview:
    """`prompts` user turns (and, with `n_turns` > 1, the conversations grown from the kept ones); the full
    run writes `config.num_prompts`. A conversation's turns are sent for its user turn's row, so they are
    counted with the user turns."""
    small = config.model_copy(update={"num_prompts": max(1, min(prompts, config.num_prompts))})

    def run(b: Backend, store: RunStore) -> pl.DataFrame:
        run_magpie(b, store, small, seeds=seeds)
        return store.rows()  # the user turns and the conversations grown from them

    rec, out, seconds = _recorded(backend, run)
    note = "user turns" + (f", with their conversations' {2 * config.n_turns - 1} more turns each"
                           if config.n_turns > 1 else "")  # fmt: skip
    measured = rates or rates_for(backend, [magpie_prefix(backend.chat_template, model_name=backend.name)[0]])
    scale = {"instruction": config.num_prompts / small.num_prompts}
    return Preview(out, Estimate(substeps_from_preview(rec, out, scale, notes={"instruction": note}), measured), seconds)


def preview_conversation(
    backend: Backend,
    rows: pl.DataFrame,
    config: ConversationConfig,
    *,
    sample: int = 4,
    full_rows: int | None = None,
    rates: Rates | None = None,
) -> Preview:
    """Extend the first `sample` rows by `config.turns` turns; the full run extends `full_rows` (default:
    all of `rows`). Every turn's request is sent for the row being extended."""
    if rows.height == 0:
        raise ValueError("nothing to preview: there are no answered rows to extend yet")
    head = rows.head(sample)
    rec = RecordingBackend(backend)
    t0 = time.perf_counter()
    out = extend_conversations(rec, head, config)
    seconds = time.perf_counter() - t0
    total = full_rows if full_rows is not None else rows.height
    keys = pl.DataFrame({"id": head["id"].to_list(), "stage": ["conversation"] * head.height})
    notes = {"conversation": f"{2 * config.turns + config.final_samples - 1} requests per row"}
    measured = rates or rates_for(backend, [str(t) for t in head["text"].to_list()] if "text" in head.columns else ["x"])
    substeps = substeps_from_preview(rec, keys, {"conversation": total / head.height}, notes=notes)
    return Preview(out, Estimate(substeps, measured), seconds)
