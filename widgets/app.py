"""The workbench app: every panel in tabs that follow the data, one session (one run, one model).

Seeds → Generate (self-instruct, evolve or Magpie, then answers, then conversations) → Filters → Inspect → Judge → Diversity →
Compare (two runs or two models side by side) → Export. Above the tabs: a
model picker (the default model, a GGUF path, or an OpenAI-compatible endpoint URL) and a status line
(model, tokens/s, rows); below them, one error area that shows what went wrong in any step and how to fix
it, instead of a traceback that scrolls away. Long steps (loading a model, generating, judging) run in a
`Job` worker thread with progress and Stop, so the kernel stays responsive. The app holds no state the
run directory cannot reproduce: rows, labels and rubric versions all live in the run.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.answers_panel import AnswersPanel
from widgets.app_recipe import aspect_view, log_finished_run, recipe_steps
from widgets.compare_panel import ComparePanel
from widgets.conversation_panel import ConversationPanel
from widgets.dashboard import DiversityPanel
from widgets.evolve_panel import EvolvePanel
from widgets.export_panel import ExportPanel
from widgets.filters_panel import FilterPanel
from widgets.inspector import InspectorPanel
from widgets.magpie_panel import MagpiePanel
from widgets.selfinstruct import SeedsPanel, SelfInstructPanel
from widgets.ui import row, tip
from workbench.engine import Backend, EngineError, default_model_path, load_backend
from workbench.jobs import Job
from workbench.pipeline.recipe import Step
from workbench.pipeline.step_log import record_step
from workbench.session import Session

__all__ = ["GENERATE_SECTIONS", "TAB_TITLES", "AnswersPanel", "Workbench", "spec_of"]

TAB_TITLES = ("Seeds", "Generate", "Filters", "Inspect", "Judge", "Diversity", "Compare", "Export")
GENERATE_SECTIONS = ("Self-instruct", "Evolve", "Magpie", "Conversation")
"""The Generate tab's sections: three ways to make instructions, and growing answers into conversations;
Answers sits below them, for whichever made the instructions."""
MODEL_HELP = (
    "Use 'default' (the bundled Gemma 3 270M), 'smollm2' (the bundled SmolLM2-135M-Instruct chat model), "
    "the path of a .gguf file, a Hugging Face GGUF such as hf://owner/repo/file.gguf or hf://owner/repo:Q4_K_M "
    "(downloaded once into the Hugging Face cache), or the URL of an OpenAI-compatible server such as "
    "http://127.0.0.1:8080/v1."
)


def _note(message: str, color: str = "#555") -> str:
    return f"<span style='color:{color}'>{html.escape(message)}</span>"


def _judge_panel(session: Session) -> tuple[W.Widget, str | None]:
    """The judge panel, or a note saying why it is not available (it is imported lazily)."""
    try:
        from widgets.judge import JudgePanel

        return JudgePanel(session), None
    except Exception as err:  # a missing optional piece must not take the whole app down
        reason = f"{type(err).__name__}: {err}"
        note = W.HTML(_note(f"The judge is not available in this install ({reason}).", "#b00020"))
        note.add_class("wb-judge-unavailable")
        return note, reason


class Workbench(W.VBox):
    """The whole workbench in one widget: `Workbench(run="my-run")` in a notebook cell.

    `model` is "default", a GGUF path, an OpenAI-compatible URL, or a loaded Backend; `run` names the run
    folder under `runs_root` (a new timestamped one when None; an existing run is reopened, never
    overwritten). `generate` and `answers` prefill knobs of those panels by attribute name, e.g.
    `generate={"num_instructions": 4, "rounds": 1}`. `errors` lists every error the app has shown."""

    def __init__(
        self,
        run: str | None = None,
        model: str | Path | Backend = "default",
        runs_root: str | Path = "runs",
        *,
        session: Session | None = None,
        generate: Mapping[str, Any] | None = None,
        answers: Mapping[str, Any] | None = None,
        preload: bool = True,
    ) -> None:
        self.session = session or Session(model, runs_root=runs_root, run=run)
        s = self.session
        self.model_spec = spec_of(s.backend) if s.model_loaded else s.model_spec  # what a recipe can reload
        self.errors: list[str] = []
        self.tokens_per_s: float | None = None
        self.load_job: Job | None = None
        s.store  # noqa: B018 - create (or reopen) the run now, so every panel reads the same folder

        self.seeds = SeedsPanel(s)
        self.generate = SelfInstructPanel(s, seeds_panel=self.seeds)
        self.evolve = EvolvePanel(s, seeds=lambda: self.seeds.seeds)
        self.magpie = MagpiePanel(s, seeds=lambda: self.seeds.seeds)
        self.answers = AnswersPanel(s)
        self.conversation = ConversationPanel(s)
        _prefill(self.generate, generate or {})
        _prefill(self.answers, answers or {})
        self.filters = FilterPanel(s, seeds=lambda: self.seeds.seeds)
        self.inspector = InspectorPanel(s)
        self.judge, self.judge_unavailable = _judge_panel(s)
        self.diversity = DiversityPanel(s)
        self.compare = ComparePanel(s)
        self.export = ExportPanel(s, steps=self.recipe_steps, seeds=lambda: self.seeds.seeds,
                                  model=lambda: self.model_spec)  # fmt: skip
        self.diversity.on_select(lambda ids: self.inspector.show_ids(ids, source=self.diversity.selection_summary))
        self.inspector.on_clear_ids(self.diversity.clear_selection)
        self._diversity_stale = True
        self._logged_jobs: dict[int, Job] = {}  # panel → its last Run that was logged
        self.filters.on_applied(lambda step: record_step(self.session.store, step))

        self.model_input = W.Text(value=self.model_spec, description="model", continuous_update=False,
                                  placeholder="default · smollm2 · model.gguf · hf://owner/repo:Q4_K_M · http://…/v1",
                                  layout=W.Layout(width="460px", max_width="100%"))  # fmt: skip
        self.model_input.add_class("wb-model-input")
        tip(self.model_input, "The model every tab uses: default, smollm2, a .gguf path, a hf:// GGUF, or a server URL.")
        self.identity_input = W.Text(value="", description="identity", continuous_update=False,
                                     placeholder="endpoints: e.g. qwen2.5-7b-instruct-q4_k_m",
                                     layout=W.Layout(width="300px", max_width="100%"))  # fmt: skip
        self.identity_input.add_class("wb-model-identity")
        tip(self.identity_input, "For a server URL: the model's name in row ids, so another URL of it resumes the same rows.")
        self.load_button = tip(W.Button(description="Load", icon="download"),
                               "Load the model named on the left (the current one stays until it has loaded).")  # fmt: skip
        self.load_button.add_class("wb-model-load")
        self.status = W.HTML()
        self.status.add_class("wb-status")
        self.status.add_class("wb-app-status")  # the inspector view uses wb-status inside its cards too
        self.error_box = W.HTML()
        self.error_box.add_class("wb-error")
        self.error_box.add_class("wb-app-error")
        self.dismiss_button = tip(W.Button(description="Dismiss", icon="times"), "Hide this message.")
        self.error_row = W.HBox([self.error_box, self.dismiss_button], layout=W.Layout(display="none"))
        # Answers stays visible under the sections: it answers the kept instructions whichever section made them.
        self.generate_sections = W.Tab(children=[self.generate, self.evolve, self.magpie, self.conversation],
                                        titles=GENERATE_SECTIONS)  # fmt: skip
        self.generate_sections.add_class("wb-generate-sections")
        self.generate_sections.observe(self._on_generate_section, names="selected_index")
        self.seeds.on_change(lambda _seeds: self.evolve.show_source())  # before any instruction, it evolves the seeds
        self.tabs = W.Tab(children=[
            self.seeds, W.VBox([self.generate_sections, self.answers]), self.filters, self.inspector, self.judge,
            self.diversity, self.compare, self.export,
        ], titles=TAB_TITLES)  # fmt: skip
        self.tabs.add_class("wb-tabs")

        self.load_button.on_click(lambda _b: self.load_model())
        self.dismiss_button.on_click(lambda _b: self.clear_error())
        self.tabs.observe(self._on_tab, names="selected_index")
        for panel in self._job_panels():
            panel.progress_label.observe(lambda _c, p=panel: self._on_job_progress(p), names="value")
        s.subscribe(self._on_session)
        header = row([W.HTML("<b>Synthetic Data Workbench</b>"), self.model_input, self.identity_input, self.load_button])
        super().__init__([header, self.status, self.error_row, self.tabs])
        self.add_class("wb-app")
        self._update_status()
        if preload and not s.model_loaded:
            self._start_load(None)

    # -- model -----------------------------------------------------------------------------------
    def load_model(self, spec: str | None = None) -> Job | None:
        """Load `spec` (default: the picker's text) in the background; the app keeps the old model
        until the new one has loaded, and a bad spec shows its error in the error area."""
        spec = (spec if spec is not None else self.model_input.value).strip() or "default"
        self.model_input.value = spec
        busy = [p for p in self._job_panels() if p.job is not None and p.job.running]
        if busy or (self.load_job is not None and self.load_job.running):
            self._report("Model: a step is still running; press its Stop button, then load the model again.")
            return None
        if self.identity_input.value.strip() and not spec.startswith(("http://", "https://")):
            # a GGUF is identified by its file's sha256; a typed name would let two files share row ids
            self._report("Model: identity is for server URLs only (a GGUF is identified by its sha256): "
                         "clear the identity field, then Load again.")  # fmt: skip
            return None
        return self._start_load(spec)

    def _start_load(self, spec: str | None) -> Job:
        """Load `spec` and switch to it on success; None loads the session's own model spec."""
        session = self.session

        identity = self.identity_input.value.strip()
        options = {"model_identity": identity} if spec is not None and identity else {}

        if spec is not None and spec.startswith("hf://"):
            # a first load downloads: show its size and speed in the status line (a trait, set from the worker)
            options["on_download"] = lambda p: self._update_status(p.describe())

        def work(_report: Any, _cancel: Any) -> Backend:
            return session.backend if spec is None else load_backend(spec, **options)

        job = Job(work, name="load-model")
        job.on_done.append(lambda j: self._on_loaded(j, spec))
        self.load_job = job
        self.load_button.disabled = True
        self._update_status(f"loading {spec or self.model_spec}…")
        return job.start()

    def _on_loaded(self, job: Job, spec: str | None) -> None:
        self.load_button.disabled = False
        shown = spec or self.model_spec
        if job.state == "failed":
            err = job.error
            if isinstance(err, (EngineError, FileNotFoundError, ImportError)):
                message = f"Model: {err}"
            else:
                message = f"Model: could not load {shown!r} ({type(err).__name__}: {err}). {MODEL_HELP}"
            if spec is not None:
                message = message.rstrip(". ") + f". The workbench keeps using {self.model_spec!r}."
            self._report(message)
            self._update_status()
            return
        if spec is not None:
            self.model_spec = spec
            self.session.use_model(job.result)
        self.clear_error()
        self._update_status(f"loaded {shown}")

    # -- recipe ----------------------------------------------------------------------------------
    def recipe_steps(self) -> list[Step]:
        """The steps Save recipe writes: each step as it ran, in run order, from the run's step log (see
        `widgets.app_recipe`); a run without a log falls back on its stages and the panels' knobs."""
        return recipe_steps(self)

    # -- errors and status -----------------------------------------------------------------------
    def _report(self, message: str) -> None:
        self.session.report_error(message)  # every panel's errors arrive the same way: `_on_session`

    def show_error(self, message: str) -> None:
        """Show `message` in the error area (what went wrong and how to fix it)."""
        self.errors.append(message)
        self.error_box.value = (
            "<div style='color:#b00020;border-left:4px solid #b00020;padding:4px 8px'>"
            f"<b>Something went wrong.</b> {html.escape(message)}<br><small>Rows already generated are kept "
            "in the run; fix the input above and try again.</small></div>"
        )
        self.error_row.layout.display = "flex"

    def clear_error(self) -> None:
        self.error_box.value = ""
        self.error_row.layout.display = "none"

    def _job_panels(self) -> list[Any]:
        panels: list[Any] = [self.generate, self.evolve, self.magpie, self.conversation, self.answers,
                             self.filters]  # filters: IFD scoring uses the model
        if self.judge_unavailable is None:
            panels += [self.judge, aspect_view(self)]  # "Rate each criterion" judges into the run too
        return panels

    def _on_job_progress(self, panel: Any) -> None:
        job = panel.job
        if job is not None and job.state in ("done", "cancelled") and self._logged_jobs.get(id(panel)) is not job:
            self._logged_jobs[id(panel)] = job  # each ended Run goes into the run's step log once
            try:
                log_finished_run(self, panel, self.session.store)
            except Exception as err:  # the rows are in the run; only the recipe would miss this step
                self._report(f"Recipe: could not log this step in the run's manifest ({err}); Save recipe "
                             "will miss it: check the run folder is writable")  # fmt: skip
        if job is not None and job.state == "done" and self.errors:
            prefix = {id(self.generate): "Self-instruct:", id(self.evolve): "Evolve:", id(self.magpie): "Magpie:",
                      id(self.conversation): "Conversation:", id(self.answers): "Answers:",
                      id(self.filters): "Filters:"}.get(id(panel), "Judge:")  # fmt: skip
            if self.errors[-1].startswith(prefix):  # the step that failed has now worked: its error is stale
                self.clear_error()
        if job is not None and job.progress is not None and job.progress.tokens_generated:
            self.tokens_per_s = job.progress.tokens_per_s
            self._update_status()

    def _on_generate_section(self, change: dict[str, Any]) -> None:
        section = GENERATE_SECTIONS[change["new"]] if change["new"] is not None else ""
        if section in ("Magpie", "Conversation"):  # the preloaded model emits no event: read its template when shown
            (self.magpie if section == "Magpie" else self.conversation).check_model()

    def _row_count(self) -> int:
        try:
            return int(self.session.store.scan().select(pl.len()).collect().item())
        except Exception:  # an empty run has no parts to scan yet
            return 0

    def _update_status(self, note: str = "") -> None:
        s = self.session
        model = html.escape(self.model_spec)
        if s.model_loaded:
            backend = s.backend
            model += f" <small>({html.escape(backend.name)})</small>"
        else:
            model += " <small>(not loaded)</small>"
        speed = "–" if self.tokens_per_s is None else f"{self.tokens_per_s:.0f}"
        tail = note or s.last_status
        self.status.value = (
            f"<b>model</b> {model} · <b>tok/s</b> {speed} · <b>rows</b> {self._row_count()}"
            f" · <b>run</b> {html.escape(s.run_name)}" + (f" · {html.escape(tail)}" if tail else "")
        )

    def _on_session(self, what: str) -> None:
        if what == "error" and self.session.last_error:
            self.show_error(self.session.last_error)
        elif what in ("rows", "run"):
            self._diversity_stale = True
            self._update_status()
        elif what in ("model", "status"):
            self._update_status()

    def _on_tab(self, change: dict[str, Any]) -> None:
        title = TAB_TITLES[change["new"]] if change["new"] is not None else ""
        if title == "Inspect":
            self.inspector.refresh()
        elif title == "Judge":
            if self.judge_unavailable is not None:
                self._retry_judge()
            else:
                self.judge.refresh()
        elif title == "Diversity" and self._diversity_stale and self._row_count() <= 5000:
            self._diversity_stale = False
            self.diversity.refresh()
        elif title == "Compare":
            self.compare.refresh()
        elif title == "Export":
            self.export.refresh()

    def _retry_judge(self) -> None:
        panel, reason = _judge_panel(self.session)
        if reason is None:
            self.judge, self.judge_unavailable = panel, None
            children = list(self.tabs.children)
            children[TAB_TITLES.index("Judge")] = panel
            self.tabs.children = children
            panel.progress_label.observe(lambda _c: self._on_job_progress(panel), names="value")


def spec_of(backend: Backend) -> str:
    """The model spec that loads `backend` again: "default", a GGUF path, an endpoint URL, or its name."""
    path = getattr(getattr(backend, "model", None), "path", None)
    if isinstance(path, Path):
        try:
            return "default" if path.resolve() == default_model_path().resolve() else str(path)
        except Exception:  # the default model package is missing: the path still identifies the model
            return str(path)
    url = getattr(backend, "base_url", None)
    return f"{url}/v1" if isinstance(url, str) else backend.name


def _prefill(panel: W.Widget, knobs: Mapping[str, Any]) -> None:
    """Set knobs of `panel` by attribute name (e.g. {"num_instructions": 4}); unknown names fail clearly."""
    for name, value in knobs.items():
        control = getattr(panel, name, None)
        if not isinstance(control, W.ValueWidget):
            valid = sorted(
                k for k, v in vars(panel).items() if isinstance(v, W.ValueWidget) and not k.startswith("_")
            )
            raise ValueError(f"{type(panel).__name__} has no knob {name!r}; knobs: {', '.join(valid)}")
        control.value = value
