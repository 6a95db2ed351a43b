"""The judge lab sections under the Judge tab: judge the judge, compare rubric versions, best-of-n
and multi-aspect ratings. Each is its own thin view; this only stacks them in an accordion."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as W
import polars as pl

from widgets.judge_lab import JudgeLabPanel
from widgets.judge_selection import SelectionView
from widgets.judge_versions import VersionCompareView
from workbench.judge import JudgeConfig, Rubric
from workbench.session import Session

__all__ = ["SECTION_TITLES", "JudgeLabSections"]

SECTION_TITLES = ("Judge the judge: agreement vs baselines", "Compare rubric versions",
                  "Best-of-n & multi-aspect ratings")  # fmt: skip


class JudgeLabSections(W.Accordion):
    """`lab` (judge the judge), `versions` (compare_versions) and `selection` (best-of-n, aspects)."""

    def __init__(
        self,
        session: Session,
        rubric: Callable[[], Rubric],
        sample: Callable[[], pl.DataFrame],
        judge_config: Callable[[], JudgeConfig],
    ) -> None:
        self.lab = JudgeLabPanel(session, rubric, judge_config)
        self.versions = VersionCompareView(session)
        self.selection = SelectionView(session, rubric, sample, judge_config)
        super().__init__([self.lab, self.versions, self.selection])
        for i, title in enumerate(SECTION_TITLES):
            self.set_title(i, title)
        self.selected_index = None
        self.add_class("wb-judge-sections")

    def refresh(self) -> None:
        """Re-read the run (rubric versions, label counts) unless a section's job is running."""
        for view in (self.lab, self.versions, self.selection):
            if not getattr(view, "_job_busy", lambda: False)():
                view.refresh()
