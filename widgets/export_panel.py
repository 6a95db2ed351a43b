"""The export panel: write the run as a TRL-ready dataset, or save what made it as a recipe file.

A thin view over `workbench.export.export_run` (SFT messages, DPO pairs or prompt-completion; as a
`save_to_disk` folder, Parquet or JSONL, each with a dataset card) and `workbench.pipeline.recipe.Recipe`
(model, seeds, steps, exports: the file `workbench run` replays headless). Nothing is ever overwritten
unless the overwrite box is ticked, and even then only a previous export or recipe file.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import ipywidgets as W
import polars as pl

from widgets.ui import tip
from workbench.export import ExportResult, ExportSpec, export_run, rubric_versions
from workbench.generate.seeds import default_seeds
from workbench.jobs import Job
from workbench.pipeline.recipe import ModelSpec, Recipe, SeedsSpec, Step
from workbench.session import Session

__all__ = ["FORMATS", "LATEST", "TARGETS", "ExportPanel", "version_options"]

FORMATS = (("SFT messages", "sft"), ("DPO pairs (prompt/chosen/rejected)", "dpo"),
           ("prompt-completion", "prompt_completion"))  # fmt: skip
TARGETS = (("save_to_disk folder", "disk"), ("Parquet", "parquet"), ("JSONL", "jsonl"))
LATEST = ""  # the picker's value for "the latest version of each rubric"


def version_options(versions: pl.DataFrame) -> list[tuple[str, str]]:
    """Picker options from `workbench.export.rubric_versions`: the latest of each rubric first, then one
    entry per version with its parent and its number of judgments."""
    options = [("latest version of each rubric", LATEST)]
    for r in versions.iter_rows(named=True):
        parent = f"edited from {r['parent_version'][:8]}" if r["parent_version"] else "first version"
        latest = " · latest" if r["latest"] else ""
        label = f"{r['rubric']} · {r['rubric_version'][:8]} · {parent} · {r['judgments']} judgments{latest}"
        options.append((label, r["rubric_version"]))
    return options


def _span(message: str, cls: str = "", color: str = "#1b7f3b") -> str:
    return f"<span class='{cls}' style='color:{color}'>{html.escape(message)}</span>"


class ExportPanel(W.VBox):
    """Choose a format, a target and a path; Export; or Save recipe.

    `steps`, `seeds` and `model` are callables the app passes to describe its current state for the
    recipe (the steps that made the run, the seed pool, the model spec). Without `steps`, Save recipe
    reuses the recipe recorded in the run's manifest (runs made by `workbench run`)."""

    def __init__(
        self,
        session: Session,
        *,
        steps: Callable[[], list[Step]] | None = None,
        seeds: Callable[[], pl.DataFrame] | None = None,
        model: Callable[[], str] | None = None,
    ) -> None:
        self.session = session
        self._steps, self._seeds, self._model = steps, seeds, model
        self.job: Job | None = None
        self.last_result: ExportResult | None = None
        self.last_recipe: Path | None = None
        self._auto_path = ""
        self.format = W.Dropdown(options=FORMATS, value="sft", description="format")
        self.target = W.Dropdown(options=TARGETS, value="parquet", description="file format")
        self.stage = W.Dropdown(
            options=["completion", "evolution"], value="completion", description="answers"
        )
        self.min_score = W.FloatText(0.0, description="min score", tooltip="0: keep every kept row")
        self.min_margin = W.FloatText(1.0, description="DPO margin")
        self.best_of = W.BoundedIntText(0, min=0, max=64, description="best of n",
                                        tooltip="keep only the n best-scored answers of each prompt (0: all)")
        self.rubric_version = W.Dropdown(
            options=[("latest version of each rubric", LATEST)], value=LATEST, description="rubric",
            tooltip="whose scores DPO pairs, min score and best-of use: one version, never a mix",
            layout=W.Layout(width="520px"),
        )
        self.path = W.Text(description="path", layout=W.Layout(width="520px"))
        self.overwrite = W.Checkbox(False, description="overwrite an existing export / recipe", indent=False)
        self.export_button = W.Button(description="Export", icon="file-export", button_style="primary")
        self.recipe_path = W.Text(description="recipe", layout=W.Layout(width="520px"))
        self.recipe_button = W.Button(description="Save recipe", icon="save")
        self.result = W.HTML()
        self.error = W.HTML()
        for control, text in (
            (self.format, "The dataset shape: SFT pairs, DPO preference pairs or prompt-completion rows."),
            (self.target, "The file format to write (or a Hugging Face datasets folder)."),
            (self.stage, "Which rows are the answers: completions or evolved prompts."),
            (self.min_score, "Keep only rows the judge scored at least this high (0 keeps every kept row)."),
            (self.min_margin, "For DPO, the least score gap between the chosen and the rejected answer."),
            (self.best_of, "Keep only the n best-scored answers of each prompt (0 keeps them all)."),
            (self.rubric_version, "Whose scores DPO pairs, min score and best-of use: one version, never a mix."),
            (self.path, "Where the export is written."),
            (self.overwrite, "Allow replacing a file or folder that already exists."),
            (self.export_button, "Write the dataset to the path above."),
            (self.recipe_path, "Where the recipe (the steps and knobs that made this run) is saved."),
            (self.recipe_button, "Save a recipe that replays this run headless or on a cluster."),
        ):
            tip(control, text)
        self.path.add_class("wb-export-path")
        self.export_button.add_class("wb-export-run")
        self.recipe_button.add_class("wb-export-recipe")
        self.result.add_class("wb-export-result")
        self.format.observe(lambda _c: self._default_paths(), names="value")
        self.target.observe(lambda _c: self._default_paths(), names="value")
        self.export_button.on_click(lambda _b: self.export())
        self.recipe_button.on_click(lambda _b: self.save_recipe())
        super().__init__([
            W.HTML("<b>Export</b> the run as a dataset TRL trainers load (with a dataset card)."),
            W.HBox([self.format, self.target, self.stage]),
            W.HBox([self.min_score, self.min_margin, self.best_of]),
            self.rubric_version,
            self.path, self.overwrite,
            W.HBox([self.export_button]),
            W.HTML("<b>Recipe</b>: the model, seeds and steps as a file <code>workbench run</code> replays."),
            W.HBox([self.recipe_path, self.recipe_button]),
            self.error, self.result,
        ])  # fmt: skip
        self.add_class("wb-export")
        self.refresh()

    # -- state -----------------------------------------------------------------------------------
    def spec(self) -> ExportSpec:
        """The export the controls describe."""
        return ExportSpec(
            format=self.format.value, kind=self.target.value, path=self.path.value.strip(),
            overwrite=self.overwrite.value, stage=self.stage.value,
            min_score=self.min_score.value or None, min_margin=self.min_margin.value,
            rubric_version=self.rubric_version.value or None, best_of=self.best_of.value or None,
        )  # fmt: skip

    def refresh(self) -> None:
        """Fill in default paths under the runs folder (until the user types their own) and list the
        rubric versions the run has judged with."""
        self._default_paths()
        store = self.session.store
        options = version_options(rubric_versions(store.rows(), store.manifest.get("rubrics")))
        keep = self.rubric_version.value if self.rubric_version.value in dict(options).values() else LATEST
        self.rubric_version.options = options
        self.rubric_version.value = keep

    def _default_paths(self) -> None:
        s = self.session
        auto = str(s.runs_root / "exports" / f"{s.run_name}-{self.format.value}-{self.target.value}")
        if not self.path.value or self.path.value == self._auto_path:
            self.path.value = auto
        self._auto_path = auto
        if not self.recipe_path.value:
            self.recipe_path.value = str(s.runs_root / f"{s.run_name}.recipe.yaml")

    # -- export ----------------------------------------------------------------------------------
    def export(self) -> Job | None:
        """Write the dataset in a worker thread (returns the Job); errors show here and in the app."""
        if self.job is not None and self.job.running:
            self._fail("an export is already running")
            return None
        try:
            spec = self.spec()
            if not spec.path:
                raise ValueError("give a path to export to")
            if Path(spec.path).exists() and not spec.overwrite:
                raise FileExistsError(f"{spec.path} already exists: tick 'overwrite' or choose another path")
            store = self.session.store
        except Exception as err:
            self._fail(f"cannot export: {err}")
            return None
        self.error.value, self.result.value = "", "exporting…"
        job = Job(lambda _report, _cancel: export_run(store, spec), name="export")
        job.on_done.append(self._on_exported)
        self.job = job
        self.export_button.disabled = True
        return job.start()

    def _on_exported(self, job: Job) -> None:
        self.export_button.disabled = False
        if job.state == "failed":
            self.result.value = ""
            self._fail(f"export failed: {job.error_text}")
            return
        res: ExportResult = job.result
        self.last_result = res
        columns = ", ".join(res.frame.columns[:6])
        self.result.value = _span(
            f"Wrote {res.rows} {res.format} rows as {res.kind} to {res.path} (columns: {columns}…); "
            "load it with workbench.export.load_export(path).",
            "wb-export-done",
        )

    # -- recipe ----------------------------------------------------------------------------------
    def recipe(self, seeds_path: Path | None = None) -> Recipe:
        """The recipe for the current state: model, seeds, steps, and the export the controls describe."""
        s = self.session
        steps = self._steps() if self._steps is not None else None
        if steps is None:
            recorded = s.store.manifest.get("recipe")
            if not recorded:
                raise ValueError(
                    "this run was not made by a recipe and no steps were given: run a step first"
                )
            base = Recipe.model_validate(recorded)
        else:
            if not steps:
                raise ValueError("nothing to save yet: the run has no generated rows (run Generate first)")
            model = self._model() if self._model is not None else s.model_spec
            seeds = SeedsSpec(source=str(seeds_path)) if seeds_path is not None else SeedsSpec()
            # an endpoint's chosen identity goes into the recipe, so its replay resumes the same row ids
            identity = getattr(s.backend, "model_identity", None) if s.model_loaded else None
            options: dict[str, object] = {"model_identity": identity} if identity else {}
            if model == "fake" and s.model_loaded and s.backend.chat_template:  # a fake chat model replays as one
                options["chat_template"] = s.backend.chat_template
            base = Recipe(name=s.run_name, model=ModelSpec(source=model, options=options), seeds=seeds, steps=steps)
        exports = list(base.exports)
        if self.path.value.strip() and not exports:
            exports.append(self.spec().model_copy(update={"overwrite": False}))
        return base.model_copy(update={"runs_root": str(s.runs_root), "exports": exports})

    def save_recipe(self) -> Path | None:
        """Write the recipe (and, when the seed pool was edited, the pool beside it as JSONL)."""
        self.error.value = ""
        try:
            path = Path(self.recipe_path.value.strip())
            if not path.name:
                raise ValueError("give a path for the recipe (.yaml, .yml or .json)")
            if path.exists() and not self.overwrite.value:
                raise FileExistsError(f"{path} already exists: tick 'overwrite' or choose another path")
            seeds_path = self._write_seeds(path)
            recipe = self.recipe(seeds_path)
            saved = recipe.save(path, overwrite=self.overwrite.value)
        except Exception as err:
            self._fail(f"cannot save the recipe: {err}")
            return None
        self.last_recipe = saved
        self.result.value = _span(
            f"Saved recipe {saved} ({len(recipe.steps)} steps: {', '.join(recipe.step_labels())}); "
            f"replay it headless with: workbench run {saved}",
            "wb-recipe-done",
        )
        return saved

    def _write_seeds(self, recipe_path: Path) -> Path | None:
        """Seeds edited in the app are saved beside the recipe; the default pool needs no file."""
        if self._seeds is None:
            return None
        seeds = self._seeds()
        if seeds.equals(default_seeds()):
            return None
        out = recipe_path.with_name(recipe_path.name.split(".")[0] + ".seeds.jsonl")
        if out.exists() and not self.overwrite.value:
            raise FileExistsError(f"{out} (the edited seed pool) already exists: tick 'overwrite'")
        out.parent.mkdir(parents=True, exist_ok=True)
        seeds.write_ndjson(out)
        return out

    def _fail(self, message: str) -> None:
        full = f"Export: {message}"
        self.error.value = _span(full, "wb-error", "#b00020")
        self.session.report_error(full)
