"""The Answers section of the Generate tab: answer the run's kept instructions with the session's model.

A thin view over `workbench.generate.completions.run_completions` (resumable), with a Preview that answers
a few instructions without saving them and estimates the full run's time.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.preview_box import PreviewBox
from widgets.ui import row, tip
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.jobs import Job
from workbench.pipeline.preview import Preview, preview_completions
from workbench.pipeline.recipe import CompletionsStep, Recipe
from workbench.pipeline.runner import step_inputs
from workbench.session import Session

__all__ = ["AnswersPanel"]


class AnswersPanel(JobControlsMixin, W.VBox):
    """Answer the run's kept instructions with the session's model: the completions the judge grades
    and the SFT export trains on (`workbench.generate.completions.run_completions`, resumable)."""

    def __init__(
        self, session: Session, *, k: int = 1, max_tokens: int = 64, temperature: float = 0.7
    ) -> None:
        self.session = session
        self.job: Job | None = None
        self.k = W.BoundedIntText(k, min=1, max=64, description="answers per instruction")
        self.max_tokens = W.IntSlider(max_tokens, min=8, max=512, description="max tokens")
        self.temperature = W.FloatSlider(temperature, min=0.0, max=2.0, step=0.05, description="temperature")
        self.seed = W.BoundedIntText(0, min=0, max=2**31, description="seed")
        self._make_job_controls(
            "answers",
            "Answer instructions",
            "reply",
            "Sample answers to the run's kept instructions with the model.",
            "Stop after the rows in flight; finished answers stay in the run.",
        )
        for control, text in (
            (self.k, "How many answers to sample for each kept instruction."),
            (self.max_tokens, "The longest an answer may be, in tokens."),
            (self.temperature, "Sampling randomness: 0 always picks the likeliest word, higher is more varied."),
            (self.seed, "The random seed that makes the answers repeat exactly."),
        ):
            tip(control, text)
        self.error = W.HTML()
        self.preview = PreviewBox("answers", self._preview_work, what="the answers")
        self.last_config: CompletionConfig | None = None  # what the last Run used (for Save recipe)
        super().__init__([
            W.HTML("<b>Answers</b>: sample responses to the kept instructions (what the judge grades)."),
            row([self.k, self.max_tokens, self.temperature, self.seed]),
            row([self.run_button, self.stop_button, self.preview.button, self.progress, self.progress_label]),
            self.error,
            self.preview,
        ])  # fmt: skip
        self.add_class("wb-answers")

    def config(self) -> CompletionConfig:
        params = CompletionConfig().params.model_copy(
            update={"max_tokens": self.max_tokens.value, "temperature": self.temperature.value}
        )
        return CompletionConfig(k=self.k.value, params=params, seed=self.seed.value)

    def prompts(self) -> pl.DataFrame:
        """The run's kept instructions (with their first instance's input) as completion prompts."""
        step = CompletionsStep(prompts_from="instructions")
        return step_inputs(step, Recipe(name="workbench", steps=[step]), self.session.store)

    def run(self) -> Job | None:
        if self.job is not None and self.job.running:
            self._fail("answers are already being generated: press Stop first")
            return None
        try:
            config, prompts = self.config(), self.prompts()
            if prompts.height == 0:
                raise ValueError("the run has no kept instructions yet: run self-instruct above first")
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.error.value = ""
        self.last_config = config

        def work(report: Any, cancel: Any) -> pl.DataFrame:
            return run_completions(backend, store, prompts, config, on_progress=report, cancel=cancel)

        return self._launch(Job(work, name="answers"), "answering…")

    def _preview_work(self) -> Any:
        config, prompts = self.config(), self.prompts()
        if prompts.height == 0:
            raise ValueError("the run has no kept instructions yet: run self-instruct above first")
        backend = self.session.backend

        def work() -> Preview:
            return preview_completions(backend, prompts, config)

        return work

    def _after_done(self, job: Job) -> None:
        self.session.notify_rows_changed()

    def _fail(self, message: str) -> None:
        full = f"Answers: {message}"
        self.error.value = f"<span class='wb-error' style='color:#b00020'>{html.escape(full)}</span>"
        self.session.report_error(full)
