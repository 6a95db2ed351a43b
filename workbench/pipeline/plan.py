"""The dry run of a recipe: its steps with row counts, and how long a full run will take on this machine.

`plan_recipe` writes nothing. Each step gets its planned inputs and rows (upper bounds where filters
decide). With a backend, each generating step is also previewed (`preview.py`: the real step on
`sample_rows` inputs in a throwaway run, requests recorded) and priced sub-step by sub-step — instruction
prompts and instances, answers, evolutions, judgments, Magpie turns, conversation turns — at this
machine's measured prefill and decode rates (`estimate.py`). A step's preview feeds the next one: the
answers are previewed on the instructions the self-instruct preview kept, the judge on those answers, so
a recipe whose run does not exist yet is estimated end to end. A step that cannot be previewed (no
inputs, or its preview failed) falls back on a bound — every row generating `max_tokens` at the measured
decode rate — and the plan says so and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..engine import Backend
from ..runs import RunStore
from .chat_steps import ConversationStep, MagpieStep, chat_plan
from .estimate import Estimate, Rates
from .filter_step import FiltersStep, filter_frame
from .hygiene_steps import DecontamStep, NearDupStep, plan_note, step_rows
from .judge_step import judged_rows, select_rows
from .recipe import CompletionsStep, EvolveStep, IFDStep, JudgeStep, Recipe, SelfInstructStep, Step
from .runner import _seed_frame, step_inputs

__all__ = ["RecipePlan", "StepPlan", "plan_recipe"]


@dataclass
class StepPlan:
    label: str
    kind: str
    inputs: int | None
    rows: int | None
    max_tokens: int
    note: str = ""
    estimate: Estimate | None = None
    """The preview's estimate of this step's full run (None: not previewed)."""
    preview: str = ""
    """What the preview did ("4 rows in 0.2 s"), or why there is none."""
    bound_seconds: float | None = None
    """Without a preview: every row generating max_tokens at the measured decode rate."""

    @property
    def token_budget(self) -> int | None:
        return None if self.rows is None else self.rows * self.max_tokens

    @property
    def seconds(self) -> float | None:
        return self.estimate.seconds if self.estimate is not None else self.bound_seconds


@dataclass
class RecipePlan:
    steps: list[StepPlan]
    rates: Rates | None = None
    sample_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int | None:
        counts = [s.rows for s in self.steps]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    @property
    def estimated_seconds(self) -> float | None:
        """The previewed steps' estimates plus the other generating steps' bounds (None: not measured);
        steps with neither are left out and listed by `unestimated`."""
        if self.rates is None:
            return None
        return sum(s.seconds for s in self.steps if s.max_tokens > 0 and s.seconds is not None)

    @property
    def unestimated(self) -> list[str]:
        """Labels of generating steps the estimate could not price (their preview failed, no row count)."""
        if self.rates is None:
            return []
        return [s.label for s in self.steps if s.max_tokens > 0 and s.seconds is None]


def _plan_steps(recipe: Recipe, store: RunStore | None) -> list[StepPlan]:
    plans: list[StepPlan] = []
    rows: int | None
    n_in: int | None
    produced: dict[str, int | None] = {}  # source name → rows the plan expects earlier steps to keep
    for label, step in zip(recipe.step_labels(), recipe.steps, strict=True):
        if isinstance(step, SelfInstructStep):
            from ..generate.selfinstruct import SelfInstructConfig

            cfg = SelfInstructConfig.model_validate(step.config)
            rows = cfg.rounds * cfg.prompts_per_round
            produced["instructions"] = rows  # a round may accept more than num_instructions: bound by generations
            plans.append(StepPlan(label, step.kind, _seed_frame(recipe).height, rows, cfg.sampling.max_tokens,
                                  f"at most {rows} generations, stops once {cfg.num_instructions} are accepted"))  # fmt: skip
            continue
        if isinstance(step, NearDupStep | DecontamStep):
            n_in = step_rows(step, store).height or produced.get(step.rows_from)
            plans.append(StepPlan(label, step.kind, n_in, 0, 0, plan_note(step)))
            continue
        if isinstance(step, MagpieStep):
            rows, tokens, _, note = chat_plan(step, None)
            produced["instructions"] = (produced.get("instructions") or 0) + step.config.num_prompts
            if step.config.n_turns > 1:
                produced["conversations"] = (produced.get("conversations") or 0) + step.config.num_prompts
            plans.append(StepPlan(label, step.kind, None, rows, tokens, note))
            continue
        if isinstance(step, FiltersStep):
            stage = step.settings.stage
            n_in = filter_frame(store.rows(), stage).height if store is not None else 0
            n_in = n_in or produced.get("instructions" if stage == "instruction" else "completions")
            plans.append(StepPlan(label, step.kind, n_in, 0, 0, "re-filters rows already generated (no model call)"))
            continue
        scored = isinstance(step, JudgeStep | IFDStep | ConversationStep)
        source = step.rows_from if scored else step.prompts_from  # type: ignore[union-attr]
        n_in = step_inputs(step, recipe, store).height
        limit: int | None = getattr(step, "limit", None)
        if source in produced and not n_in:
            n_in = produced[source]
            n_in = min(n_in, limit) if (n_in is not None and limit) else n_in
        if isinstance(step, CompletionsStep):
            rows = None if n_in is None else n_in * step.config.k
            produced["completions"] = rows
            plans.append(StepPlan(label, step.kind, n_in, rows, step.config.params.max_tokens))
        elif isinstance(step, EvolveStep):
            cfg_e = step.config
            width = len(cfg_e.operators) if cfg_e.strategy == "all" else 1
            rows = None if n_in is None else sum(n_in * width**g for g in range(1, cfg_e.generations + 1))
            produced["evolutions"] = rows
            plans.append(StepPlan(label, step.kind, n_in, rows, cfg_e.params.max_tokens, "upper bound (eliminator drops some)"))
        elif isinstance(step, ConversationStep):
            rows, tokens, _, note = chat_plan(step, n_in)
            produced["conversations"] = rows
            plans.append(StepPlan(label, step.kind, n_in, rows, tokens, note))
        elif isinstance(step, IFDStep):
            plans.append(StepPlan(label, step.kind, n_in, n_in, 0, "scoring only (two forward passes a row)"))
        else:
            from ..judge import JudgeConfig

            judged, note = _judged(step, store, recipe, n_in)
            plans.append(StepPlan(label, step.kind, n_in, judged, JudgeConfig.model_validate(step.config).max_tokens, note))
    return plans


def _judged(step: JudgeStep, store: RunStore | None, recipe: Recipe, n_in: int | None) -> tuple[int | None, str]:
    """How many rows a judge step judges, and the line saying so."""
    inputs = step_inputs(step, recipe, store)
    if inputs.height:
        picked, note = select_rows(step, inputs)
        return picked.height, note
    if step.row_ids is not None:
        return len(step.row_ids), f"judging the {len(step.row_ids)} rows the app judged (delete row_ids to judge all)"
    if step.sample is not None:
        count = step.sample if n_in is None else min(step.sample, n_in)
        return count, f"judging a sample of {count} (set sample: null to judge all)"
    return n_in, ""


# -- previews -----------------------------------------------------------------------------------------
def _as_prompts(rows: pl.DataFrame, stage: str) -> pl.DataFrame:
    """Kept rows of `stage` a preview wrote, as the prompt frame the next step's preview takes."""
    if rows.height == 0 or "stage" not in rows.columns:
        return pl.DataFrame(schema={"id": pl.Utf8, "instruction": pl.Utf8, "input": pl.Utf8, "round": pl.Int64})
    kept = rows.filter((pl.col("stage") == stage) & (pl.col("status") == "kept"))
    return pl.DataFrame({"id": kept["id"], "instruction": kept["text"].cast(pl.Utf8),
                         "input": [""] * kept.height, "round": [0] * kept.height},
                        schema={"id": pl.Utf8, "instruction": pl.Utf8, "input": pl.Utf8, "round": pl.Int64})  # fmt: skip


