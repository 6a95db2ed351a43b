"""Run a recipe: its steps in order against one run directory, resumable, with progress reports.

Each step calls the same pipeline function the notebook panels call (`run_completions`,
`run_evolution`, `run_self_instruct`, `run_absolute_judge`, `run_ifd`; `near_dup` and `decontam` record
filter drops, `hygiene_steps`), so a headless run writes exactly the rows
an interactive one would, and re-running with `resume=True` skips every row the run already has.
`plan_recipe` is the dry run: the planned steps, their row counts, and a time estimate from tokens/s
measured on a small sample.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..engine import Backend, FakeBackend, GenerationRequest, Progress, SamplingParams, load_backend
from ..export import ExportResult, export_run
from ..filters.apply import with_filter_drops
from ..generate.seeds import default_seeds, load_seeds, self_instruct_seeds
from ..runs import RunStore, row_id
from .hygiene_steps import DecontamStep, NearDupStep, plan_note, run_hygiene_step, step_rows
from .recipe import CompletionsStep, EvolveStep, IFDStep, JudgeStep, Recipe, SelfInstructStep, Step

__all__ = [
    "RecipeMismatchError",
    "RecipePlan",
    "RunReport",
    "StepPlan",
    "StepProgress",
    "StepReport",
    "make_backend",
    "open_run",
    "plan_recipe",
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
    src = recipe.seeds.source
    seeds = default_seeds() if src == "default" else self_instruct_seeds() if src == "self_instruct" else load_seeds(src)
    return seeds.head(recipe.seeds.limit) if recipe.seeds.limit else seeds


def _prompt_frame(ids: list[str], instructions: list[str], inputs: list[str], rounds: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": ids, "instruction": instructions, "input": inputs, "round": rounds},
        schema={"id": pl.Utf8, "instruction": pl.Utf8, "input": pl.Utf8, "round": pl.Int64},
    )


def step_inputs(step: Step, recipe: Recipe, store: RunStore | None) -> pl.DataFrame:
    """The prompts (id, instruction, input, round) or, for a judge, the rows a step works on."""
    scores = isinstance(step, JudgeStep | IFDStep)  # steps that work on rows, not prompts
    source = step.rows_from if isinstance(step, JudgeStep | IFDStep) else getattr(step, "prompts_from", "seeds")
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
                 "instances": "instance"}[source]  # fmt: skip
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
) -> pl.DataFrame:
    if isinstance(step, NearDupStep | DecontamStep):  # filters of rows already in the run
        return run_hygiene_step(step, store)
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
    from ..judge import JudgeConfig, run_absolute_judge

    judge_config = JudgeConfig.model_validate(step.config)
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
            rows = _run_step(step, recipe, backend, store, relay, cancel)
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


# -- dry run ----------------------------------------------------------------------------------------
@dataclass
class StepPlan:
    label: str
    kind: str
    inputs: int | None
    rows: int | None
    max_tokens: int
    note: str = ""

    @property
    def token_budget(self) -> int | None:
        return None if self.rows is None else self.rows * self.max_tokens


@dataclass
class RecipePlan:
    steps: list[StepPlan]
    tokens_per_s: float | None = None
    sample_rows: int = 0
    sample_tokens: int = 0
    sample_seconds: float = 0.0

    @property
    def total_rows(self) -> int | None:
        counts = [s.rows for s in self.steps]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    @property
    def estimated_seconds(self) -> float | None:
        """Upper bound: every row generating `max_tokens` at the measured rate."""
        budgets = [s.token_budget for s in self.steps]
        if not self.tokens_per_s or any(b is None for b in budgets):
            return None
        return sum(b for b in budgets if b is not None) / self.tokens_per_s


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
        source = step.rows_from if isinstance(step, JudgeStep | IFDStep) else step.prompts_from
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
        elif isinstance(step, IFDStep):
            plans.append(StepPlan(label, step.kind, n_in, n_in, 0, "scoring only (two forward passes a row)"))
        else:
            from ..judge import JudgeConfig

            plans.append(StepPlan(label, step.kind, n_in, n_in, JudgeConfig.model_validate(step.config).max_tokens))
    return plans


def plan_recipe(
    recipe: Recipe,
    *,
    backend: Backend | None = None,
    runs_root: str | Path | None = None,
    sample_rows: int = 4,
    sample_max_tokens: int = 32,
) -> RecipePlan:
    """The dry run: planned steps and row counts (nothing is written), and, with a backend, tokens/s
    measured by generating `sample_rows` short completions of the first prompts."""
    root = Path(runs_root if runs_root is not None else recipe.runs_root)
    path = root / recipe.run_name
    store = RunStore.open(path) if (path / "manifest.json").exists() else None
    plan = RecipePlan(_plan_steps(recipe, store))
    if backend is None or sample_rows <= 0:
        return plan
    first = next((s for s in recipe.steps if isinstance(s, CompletionsStep | EvolveStep)), None)
    texts = step_inputs(first, recipe, store)["instruction"].to_list() if first is not None else []
    texts = (texts or _seed_frame(recipe)["instruction"].to_list())[:sample_rows]
    params = SamplingParams(max_tokens=sample_max_tokens, temperature=0.7, seed=0)
    requests = [GenerationRequest(prompt=f"Instruction: {t}\nResponse:", params=params) for t in texts]
    t0 = time.perf_counter()
    gens = backend.generate(requests)
    plan.sample_seconds = time.perf_counter() - t0
    plan.sample_rows = len(gens)
    plan.sample_tokens = sum(g.completion_tokens for g in gens)
    plan.tokens_per_s = plan.sample_tokens / plan.sample_seconds if plan.sample_seconds > 0 else None
    return plan
