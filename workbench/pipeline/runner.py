"""Run a recipe: its steps in order against one run directory, resumable, with progress reports.

Each step calls the same pipeline function the notebook panels call (`run_completions`,
`run_evolution`, `run_self_instruct`, `run_absolute_judge`, `run_ifd`; `near_dup` and `decontam` record
filter drops, `hygiene_steps`), so a headless run writes exactly the rows
an interactive one would, and re-running with `resume=True` skips every row the run already has.
`magpie` and `conversation` (`chat_steps`) need a chat model. A judge step judges the rows its
`row_ids` or `sample` select (`judge_step.select_rows`), and says how many of how many; `mode: pairwise`
pairs two answers per prompt. `filters` is the Filters tab's Apply (`filter_step`). The dry run is
`workbench.pipeline.plan.plan_recipe`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..engine import Backend, FakeBackend, Progress, load_backend
from ..export import ExportResult, export_run
from ..filters.apply import with_filter_drops
from ..generate.seeds import default_seeds, load_seeds, self_instruct_seeds
from ..runs import RunStore, row_id
from .chat_steps import ConversationStep, MagpieStep, run_chat_step
from .filter_step import FiltersStep, run_filters_step
from .hygiene_steps import DecontamStep, NearDupStep, run_hygiene_step
from .judge_step import judged_rows, select_rows
from .recipe import CompletionsStep, EvolveStep, IFDStep, JudgeStep, Recipe, SelfInstructStep, Step

__all__ = [
    "RecipeMismatchError",
    "RunReport",
    "StepProgress",
    "StepReport",
    "make_backend",
    "open_run",
    "run_recipe",
    "step_inputs",
]


class RecipeMismatchError(ValueError):
    """Resuming a run that a different recipe made (its rows would not match)."""


@dataclass
class StepProgress:
    """A progress report of a recipe run: which step, and that step's generation progress."""

    step: int
    steps: int
    label: str
    progress: Progress | None = None
    message: str = ""


@dataclass
class StepReport:
    label: str
    kind: str
    rows: int
    new_rows: int
    seconds: float


@dataclass
class RunReport:
    store: RunStore
    steps: list[StepReport] = field(default_factory=list)
    exports: list[ExportResult] = field(default_factory=list)
    cancelled: bool = False


def make_backend(recipe: Recipe) -> Backend:
    """The backend a recipe asks for: Ray over endpoints (`scale`), 'fake', an endpoint, or a GGUF."""
    if recipe.scale is not None:
        from .scale import RayBackend

        return RayBackend(recipe.scale)
    spec = recipe.model
    if spec.source == "fake":
        return FakeBackend(**spec.options)
    options = dict(spec.options)
    if spec.is_endpoint and spec.model is not None:
        options["model"] = spec.model
    return load_backend(spec.source, **options)


