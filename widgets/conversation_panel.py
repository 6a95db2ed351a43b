"""The Conversation section of the Generate tab: grow the run's answered rows into multi-turn conversations.

A thin view over `workbench.generate.conversation.extend_conversations`: how many extra turns, the user
simulator's prompt (a sandboxed Jinja template, checked as it is typed, its error shown under the field),
sampling and seed; Run extends the run's kept answers in a `Job` worker thread with progress and Stop, and
the table shows each conversation turn by turn. The assistant's turns go through the model's chat
template, so on a base model the panel says why it cannot run and what to load instead, with Run disabled.
Preview extends the first few of those rows without saving them and estimates a full Run's time.
`last_config` / `last_limit` keep what the last Run used (Save recipe replays it as a `conversation` step).
"""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.job_controls import LiveStepMixin
from widgets.magpie_panel import CHAT_MODEL_HINT
from widgets.preview_box import PreviewBox
from widgets.ui import error_html, row, tip
from workbench.engine import Backend
from workbench.generate.completions import compile_template
from workbench.generate.conversation import USER_SIMULATOR_VARIABLES, ConversationConfig, extend_conversations
from workbench.generate.samplers import check_template_names
from workbench.jobs import Job
from workbench.pipeline.preview import Preview, preview_conversation
from workbench.pipeline.recipe import ConversationStep, Recipe
from workbench.pipeline.runner import step_inputs
from workbench.session import Session

__all__ = ["ConversationPanel", "conversation_unavailable", "simulated_conversations", "template_problem"]


def conversation_unavailable(backend: Backend) -> str | None:
    """Why conversations cannot be grown on `backend` (a base model), and what to load instead; None if they can."""
    if backend.chat_template:
        return None
    return (f"{backend.name} is a base model (it has no chat template), and every assistant turn of a "
            f"conversation goes through the model's chat template. {CHAT_MODEL_HINT}")  # fmt: skip


def template_problem(source: str) -> str | None:
    """What is wrong with a user-simulator template (syntax, unknown variable), or None."""
    try:
        compile_template(source)
        check_template_names(source, USER_SIMULATOR_VARIABLES, "the user-simulator template")
    except ValueError as err:
        return str(err)
    return None


def simulated_conversations(rows: pl.DataFrame) -> pl.DataFrame:
    """The run's conversations grown by the user simulator (not Magpie's), each id once, in run order."""
    if rows.height == 0 or not {"stage", "source", "messages"} <= set(rows.columns):
        return pl.DataFrame(schema={"id": pl.Utf8, "status": pl.Utf8, "reason": pl.Utf8})
    return rows.filter((pl.col("stage") == "conversation") & (pl.col("source") == "user_simulator")).unique(
        "id", keep="first", maintain_order=True
    )


