"""The steps an interactive session ran, in the order it ran them, kept in the run directory.

The app calls `record_step` when a step finishes (a Run that completed or was stopped, a Filters Apply,
an IFD scoring), with the step exactly as it ran: the parameters, templates, operators, thresholds,
rubric and the rows it judged. They go into the run's manifest (`app_steps`), so the run directory alone
says how its rows were made: a reopened run saves the same recipe, and `logged_steps` gives Save recipe
the steps in run order, which matters wherever a later step reads an earlier one's rows (a judge before
or after a Filters Apply judges different rows).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..runs import RunStore
from .recipe import Step

__all__ = ["LOG_KEY", "logged_steps", "record_step"]

LOG_KEY = "app_steps"
"""The manifest key holding the logged steps (a list of step dicts, oldest first)."""

_STEP: TypeAdapter[Step] = TypeAdapter(Step)


def _entry(step: Step, stopped: bool) -> dict[str, Any]:
    # the full dump, not the defaults-dropped one: a nested union's default discriminator must survive
    data: dict[str, Any] = _STEP.dump_python(step, mode="json")
    if stopped and not data.get("label"):
        data["label"] = f"{step.kind} (stopped early in the app: the replay runs it to the end)"
    return data


def record_step(store: RunStore, step: Step, *, stopped: bool = False) -> bool:
    """Append `step` to the run's log; returns False when it repeats the last entry (running a step again
    with the same settings adds no rows, so the recipe needs it once). `stopped`: the Run was stopped
    before it finished, which the step's label says (a replay runs it to the end)."""
    entry = _entry(step, stopped)
    log = list(store.manifest.get(LOG_KEY) or [])
    if log and log[-1] == entry:
        return False
    if log and log[-1] == _entry(step, True) and log[-1] != entry:
        log.pop()  # the stopped Run, resumed to the end with the same settings: one step, not stopped
    store.update_manifest(**{LOG_KEY: [*log, entry]})
    return True


def logged_steps(store: RunStore) -> list[Step]:
    """The run's logged steps, oldest first ([] for a run no app session logged). An entry this version
    cannot read raises, naming it, rather than silently saving a recipe without it."""
    steps: list[Step] = []
    for i, entry in enumerate(store.manifest.get(LOG_KEY) or []):
        try:
            steps.append(_STEP.validate_python(entry))
        except ValidationError as err:
            kind = entry.get("kind", "?") if isinstance(entry, dict) else "?"
            raise ValueError(
                f"the run's step log ({store.path / 'manifest.json'}, {LOG_KEY}[{i}], a {kind!r} step) is not a "
                f"step this workbench can read: {err.errors()[0]['msg']}. Fix or delete that entry, then save again"
            ) from err
    return steps
