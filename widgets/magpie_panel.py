"""The Magpie section of the Generate tab: a chat model writes user requests from its template's opening alone.

A thin view over `workbench.generate.magpie.run_magpie`: how many user turns, how many turns per conversation,
sampling; Run samples in a `Job` worker thread with progress and Stop, and the table shows every user turn
with the filter's verdict (and, with more than one turn, each conversation). Magpie needs the model's chat
template (its prefix is cut from it), so on a base model such as the default Gemma 270M the panel says why it
cannot run and what to load instead, with Run disabled (and Preview says the same). Preview writes a few user
turns in a scratch run (nothing saved) and estimates a full Run's time. `last_config` keeps the config the last Run used.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.job_controls import LiveStepMixin
from widgets.preview_box import PreviewBox
from widgets.ui import error_html, row, tip
from workbench.engine import Backend, NoChatTemplateError
from workbench.generate.magpie import MagpieConfig, magpie_prefix, run_magpie
from workbench.jobs import Job
from workbench.pipeline.preview import Preview, preview_magpie
from workbench.session import Session

__all__ = ["CHAT_MODEL_HINT", "MagpiePanel", "magpie_conversations", "magpie_instructions", "magpie_unavailable"]

CHAT_MODEL_HINT = (
    "Type smollm2 in the model box above and press Load (the bundled SmolLM2-135M-Instruct chat model), or "
    "load another chat/instruct GGUF; Self-instruct and Evolve work with base models."
)
_STYLE = (
    "<style>.wb-magpie table{border-collapse:collapse;max-width:100%;line-height:1.4}.wb-magpie th,.wb-magpie td"
    "{padding:3px 8px;text-align:left;vertical-align:top}.wb-magpie th{white-space:nowrap}.wb-magpie td"
    "{overflow-wrap:anywhere;white-space:pre-wrap}.wb-magpie tr:nth-child(even) td{background:#f6f6f6}"
    ".wb-magpie .wb-magpie-role{color:#555;font-weight:bold}</style>"
)


def magpie_unavailable(backend: Backend) -> str | None:
    """Why Magpie cannot run on `backend` (it has no usable chat template) and what to load instead, or None
    when it can."""
    if not backend.chat_template:
        return (f"{backend.name} is a base model (it has no chat template), and Magpie's prompt is the opening "
                f"of a user turn cut from the chat template. {CHAT_MODEL_HINT}")  # fmt: skip
    try:
        magpie_prefix(backend.chat_template, model_name=backend.name)
    except NoChatTemplateError as err:
        return f"{err}. {CHAT_MODEL_HINT}"
    return None


def magpie_instructions(rows: pl.DataFrame) -> pl.DataFrame:
    """The run's Magpie user turns (instruction rows whose source is magpie), each id once, in run order."""
    if rows.height == 0 or not {"stage", "source"} <= set(rows.columns):
        return pl.DataFrame(schema={"id": pl.Utf8, "status": pl.Utf8, "reason": pl.Utf8, "text": pl.Utf8})
    return rows.filter((pl.col("stage") == "instruction") & (pl.col("source") == "magpie")).unique(
        "id", keep="first", maintain_order=True
    )


def magpie_conversations(rows: pl.DataFrame) -> pl.DataFrame:
    """The run's Magpie conversations (n_turns > 1), each id once, in run order."""
    if rows.height == 0 or not {"stage", "source", "messages"} <= set(rows.columns):
        return pl.DataFrame(schema={"id": pl.Utf8, "status": pl.Utf8, "reason": pl.Utf8})
    return rows.filter((pl.col("stage") == "conversation") & (pl.col("source") == "magpie")).unique(
        "id", keep="first", maintain_order=True
    )


