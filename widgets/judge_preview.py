"""The Judge tab's Preview: judge a few rows of the sample with the editor's draft rubric, unsaved, and price a full run.

It reads what the panel's Run would judge (the draft rubric, the config, the sample the knobs pick, the mode) on
the kernel thread and refuses with Run's own reasons; the work it returns runs `preview_judge` (absolute) or
`preview_pairwise_judge` (both orders of each pair) in a scratch run directory, so the run is never written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from widgets.judge_rows import judge_pairs, judged_rubric
from widgets.rubric_editor import RubricProblem
from workbench.pipeline.preview import Preview, preview_judge, preview_pairwise_judge

if TYPE_CHECKING:
    from widgets.judge import JudgePanel

__all__ = ["judge_preview_work"]


def judge_preview_work(panel: JudgePanel) -> Callable[[], Preview]:
    """What the panel's Preview runs in its worker: a few rows (or pairs) of the sample Run would judge."""
    what = panel.rows_from.value
    try:
        rubric = judged_rubric(panel.draft_rubric(), what)  # conversations: wrapped as Run wraps it
    except RubricProblem as err:
        raise ValueError(f"the rubric above has a problem to fix first: {err}") from None
    config = panel.config()
    sample = panel._pick_sample()  # what Run would judge now; the panel's own sample is left as it is
    pairs = judge_pairs(sample, what, panel.mode.value == "pairwise")  # Run's own refusals, in its words
    backend = panel.session.backend
    if pairs is not None:
        return lambda: preview_pairwise_judge(backend, pairs, rubric, config, full_pairs=pairs.height)
    return lambda: preview_judge(backend, sample, rubric, config, full_rows=sample.height)