class ConversationPanel(LiveStepMixin, W.VBox):
    """Knobs of `ConversationConfig`, Run/Stop with progress, and the conversations it grew."""

    step_name = "Conversation"

    failure_prefix = "conversations failed"

    def __init__(self, session: Session, *, table_rows: int = 20) -> None:
        self.session = session
        self.table_rows = table_rows
        self.job: Job | None = None
        self.last_config: ConversationConfig | None = None
        """The exact config the last Run used, None before any Run."""
        self.last_limit: int | None = None
        """How many answered rows the last Run extended at most (None: all)."""
        self.unavailable: str | None = None
        self._last_refresh = 0.0
        d = ConversationConfig()
        self.turns = W.BoundedIntText(d.turns, min=1, max=16, description="extra turns")
        self.final_samples = W.BoundedIntText(d.final_samples, min=1, max=16, description="last answers per row")
        self.limit = W.BoundedIntText(0, min=0, max=10**6, description="rows to extend (0: all)")
        self.temperature = W.FloatSlider(d.sampling.temperature, min=0.0, max=2.0, step=0.05, description="temperature")
        self.max_tokens = W.IntSlider(d.sampling.max_tokens, min=8, max=1024, description="max tokens per turn")
        self.seed = W.BoundedIntText(d.seed, min=0, max=2**32 - 1, description="seed")
        # As wide as the panel, never wider: width 100% plus the label's margins scrolled the section sideways.
        self.user_template = W.Textarea(d.user_template, description="user simulator",
                                        layout=W.Layout(width="auto", flex="1 1 auto", height="120px"))  # fmt: skip
        self.user_template.add_class("wb-conversation-template")
        self.template_error = W.HTML()
        self.template_error.add_class("wb-conversation-template-error")
        self._make_job_controls(
            "conversation",
            "Extend answers",
            "comments",
            "Add the turns above to every kept answer of the run: the simulator writes a user message, then the model answers.",
            "Stop after the turns in flight; finished conversations stay in the run.",
        )
        for control, text in (
            (self.turns, "How many more user messages (each followed by an answer) to add to each answered row."),
            (self.final_samples, "With more than 1, the last answer is sampled that many times: candidates for DPO pairs."),
            (self.limit, "Extend only the first rows of the run's kept answers (0 extends them all)."),
            (self.temperature, "Sampling randomness of the new turns: 0 always picks the likeliest word, higher is more varied."),
            (self.max_tokens, "The longest a new user message or answer may be, in tokens."),
            (self.seed, "The random seed that makes the run repeat exactly."),
            (self.user_template, f"The prompt that writes the next user message; variables: {', '.join(USER_SIMULATOR_VARIABLES)}."),
        ):
            tip(control, text)
        self.availability = W.HTML()
        self.availability.add_class("wb-conversation-availability")
        self.counts = W.HTML()
        self.error = W.HTML()
        self.table = W.HTML()
        self.table.add_class("wb-conversation-table")
        self.user_template.observe(lambda _c: self.check_template(), names="value")
        session.subscribe(self._on_session_event)
        self.preview = PreviewBox("conversation", self._preview_work, what="the conversations")
        super().__init__([
            W.HTML("<b>Conversations</b>: grow each kept answer into a multi-turn conversation; a user simulator "
                   "writes the follow-up, then the model answers it."),
            self.availability,
            row([self.turns, self.final_samples, self.limit]),
            row([self.temperature, self.max_tokens, self.seed]),
            self.user_template,
            self.template_error,
            row([self.run_button, self.stop_button, self.preview.button, self.progress, self.progress_label]),
            self.preview,
            self.error,
            self.counts,
            self.table,
        ])  # fmt: skip
        self.add_class("wb-conversation")
        self.check_model()
        self.refresh()

    # -- checks ----------------------------------------------------------------------------------
    def check_model(self) -> str | None:
        """Re-read whether the session's model can answer in a conversation; disable Run with the reason if not."""
        if self._job_busy():
            return self.unavailable
        if not self.session.model_loaded:
            self.unavailable = None
            self.availability.value = "<i>The model is still loading: this section checks its chat template once loaded.</i>"
        else:
            self.unavailable = conversation_unavailable(self.session.backend)
            self.availability.value = "" if self.unavailable is None else (
                "<div style='color:#8a5300;border-left:4px solid #e0a800;padding:4px 8px'>"
                f"<b>Conversations cannot be grown.</b> {html.escape(self.unavailable)}</div>"
            )  # fmt: skip
        self.run_button.disabled = self.unavailable is not None
        return self.unavailable

    def check_template(self) -> str | None:
        """Check the user-simulator template; its problem is shown under the field (and returned)."""
        problem = template_problem(self.user_template.value)
        self.template_error.value = "" if problem is None else error_html(problem)
        return problem

    # -- config ----------------------------------------------------------------------------------
    def config(self) -> ConversationConfig:
        """The config the knobs describe (a bad template raises, with what is wrong)."""
        problem = self.check_template()
        if problem is not None:
            raise ValueError(f"{problem} (fix it in the user-simulator field)")
        sampling = ConversationConfig().sampling.model_copy(
            update={"temperature": self.temperature.value, "max_tokens": self.max_tokens.value}
        )
        return ConversationConfig(turns=self.turns.value, final_samples=self.final_samples.value, sampling=sampling,
                                  user_template=self.user_template.value, seed=self.seed.value)  # fmt: skip

    def rows(self, limit: int | None = None) -> pl.DataFrame:
        """The run's kept answers this section extends (the first `limit`; None: all)."""
        step = ConversationStep(rows_from="completions", limit=limit)
        return step_inputs(step, Recipe(name="workbench", steps=[step]), self.session.store)

    # -- running ---------------------------------------------------------------------------------
    def _inputs(self) -> tuple[ConversationConfig, int | None, pl.DataFrame]:
        """What Run (and Preview) would use: the config, the limit and the rows; raises, with why, if it cannot run."""
        if not self.session.model_loaded:
            raise ValueError("the model is still loading: wait until the status line says loaded, then press Run")
        reason = self.check_model()
        if reason is not None:
            raise ValueError(reason)
        config, limit = self.config(), (self.limit.value or None)
        rows = self.rows(limit)
        if rows.height == 0:
            raise ValueError("the run has no kept answers yet: run Answers below first")
        return config, limit, rows

    def run(self) -> Job | None:
        """Extend the run's kept answers in a worker thread (returns the Job); refused, with why, on a base model."""
        if self._job_busy():
            self._fail("conversations are already being grown: press Stop first")
            return None
        try:
            config, limit, rows = self._inputs()
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.error.value = ""
        self.last_config, self.last_limit = config, limit

        def work(report: Any, cancel: Any) -> pl.DataFrame:
            return extend_conversations(backend, rows, config, store=store, on_progress=report, cancel=cancel)

        return self._launch(Job(work, name="conversation"), "extending…")

    def _preview_work(self) -> Any:
        """Read the knobs and the rows Run would extend (the kernel thread); the work extends a few, unsaved."""
        config, _limit, rows = self._inputs()  # a refusal is Run's own reason, shown in the box
        backend = self.session.backend

        def work() -> Preview:
            return preview_conversation(backend, rows, config, full_rows=rows.height)

        return work

    # -- views -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the run's simulated conversations and redraw the counts and the table."""
        self._last_refresh = time.monotonic()
        try:
            convs = simulated_conversations(self.session.store.rows())
        except Exception as err:
            self.error.value = error_html(f"Conversation: cannot read the run: {err}")
            return
        kept = convs.filter(pl.col("status") == "kept").height if convs.height else 0
        self.counts.value = f"<b>{kept}</b> of {convs.height} conversations kept" if convs.height else ""
        if convs.height == 0:
            self.table.value = "<i>No conversations yet: answer some instructions, then press Extend answers.</i>"
            return
        body = []
        for r in convs.head(self.table_rows).iter_rows(named=True):
            turns = "<br>".join(f"<b>{html.escape(m['role'])}:</b> {html.escape(m['content'] or '')}"
                                for m in (r["messages"] or []))  # fmt: skip
            body.append(f"<tr><td>{html.escape(r['status'] or '')}</td><td>{html.escape(r['reason'] or '')}</td>"
                        f"<td>{turns}</td></tr>")  # fmt: skip
        self.table.value = ("<table class='wb-conversation-rows'><tr><th>status</th><th>reason</th>"
                            f"<th>conversation</th></tr>{''.join(body)}</table>")  # fmt: skip
