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
from ..generate.selfinstruct import SelfInstructConfig, build_instruction_prompt, run_self_instruct
from ..runs import RunStore
from .estimate import Estimate, Rates, RecordingBackend, measure_rates, substeps_from_preview

__all__ = ["Preview", "preview_completions", "preview_judge", "preview_self_instruct", "rates_for"]

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
    rates: Rates | None = None,
) -> Preview:
    """`config.k` answers to the first `rows` prompts; the full run answers all of `prompts`."""
    if prompts.height == 0:
        raise ValueError("nothing to preview: there are no prompts to answer yet")
    head = prompts.head(rows)
    rec, out, seconds = _recorded(backend, lambda b, store: run_completions(b, store, head, config))
    scale = {"completion": prompts.height / head.height}
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
