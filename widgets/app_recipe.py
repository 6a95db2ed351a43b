"""What the app's Save recipe records: every step as it ran, in the order it ran (issue 14.3).

When a panel's Run ends (done, or stopped) the app turns that panel's last Run into a recipe step with
`step_of` — the config it ran with, the prompts' source and limit, the rubric and its version hash, the
judged rows and the judge's mode — and appends it to the run's step log (`workbench.pipeline.step_log`,
in the manifest). A Filters Apply logs a `filters` step, a Score IFD an `ifd` step, and the judge lab's
"Rate each criterion" one judge step per criterion. Save recipe then
writes the log as it is, so the CLI replays the same steps in the same order to the same row ids.

A run made before the log existed has none: `inferred_steps` falls back on the stages its rows show and
the panels' knobs, in a fixed order, as before.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from widgets.judge_rows import JudgedRun
from workbench.pipeline.recipe import (
    CompletionsStep,
    ConversationStep,
    EvolveStep,
    IFDStep,
    JudgeStep,
    MagpieStep,
    SelfInstructStep,
    Step,
)
from workbench.pipeline.step_log import logged_steps, record_step
from workbench.runs import RunStore

__all__ = ["aspect_view", "inferred_steps", "log_finished_run", "recipe_steps", "step_of", "steps_of"]


def _judge_step(run: JudgedRun) -> JudgeStep:
    picked: list[str] | None = run.ids if run.ids and len(run.ids) < run.pool else None  # all judged: so does the recipe
    conv = run.what != "completions"
    return JudgeStep(rubric=run.rubric, rubric_version=run.rubric.version, mode=run.mode,
                     rows_from="conversations" if conv else "completions",
                     conversation_target=run.what if conv else "last_turn",
                     config=run.config.model_dump(mode="json"), row_ids=picked)  # fmt: skip


def step_of(app: Any, panel: Any) -> Step | None:
    """The step `panel`'s last Run ran, or None when it has not run in this session."""
    if panel is app.generate and panel.last_config is not None:
        return SelfInstructStep(config=panel.last_config.model_dump(mode="json"))
    if panel is app.magpie and panel.last_config is not None:
        return MagpieStep(config=panel.last_config)  # it filters against the app's seed pool: use_seeds
    if panel is app.evolve and panel.last_config is not None:
        return EvolveStep(prompts_from=panel.last_source or "seeds", limit=panel.last_limit, config=panel.last_config)
    if panel is app.answers and panel.last_config is not None:
        return CompletionsStep(prompts_from="instructions", config=panel.last_config)
    if panel is app.conversation and panel.last_config is not None:
        return ConversationStep(limit=panel.last_limit, config=panel.last_config)
    if panel is app.filters:  # its job is Score IFD, over the kept answers (what an ifd step reads)
        return IFDStep(rows_from="completions")
    judged = getattr(panel, "last_judged", None)
    if panel is getattr(app, "judge", None) and judged is not None:
        return _judge_step(judged)
    return None


def steps_of(app: Any, panel: Any) -> list[Step]:
    """`step_of`, plus the Judge tab's "Rate each criterion": one absolute judge step per criterion's
    rubric, over the exact answers it rated."""
    rated = getattr(panel, "last_rated", None)
    if rated is not None and panel is aspect_view(app):
        rubrics, ids, config = rated
        return [JudgeStep(rubric=r, rubric_version=r.version, config=config.model_dump(mode="json"), row_ids=ids)
                for r in rubrics]  # fmt: skip
    step = step_of(app, panel)
    return [] if step is None else [step]


def aspect_view(app: Any) -> Any:
    """The Judge tab's best-of-n / multi-aspect view (None when the judge is not available)."""
    return getattr(getattr(getattr(app, "judge", None), "lab", None), "selection", None)


def log_finished_run(app: Any, panel: Any, store: RunStore) -> bool:
    """Log `panel`'s ended Run (done or stopped) in the run's step log; False when there was nothing to log."""
    job = panel.job
    if job is None or job.state not in ("done", "cancelled"):
        return False
    logged = [record_step(store, step, stopped=job.state == "cancelled") for step in steps_of(app, panel)]
    return any(logged)


def recipe_steps(app: Any) -> list[Step]:
    """The steps Save recipe writes: the run's step log, in run order; a run without a log (made before
    the log existed, or by code outside the app) falls back on `inferred_steps`."""
    store = app.session.store
    return logged_steps(store) or inferred_steps(app, store.rows())


def inferred_steps(app: Any, rows: pl.DataFrame) -> list[Step]:
    """Steps guessed from the run's stages, each with its panel's last Run (or, for a reopened run, the
    knobs it shows), in the fixed order the Generate tab reads."""
    stages = set(rows["stage"].unique().to_list()) if rows.height else set()
    sources = set(rows["source"].drop_nulls().unique().to_list()) if "source" in rows.columns else set()
    steps: list[Step] = []
    if "instruction" in stages and _self_instructed(rows):
        config = app.generate.last_config or app.generate.config()
        steps.append(SelfInstructStep(config=config.model_dump(mode="json")))
    if "magpie" in sources:
        steps.append(MagpieStep(config=app.magpie.last_config or app.magpie.config()))
    if "evolution" in stages:
        ev = app.evolve
        source = ev.last_source or ("instructions" if "instruction" in stages else "seeds")
        limit = ev.last_limit if ev.last_config is not None else ev.limit.value
        steps.append(EvolveStep(prompts_from=source, limit=limit, config=ev.last_config or ev.config()))
    if "completion" in stages:
        source = "instructions" if "instruction" in stages else "seeds"
        steps.append(CompletionsStep(prompts_from=source, config=app.answers.last_config or app.answers.config()))
    if "user_simulator" in sources:
        conv = app.conversation
        limit = conv.last_limit if conv.last_config is not None else (conv.limit.value or None)
        steps.append(ConversationStep(limit=limit, config=conv.last_config or conv.config()))
    if "judgment" in stages and app.judge_unavailable is None:
        judge = app.judge
        steps.append(_judge_step(judge.last_judged or JudgedRun([], 0, judge.config(), "absolute", judge.rubric)))
    return steps


def _self_instructed(rows: pl.DataFrame) -> bool:
    """Whether some instruction rows came from self-instruct (Magpie's are marked source='magpie')."""
    instructions = rows.filter(pl.col("stage") == "instruction")
    if "source" not in instructions.columns:
        return instructions.height > 0
    return bool((instructions["source"].fill_null("") != "magpie").any())