class MagpiePanel(LiveStepMixin, W.VBox):
    """Knobs of `MagpieConfig`, Run/Stop with progress, and what Magpie wrote; Run is disabled (with the
    reason shown) when the session's model has no chat template. `seeds` gives the seed tasks a user turn
    must not be too similar to (None: no seeds)."""

    step_name = "Magpie"

    def __init__(
        self, session: Session, *, seeds: Callable[[], pl.DataFrame] | None = None, table_rows: int = 40
    ) -> None:
        self.session = session
        self._seeds = seeds
        self.table_rows = table_rows
        self.job: Job | None = None
        self.last_config: MagpieConfig | None = None
        """The exact config the last Run used, None before any Run."""
        self.unavailable: str | None = None
        """Why Magpie cannot run on the current model (None: it can, or the model has not loaded yet)."""
        self._last_refresh = 0.0
        d = MagpieConfig()
        self.num_prompts = W.BoundedIntText(d.num_prompts, min=1, max=100_000, description="user turns to write")
        self.n_turns = W.BoundedIntText(d.n_turns, min=1, max=16, description="user turns per conversation")
        self.temperature = W.FloatSlider(d.sampling.temperature, min=0.0, max=2.0, step=0.05, description="temperature")
        self.max_tokens = W.IntSlider(d.sampling.max_tokens, min=8, max=512, description="max tokens per user turn")
        self.answer_tokens = W.IntSlider(d.answer_sampling.max_tokens, min=8, max=1024, description="max tokens per answer")
        self.threshold = W.FloatSlider(d.similarity_threshold, min=0.0, max=1.0, step=0.01, description="drop if ROUGE-L above")
        self.seed = W.BoundedIntText(0, min=0, max=2**32 - 1, description="seed")
        self._make_job_controls(
            "magpie",
            "Run Magpie",
            "comments",
            "Have the chat model write user requests from its template's opening alone.",
            "Stop after the rows in flight; finished rows stay in the run.",
        )
        for control, text in (
            (self.num_prompts, "How many user requests to sample from the template's opening."),
            (self.n_turns, "With more than 1, each kept request grows into a conversation with this many user turns."),
            (self.temperature, "Sampling randomness of the user turns: 0 always picks the likeliest word, higher is more varied."),
            (self.max_tokens, "The longest a user turn may be, in tokens."),
            (self.answer_tokens, "The longest an assistant answer inside a conversation may be, in tokens."),
            (self.threshold, "Drop a user turn whose word overlap with a seed or an earlier turn is above this."),
            (self.seed, "The random seed that makes the run repeat exactly."),
        ):
            tip(control, text)
        self.availability = W.HTML()
        self.availability.add_class("wb-magpie-availability")
        self.counts = W.HTML()
        self.error = W.HTML()
        self.table = W.HTML()
        self.table.add_class("wb-magpie-table")
        session.subscribe(self._on_session_event)
        self.preview = PreviewBox("magpie", self._preview_work, what="Magpie")
        super().__init__([
            W.HTML(_STYLE + "<b>Magpie</b>: a chat model writes user requests itself from the opening of a user "
                   "turn in its chat template; no seeds are needed."),
            self.availability,
            row([self.num_prompts, self.n_turns, self.seed]),
            row([self.temperature, self.max_tokens, self.answer_tokens]),
            row([self.threshold]),
            row([self.run_button, self.stop_button, self.preview.button, self.progress, self.progress_label]),
            self.preview,
            self.error,
            self.counts,
            self.table,
        ])  # fmt: skip
        self.add_class("wb-magpie")
        self.check_model()
        self.refresh()

    # -- the model -----------------------------------------------------------------------------
    def check_model(self) -> str | None:
        """Re-read whether the session's model can run Magpie; disable Run with the reason if not. A model
        still loading is not waited for (Run re-checks)."""
        if self._job_busy():
            return self.unavailable
        if not self.session.model_loaded:
            self.unavailable = None
            self.availability.value = "<i>The model is still loading: Magpie checks its chat template once it has loaded.</i>"
            self.run_button.disabled = False
            return None
        self.unavailable = magpie_unavailable(self.session.backend)
        if self.unavailable is None:
            name = html.escape(self.session.backend.name)
            self.availability.value = f"<span style='color:#1b7f3b'>{name} has a chat template: Magpie can run.</span>"
        else:
            self.availability.value = (
                "<div style='color:#8a5300;border-left:4px solid #e0a800;padding:4px 8px'>"
                f"<b>Magpie cannot run.</b> {html.escape(self.unavailable)}</div>"
            )
        self.run_button.disabled = self.unavailable is not None
        return self.unavailable

    # -- config --------------------------------------------------------------------------------
    def config(self) -> MagpieConfig:
        """The Magpie config the knobs describe."""
        d = MagpieConfig()
        sampling = d.sampling.model_copy(update={"temperature": self.temperature.value, "max_tokens": self.max_tokens.value})
        answers = d.answer_sampling.model_copy(update={"max_tokens": self.answer_tokens.value})
        return MagpieConfig(num_prompts=self.num_prompts.value, n_turns=self.n_turns.value, sampling=sampling,
                            answer_sampling=answers, similarity_threshold=self.threshold.value,
                            seed=self.seed.value)  # fmt: skip

    # -- running -------------------------------------------------------------------------------
    def _runnable(self) -> None:
        """Raise, with why, when Magpie cannot run now: the model is still loading or has no chat template."""
        if not self.session.model_loaded:
            raise ValueError("the model is still loading: wait until the status line says loaded, then press Run")
        reason = self.check_model()
        if reason is not None:
            raise ValueError(reason)

    def run(self) -> Job | None:
        """Start Magpie in a worker thread (returns the Job); refused with the reason on a base model."""
        if self._job_busy():
            self._fail("Magpie is already running: press Stop first")
            return None
        try:
            self._runnable()
            config = self.config()
            seeds = self._seeds() if self._seeds is not None else None
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.error.value = ""
        self.last_config = config

        def work(report: Any, cancel: Any) -> pl.DataFrame:
            return run_magpie(backend, store, config, seeds=seeds, on_progress=report, cancel=cancel)

        return self._launch(Job(work, name="magpie"), "starting…")

    def _preview_work(self) -> Any:
        """Read the knobs (the kernel thread); refused with Run's own reason on a base model, never a traceback."""
        try:
            self._runnable()
        except ValueError as err:
            raise ValueError(f"Magpie cannot run: {err}") from None
        config, backend = self.config(), self.session.backend
        seeds = self._seeds() if self._seeds is not None else None

        def work() -> Preview:
            return preview_magpie(backend, config, seeds)

        return work

    # -- views ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the run's Magpie rows and redraw the counts and the table."""
        self._last_refresh = time.monotonic()
        try:
            rows = self.session.store.rows()
        except Exception as err:
            self.error.value = error_html(f"Magpie: cannot read the run: {err}")
            return
        turns, convs = magpie_instructions(rows), magpie_conversations(rows)
        counts = {s: turns.filter(pl.col("status") == s).height for s in ("kept", "dropped", "error")}
        text = f"<b>{counts['kept']}</b> user turns kept · <b>{counts['dropped']}</b> dropped · {counts['error']} errors"
        if convs.height:
            text += f" · <b>{convs.filter(pl.col('status') == 'kept').height}</b> of {convs.height} conversations kept"
        self.counts.value = text if turns.height else ""
        self.table.value = self._conversations_html(convs) if convs.height else self._turns_html(turns)

    def _turns_html(self, turns: pl.DataFrame) -> str:
        if turns.height == 0:
            return "<i>No user turns yet: press Run Magpie.</i>"
        head = "<tr><th>status</th><th>reason</th><th>user turn</th></tr>"
        body = [
            f"<tr><td style='color:{_color(r['status'])}'>{html.escape(r['status'] or '')}</td>"
            f"<td>{html.escape(r['reason'] or '')}</td><td>{html.escape(r['text'] or '') or '<i>(empty)</i>'}</td></tr>"
            for r in turns.head(self.table_rows).iter_rows(named=True)
        ]
        return f"<table class='wb-magpie-turns'>{head}{''.join(body)}</table>"

    def _conversations_html(self, convs: pl.DataFrame) -> str:
        head = "<tr><th>status</th><th>reason</th><th>conversation</th></tr>"
        body = []
        for r in convs.head(self.table_rows).iter_rows(named=True):
            turns = "<br>".join(
                f"<span class='wb-magpie-role'>{html.escape(m['role'])}:</span> {html.escape(m['content'] or '')}"
                for m in (r["messages"] or [])
            )
            body.append(f"<tr><td style='color:{_color(r['status'])}'>{html.escape(r['status'] or '')}</td>"
                        f"<td>{html.escape(r['reason'] or '')}</td><td>{turns}</td></tr>")  # fmt: skip
        return f"<table class='wb-magpie-conversations'>{head}{''.join(body)}</table>"


def _color(status: str | None) -> str:
    return {"kept": "#1b7f3b", "dropped": "#b00020"}.get(status or "", "#666")