def open_run(
    recipe: Recipe,
    backend: Backend,
    *,
    runs_root: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> RunStore:
    """Create the recipe's run directory, or reopen it with `resume=True` (only if this recipe made it)."""
    manifest = {
        "recipe": recipe.to_dict(),
        "recipe_hash": recipe.work_hash(),
        "model": backend.name,
        "model_sha": backend.model_id,
        # CPU flags, llama.cpp build and buffer setting: a row's text depends on them (README, determinism).
        "engine": getattr(backend, "runtime", None),
        "steps": recipe.step_labels(),
        "made_by": "workbench run",
    }
    root = Path(runs_root if runs_root is not None else recipe.runs_root)
    store = RunStore.create(root, recipe.run_name, manifest=manifest, resume=resume, overwrite=overwrite)
    made_by = store.manifest.get("recipe_hash")
    if made_by is not None and made_by != recipe.work_hash():
        raise RecipeMismatchError(
            f"run {store.path} was made by a different recipe (hash {made_by}, this one {recipe.work_hash()}): "
            "resume it with the recipe that made it, or use a new run name (or --overwrite)"
        )
    return store


# -- step inputs ------------------------------------------------------------------------------------
def _seed_frame(recipe: Recipe) -> pl.DataFrame:
    spec = recipe.seeds
    if spec.source in ("default", "self_instruct"):
        seeds = default_seeds() if spec.source == "default" else self_instruct_seeds()
        return seeds.head(spec.limit) if spec.limit else seeds
    return load_seeds(spec.source, limit=spec.limit, **spec.columns)


def _prompt_frame(ids: list[str], instructions: list[str], inputs: list[str], rounds: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": ids, "instruction": instructions, "input": inputs, "round": rounds},
        schema={"id": pl.Utf8, "instruction": pl.Utf8, "input": pl.Utf8, "round": pl.Int64},
    )


def step_inputs(step: Step, recipe: Recipe, store: RunStore | None) -> pl.DataFrame:
    """The prompts (id, instruction, input, round) or, for a judge, the rows a step works on."""
    scores = isinstance(step, JudgeStep | IFDStep | ConversationStep)  # steps that work on rows, not prompts
    source = step.rows_from if scores else getattr(step, "prompts_from", "seeds")  # type: ignore[union-attr]
    limit = getattr(step, "limit", None)
    if source == "seeds":
        seeds = _seed_frame(recipe)
        inputs = [(inst[0]["input"] if inst else "") or "" for inst in seeds["instances"].to_list()]
        frame = _prompt_frame(seeds["id"].to_list(), seeds["instruction"].to_list(), inputs, [0] * seeds.height)
    elif source == "list":
        prompts = list(step.prompts)  # type: ignore[union-attr]
        ids = [row_id("prompt", None, p) for p in prompts]
        frame = _prompt_frame(ids, prompts, [""] * len(prompts), [0] * len(prompts))
    else:
        stage = {"instructions": "instruction", "evolutions": "evolution", "completions": "completion",
                 "instances": "instance", "conversations": "conversation"}[source]  # fmt: skip
        if store is None:  # a dry run before the run exists: earlier steps have produced nothing yet
            return _prompt_frame([], [], [], [])
        rows = with_filter_drops(store.rows())  # rows a Filters Apply dropped are not inputs
        kept = rows.filter((pl.col("stage") == stage) & (pl.col("status") == "kept"))
        kept = kept.unique("id", keep="first", maintain_order=True)
        if scores:
            return kept.head(limit) if limit else kept
        inputs = [""] * kept.height
        if stage == "instruction" and kept.height:
            inst = rows.filter((pl.col("stage") == "instance") & (pl.col("status") == "kept"))
            if "input" in inst.columns:
                first = dict(zip(inst["parent_id"].to_list(), inst["input"].to_list(), strict=True))
                inputs = [first.get(i) or "" for i in kept["id"].to_list()]
        frame = _prompt_frame(kept["id"].to_list(), kept["text"].to_list(), inputs, kept["round"].fill_null(0).to_list())
    return frame.head(limit) if limit else frame


# -- running ----------------------------------------------------------------------------------------
def _run_step(
    step: Step,
    recipe: Recipe,
    backend: Backend,
    store: RunStore,
    on_progress: Callable[[Progress], None],
    cancel: threading.Event,
    say: Callable[[str], None],
) -> pl.DataFrame:
    if isinstance(step, NearDupStep | DecontamStep):  # filters of rows already in the run
        return run_hygiene_step(step, store)
    if isinstance(step, FiltersStep):  # the Filters tab's Apply
        decided, note = run_filters_step(step, store, _seed_frame(recipe))
        say(note)
        return decided
    if isinstance(step, MagpieStep | ConversationStep):
        source = (lambda: _seed_frame(recipe)) if isinstance(step, MagpieStep) else (lambda: step_inputs(step, recipe, store))
        return run_chat_step(step, backend, store, source, on_progress, cancel)
    if isinstance(step, SelfInstructStep):
        from ..generate.selfinstruct import SelfInstructConfig, run_self_instruct

        config = SelfInstructConfig.model_validate(step.config)
        return run_self_instruct(
            backend, store, config, seeds=_seed_frame(recipe), on_progress=on_progress, cancel=cancel
        )
    inputs = step_inputs(step, recipe, store)
    if inputs.height == 0:
        return inputs
    if isinstance(step, CompletionsStep):
        from ..generate.completions import run_completions

        return run_completions(backend, store, inputs, step.config, on_progress=on_progress, cancel=cancel)
    if isinstance(step, EvolveStep):
        from ..generate.evolve import run_evolution

        return run_evolution(backend, store, inputs, step.config, on_progress=on_progress, cancel=cancel)
    if isinstance(step, IFDStep):
        from ..filters.ifd import run_ifd

        return run_ifd(backend, store, inputs, step.config, on_progress=on_progress, cancel=cancel)
    from ..judge import JudgeConfig, pairs_within_groups, run_absolute_judge, run_pairwise_judge

    judge_config = JudgeConfig.model_validate(step.config)
    inputs, note = select_rows(step, judged_rows(step, inputs))  # conversations: the part the judge grades
    say(note)
    if step.mode == "pairwise":
        pairs = pairs_within_groups(inputs)
        if pairs.height == 0:
            raise ValueError(
                f"judge step (pairwise): no two of its {inputs.height} {step.rows_from} rows answer the same prompt; "
                "generate k >= 2 answers per prompt, or use mode: absolute"
            )
        return run_pairwise_judge(
            backend, store, pairs, step.rubric, judge_config, on_progress=on_progress, cancel=cancel
        )
    return run_absolute_judge(
        backend, store, inputs, step.rubric, judge_config, on_progress=on_progress, cancel=cancel
    )


def run_recipe(
    recipe: Recipe,
    *,
    backend: Backend | None = None,
    runs_root: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    export: bool = True,
    on_progress: Callable[[StepProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunReport:
    """Run every step of `recipe` in order against one run directory, then its exports.

    `resume=True` continues an existing run of the same recipe (rows it has are skipped);
    `cancel.set()` stops within a decode step: rows finished so far are kept, and a resume picks up
    the rest. The backend is built from the recipe unless one is given (and then closed by the caller).
    """
    cancel = cancel or threading.Event()
    owned = backend is None
    backend = backend or make_backend(recipe)
    try:
        store = open_run(recipe, backend, runs_root=runs_root, resume=resume, overwrite=overwrite)
        report = RunReport(store)
        labels = recipe.step_labels()
        for i, step in enumerate(recipe.steps):
            if cancel.is_set():
                break
            label = labels[i]
            before = store.rows().height
            t0 = time.perf_counter()

            def relay(p: Progress, i: int = i, label: str = label) -> None:
                if on_progress is not None:
                    on_progress(StepProgress(i + 1, len(recipe.steps), label, p))

            if on_progress is not None:
                on_progress(StepProgress(i + 1, len(recipe.steps), label, None, "starting"))
            def say(text: str, i: int = i, label: str = label) -> None:
                if on_progress is not None:
                    on_progress(StepProgress(i + 1, len(recipe.steps), label, None, text))

            rows = _run_step(step, recipe, backend, store, relay, cancel, say)
            report.steps.append(
                StepReport(label, step.kind, rows.height, store.rows().height - before, time.perf_counter() - t0)
            )
            store.update_manifest(steps_done=[s.label for s in report.steps])
        report.cancelled = cancel.is_set()
        if export and not report.cancelled:
            for spec in recipe.exports:
                report.exports.append(export_run(store, spec, recipe=recipe.to_dict(), title=recipe.name))
        return report
    finally:
        if owned and hasattr(backend, "close"):
            backend.close()