def _kept(rows: pl.DataFrame, stage: str) -> pl.DataFrame:
    if rows.height == 0 or "stage" not in rows.columns:
        return rows.clear()
    return rows.filter((pl.col("stage") == stage) & (pl.col("status") == "kept"))


def _preview_step(step: Step, plan: StepPlan, recipe: Recipe, store: RunStore | None, backend: Backend,
                  made: dict[str, pl.DataFrame], n: int, rates: Rates) -> Any:  # fmt: skip
    """Preview one step on `n` inputs (the run's, or what earlier previews made); None: nothing to preview.
    Adds the preview's kept rows to `made` (source name → rows) for the steps after it."""
    from . import preview as pv

    def given(source: str, as_prompts: bool) -> pl.DataFrame:
        real = step_inputs(step, recipe, store)
        if real.height or source in ("seeds", "list"):
            return real
        rows = made.get(source, pl.DataFrame())
        stage = {"instructions": "instruction", "evolutions": "evolution", "completions": "completion",
                 "conversations": "conversation"}.get(source, "")  # fmt: skip
        return _as_prompts(rows, stage) if as_prompts else _kept(rows, stage)

    def add(source: str, rows: pl.DataFrame) -> None:
        made[source] = pl.concat([made[source], rows], how="diagonal_relaxed") if source in made else rows

    if isinstance(step, SelfInstructStep):
        from ..generate.selfinstruct import SelfInstructConfig

        p = pv.preview_self_instruct(backend, SelfInstructConfig.model_validate(step.config), _seed_frame(recipe),
                                     prompts=n, rates=rates)  # fmt: skip
        add("instructions", p.rows)
    elif isinstance(step, MagpieStep):
        p = pv.preview_magpie(backend, step.config, _seed_frame(recipe) if step.use_seeds else None, prompts=n, rates=rates)
        add("instructions", p.rows)
        add("conversations", p.rows)
    elif isinstance(step, CompletionsStep | EvolveStep):
        prompts = given(step.prompts_from, True)
        if prompts.height == 0:
            return None
        if isinstance(step, CompletionsStep):
            p = pv.preview_completions(backend, prompts, step.config, rows=n, full_rows=plan.inputs, rates=rates)
        else:
            p = pv.preview_evolve(backend, prompts, step.config, rows=n, full_rows=plan.inputs, rates=rates)
        add("completions" if isinstance(step, CompletionsStep) else "evolutions", p.rows)
    elif isinstance(step, ConversationStep):
        rows = given(step.rows_from, False)
        if rows.height == 0:
            return None
        p = pv.preview_conversation(backend, rows, step.config, sample=n, full_rows=plan.inputs, rates=rates)
        add("conversations", p.rows)
    elif isinstance(step, JudgeStep) and step.mode == "pairwise":
        from ..judge import JudgeConfig, pairs_within_groups

        rows = judged_rows(step, given(step.rows_from, False))
        if rows.height == 0:
            return None
        pairs = pairs_within_groups(rows)  # as for absolute: priced on any rows, scaled to the step's count
        if pairs.height == 0:
            return None
        # the full run's pairs: its judged answers times the pairs per answer the given rows make
        full = None if plan.rows is None else round(plan.rows * pairs.height / rows.height)
        p = pv.preview_pairwise_judge(backend, pairs, step.rubric, JudgeConfig.model_validate(step.config),
                                      sample=max(1, n // 2), full_pairs=full, rates=rates)  # fmt: skip
    elif isinstance(step, JudgeStep):
        from ..judge import JudgeConfig

        rows = judged_rows(step, given(step.rows_from, False))
        if rows.height == 0:
            return None
        p = pv.preview_judge(backend, rows, step.rubric, JudgeConfig.model_validate(step.config), sample=n,
                             full_rows=plan.rows, rates=rates)  # fmt: skip
    else:
        return None
    return p


def _measure(backend: Backend, recipe: Recipe, store: RunStore | None) -> Rates:
    from .preview import rates_for

    first = next((s for s in recipe.steps if isinstance(s, CompletionsStep | EvolveStep)), None)
    texts = step_inputs(first, recipe, store)["instruction"].to_list() if first is not None else []
    return rates_for(backend, (texts or _seed_frame(recipe)["instruction"].to_list())[:8] or ["Hello"])


def plan_recipe(
    recipe: Recipe,
    *,
    backend: Backend | None = None,
    runs_root: str | Path | None = None,
    sample_rows: int = 4,
) -> RecipePlan:
    """The dry run: planned steps and row counts (nothing is written), and, with a backend and
    `sample_rows` > 0, each generating step previewed on `sample_rows` inputs and estimated."""
    root = Path(runs_root if runs_root is not None else recipe.runs_root)
    path = root / recipe.run_name
    store = RunStore.open(path) if (path / "manifest.json").exists() else None
    plan = RecipePlan(_plan_steps(recipe, store))
    if backend is None or sample_rows <= 0:
        return plan
    plan.rates, plan.sample_rows = _measure(backend, recipe, store), sample_rows
    made: dict[str, pl.DataFrame] = {}
    for step, sp in zip(recipe.steps, plan.steps, strict=True):
        if sp.max_tokens == 0:  # filters and scoring: no generation to price
            continue
        try:
            preview = _preview_step(step, sp, recipe, store, backend, made, sample_rows, plan.rates)
            why = "no inputs to preview it on (earlier steps' previews kept none)"
        except Exception as err:  # a base model under a chat step, a bad template: say why, keep planning
            sp.preview = f"its preview failed, so the run will fail here too: {type(err).__name__}: {err}"
            continue
        if preview is not None:
            sp.estimate, sp.preview = preview.estimate, f"preview: {preview.rows.height} rows in {preview.seconds:.1f} s"
        elif sp.token_budget is not None:
            sp.bound_seconds = sp.token_budget / max(plan.rates.decode_at(sp.rows or 1), 1e-9)
            sp.preview = f"not previewed ({why}): bound = every row at max_tokens"
        else:
            sp.preview = f"not previewed ({why}) and its row count is unknown"
    return plan
