"""The seed-pool editor: pick a seed to edit it, or start a new one, and import seeds from a file, a
folder saved with `save_to_disk` or a Hugging Face dataset (`hf://owner/name[:split]`, columns mapped).

A seed's examples (its instances) are edited one at a time: the example picker chooses which one the
input/output boxes show, and Update saves every example of the seed.

The form is always in one of two modes, shown above it: editing a picked seed (Update saves it), or
a new seed (New clears the form). Add always saves the form as a *new* seed; when a seed is picked,
the example shown is that seed's, so Add leaves it with that seed unless the person edited it — a new
task must never silently inherit another task's few-shot example.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import polars as pl

from widgets.ui import error_html, row, tip
from workbench.generate.seeds import SEED_SCHEMA, default_seeds, load_seeds
from workbench.jobs import Job
from workbench.session import Session

__all__ = ["SeedsPanel"]

_FULL = {"width": "auto", "flex": "1 1 auto"}  # a text box as wide as the panel, never wider


class SeedsPanel(widgets.VBox):
    """Edit, add, remove and import seed tasks. `seeds` is the current pool (a polars frame)."""

    def __init__(self, session: Session, seeds: pl.DataFrame | None = None) -> None:
        self.session = session
        self.seeds: pl.DataFrame = load_seeds(seeds) if seeds is not None else default_seeds()
        self._listeners: list[Any] = []
        self._instances: list[dict[str, str]] = []  # the form's examples; the boxes show one of them
        self._shown_instances: list[dict[str, str]] = []  # the picked seed's examples, as loaded
        self.import_job: Job | None = None
        self._syncing = False
        self.picker = tip(widgets.Select(options=[], rows=8, description="seeds", layout=_FULL),
                          "The seed pool: pick a seed to edit it in the form below.")  # fmt: skip
        self.picker.add_class("wb-seeds-picker")
        self.mode_label = widgets.HTML()
        self.mode_label.add_class("wb-seeds-mode")
        self.instruction = tip(widgets.Textarea(description="instruction", layout=_FULL),
                               "The task, written as an instruction to the model.")  # fmt: skip
        self.category = tip(widgets.Text(description="category"), "A short topic name used to group seeds.")
        self.is_classification = tip(widgets.Checkbox(description="classification task", indent=False),
                                     "Tick when the answer is one of a few fixed labels.")  # fmt: skip
        self.example_input = tip(widgets.Textarea(description="example input", layout=_FULL),
                                 "Optional input the task works on (leave empty if the instruction says it all).")  # fmt: skip
        self.example_output = tip(widgets.Textarea(description="example output", layout=_FULL),
                                  "A good answer to this task, shown to the model as an example.")  # fmt: skip
        self.example_picker = tip(widgets.Dropdown(options=[("example 1 of 1", 0)], value=0,
                                                   description="example", layout={"width": "220px"}),
                                  "Which of this seed's examples the two boxes above show and edit.")  # fmt: skip
        self.add_example_button = tip(widgets.Button(description="Add example", icon="plus-square"),
                                      "Give this seed one more example (an empty one to fill in).")  # fmt: skip
        self.remove_example_button = tip(widgets.Button(description="Remove example", icon="minus-square"),
                                         "Drop the example shown from this seed.")  # fmt: skip
        self.example_picker.add_class("wb-seeds-example-picker")
        self.add_example_button.add_class("wb-seeds-add-example")
        self.remove_example_button.add_class("wb-seeds-remove-example")
        self.new_button = tip(widgets.Button(description="New", icon="file"),
                              "Clear the form to write a new seed from scratch.")  # fmt: skip
        self.add_button = tip(widgets.Button(description="Add as new seed", icon="plus"),
                              "Save the form as a new seed (a picked seed's example is not copied).")  # fmt: skip
        self.update_button = tip(widgets.Button(description="Update", icon="save"),
                                 "Save the form over the picked seed.")  # fmt: skip
        self.remove_button = tip(widgets.Button(description="Remove", icon="trash"),
                                 "Delete the picked seed from the pool.")  # fmt: skip
        for b in (self.new_button, self.add_button, self.update_button, self.remove_button):
            b.add_class("wb-seeds-" + b.description.split()[0].lower())
        self.import_path = tip(
            widgets.Text(placeholder=".jsonl / .csv / .json / .parquet path, saved dataset folder, or "
                         "hf://owner/name[:split]", description="import", layout=_FULL),
            "A seed file, a dataset folder or a Hugging Face dataset whose tasks replace the pool.",
        )  # fmt: skip
        self.map_instruction = tip(widgets.Text(description="instruction col", placeholder="instruction",
                                                layout={"width": "230px"}),
                                   "The column that holds the task (empty: a column named instruction).")  # fmt: skip
        self.map_input = tip(widgets.Text(description="input col", placeholder="(none)", layout={"width": "200px"}),
                             "The column that holds an example's input, if any.")  # fmt: skip
        self.map_output = tip(widgets.Text(description="output col", placeholder="(none)", layout={"width": "200px"}),
                              "The column that holds an example's answer, if any.")  # fmt: skip
        self.import_limit = tip(widgets.BoundedIntText(value=200, min=1, max=100_000, description="at most",
                                                       layout={"width": "170px"}),
                                "Import only the first rows of a large dataset.")  # fmt: skip
        self.import_button = tip(widgets.Button(description="Import (replace)", icon="upload"),
                                 "Replace the whole pool with the seeds in this file.")  # fmt: skip
        self.status = widgets.HTML()
        self.status.add_class("wb-seeds-status")
        self.picker.observe(self._on_pick, names="value")
        self.new_button.on_click(lambda _: self.new())
        self.add_button.on_click(lambda _: self.add())
        self.update_button.on_click(lambda _: self.update())
        self.remove_button.on_click(lambda _: self.remove())
        self.import_button.on_click(lambda _: self.import_file(self.import_path.value))
        self.example_picker.observe(self._on_example, names="value")
        self.add_example_button.on_click(lambda _: self._guard(self.add_example))
        self.remove_example_button.on_click(lambda _: self._guard(self.remove_example))
        super().__init__(
            [
                self.picker,
                self.mode_label,
                self.instruction,
                row([self.category, self.is_classification]),
                self.example_input,
                self.example_output,
                row([self.example_picker, self.add_example_button, self.remove_example_button]),
                row([self.new_button, self.add_button, self.update_button, self.remove_button]),
                widgets.HBox([self.import_path, self.import_button], layout={"width": "100%"}),
                row([self.map_instruction, self.map_input, self.map_output, self.import_limit]),
                self.status,
            ],
            layout={"width": "100%", "overflow_x": "hidden"},
        )
        self.add_class("wb-seeds")
        self._refresh()
        self._show_mode()

    def on_change(self, fn: Any) -> None:
        """Call `fn(seeds)` whenever the pool changes."""
        self._listeners.append(fn)

    def _example(self, *, for_new: bool) -> tuple[list[dict[str, str]], str]:
        """The form's examples as seed instances, and a note when a picked seed's examples were left out."""
        self._store_shown()
        instances = [i for i in self._instances if i["input"] or i["output"]]
        if for_new and self.picker.value is not None and instances and self._instances == self._shown_instances:
            return [], f" without an example (the examples shown were {self.picker.value}'s and were not copied)"
        return instances, ""

    def _store_shown(self) -> None:
        """Write the boxes back into the example they show."""
        if not self._instances:
            self._instances = [{"input": "", "output": ""}]
        k = min(int(self.example_picker.value or 0), len(self._instances) - 1)
        self._instances[k] = {"input": self.example_input.value, "output": self.example_output.value}

    def _show_examples(self, index: int) -> None:
        if not self._instances:
            self._instances = [{"input": "", "output": ""}]
        index = max(0, min(index, len(self._instances) - 1))
        n = len(self._instances)
        options = tuple((f"example {i + 1} of {n}", i) for i in range(n))
        self._syncing = True  # the picker moves here; its observer must not store the boxes again
        try:
            if tuple(self.example_picker.options) != options:
                self.example_picker.options = options
            self.example_picker.value = index
        finally:
            self._syncing = False
        shown = self._instances[index]
        self.example_input.value, self.example_output.value = shown["input"], shown["output"]
        self.remove_example_button.disabled = n == 1

    def _on_example(self, change: dict[str, Any]) -> None:
        old, new = change["old"], change["new"]
        if self._syncing or new is None or old == new or not self._instances:
            return
        if old is not None and old < len(self._instances):
            self._instances[old] = {"input": self.example_input.value, "output": self.example_output.value}
        self._show_examples(new)

    def add_example(self) -> None:
        """One more (empty) example for the form's seed; Update or Add saves it."""
        self._store_shown()
        self._instances.append({"input": "", "output": ""})
        self._show_examples(len(self._instances) - 1)

    def remove_example(self) -> None:
        """Drop the example shown (a seed keeps at least an empty one in the form)."""
        self._store_shown()
        if len(self._instances) <= 1:
            raise ValueError("this is the seed's only example; clear its boxes to save the seed without one")
        k = int(self.example_picker.value or 0)
        del self._instances[k]
        self._show_examples(min(k, len(self._instances) - 1))

    def _record(self, seed_id: str, *, for_new: bool = False) -> tuple[dict[str, Any], str]:
        text = self.instruction.value.strip()
        if not text:
            raise ValueError("the instruction is empty: write the task first")
        instances, note = self._example(for_new=for_new)
        rec = {
            "id": seed_id,
            "name": seed_id,
            "instruction": text,
            "instances": instances,
            "is_classification": bool(self.is_classification.value),
            "category": self.category.value.strip() or "uncategorized",
        }
        return rec, note

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as err:
            message = f"Seeds: {err}"
            self.status.value = error_html(message)
            self.session.report_error(message)

    def new(self) -> None:
        """Clear the form and the selection: the next Add writes a seed from scratch."""
        self.picker.value = None
        self.instruction.value = self.category.value = ""
        self.example_input.value = self.example_output.value = ""
        self._instances, self._shown_instances = [{"input": "", "output": ""}], []
        self._show_examples(0)
        self.is_classification.value = False
        self.status.value = ""
        self._show_mode()

    def add(self) -> None:
        def _add() -> None:
            taken = set(self.seeds["id"])
            n = self.seeds.height
            while f"user_seed_{n}" in taken:
                n += 1
            rec, note = self._record(f"user_seed_{n}", for_new=True)
            self._set(pl.concat([self.seeds, pl.DataFrame([rec], schema=SEED_SCHEMA)]), f"added {rec['id']}{note}")
            self.picker.value = rec["id"]

        self._guard(_add)

    def update(self) -> None:
        def _update() -> None:
            sid = self.picker.value
            if sid is None:
                raise ValueError("pick a seed to update (or press Add as new seed to save the form as a new one)")
            rec, _ = self._record(sid)
            new = pl.DataFrame([rec], schema=SEED_SCHEMA)
            rows = [new if r == sid else self.seeds.filter(pl.col("id") == r) for r in self.seeds["id"]]
            self._set(pl.concat(rows), f"updated {sid}")
            self._shown_instances = [dict(i) for i in self._instances]

        self._guard(_update)

    def remove(self) -> None:
        def _remove() -> None:
            sid = self.picker.value
            if sid is None:
                raise ValueError("pick a seed to remove")
            if self.seeds.height == 1:
                raise ValueError("the pool needs at least one seed")
            self._set(self.seeds.filter(pl.col("id") != sid), f"removed {sid}")

        self._guard(_remove)

    def import_file(self, path: str | Path) -> Job | None:
        """Replace the pool with the seeds at `path`, mapped by the column boxes. A Hugging Face dataset
        downloads in a worker thread (the returned Job); files load at once."""
        text = str(path).strip()
        mapping = {field: box.value.strip() for field, box in (("instruction", self.map_instruction),
                   ("input", self.map_input), ("output", self.map_output)) if box.value.strip()}  # fmt: skip
        if not text:
            self._guard(self._fail, "give the path of a seed file, a dataset folder or hf://owner/name to import")
            return None
        if not text.startswith("hf://"):
            self._guard(lambda: self._set(load_seeds(text, **mapping), f"imported seeds from {text}"))
            return None
        if self.import_job is not None and self.import_job.running:
            self._guard(self._fail, "an import is still running")
            return None
        limit = int(self.import_limit.value)

        def work(_report: Any, _cancel: Any) -> pl.DataFrame:
            return load_seeds(text, limit=limit, **mapping)

        def done(job: Job) -> None:
            self.import_button.disabled = False
            if job.state == "failed":
                self._guard(self._fail, str(job.error))
            elif job.result is not None:
                self._set(job.result, f"imported the first {job.result.height} rows of {text}")

        self.import_button.disabled = True
        self.status.value = html.escape(f"loading {text}… (a dataset not yet cached is downloaded once)")
        self.import_job = Job(work, name="import-seeds")
        self.import_job.on_done.append(done)
        return self.import_job.start()

    @staticmethod
    def _fail(message: str) -> None:
        raise ValueError(message)

    def _set(self, seeds: pl.DataFrame, message: str) -> None:
        self.seeds = seeds
        self._refresh()
        self.status.value = html.escape(f"{message} · {seeds.height} seeds")
        for fn in list(self._listeners):
            fn(seeds)

    def _refresh(self) -> None:
        current = self.picker.value
        self.picker.options = [
            (f"{r['id']} · {r['category']} · {r['instruction'][:70]}", r["id"])
            for r in self.seeds.iter_rows(named=True)
        ]
        if current in set(self.seeds["id"]):
            self.picker.value = current
        self._show_mode()

    def _show_mode(self) -> None:
        sid = self.picker.value
        if sid is None:
            self.mode_label.value = (
                "<b>New seed</b>: write the task and, optionally, one example; then press <i>Add as new seed</i>."
            )
        else:
            self.mode_label.value = (
                f"<b>Editing {html.escape(str(sid))}</b>: <i>Update</i> saves the form over it; "
                "<i>Add as new seed</i> saves it as a new seed (its example is only copied if you edit it)."
            )

    def _on_pick(self, change: dict[str, Any]) -> None:
        sid = change["new"]
        if sid is None:
            self._show_mode()
            return
        row = self.seeds.filter(pl.col("id") == sid).row(0, named=True)
        self.instruction.value = row["instruction"]
        self.category.value = row["category"]
        self.is_classification.value = bool(row["is_classification"])
        self._instances = [dict(i) for i in row["instances"]] or [{"input": "", "output": ""}]
        self._shown_instances = [dict(i) for i in self._instances]
        self._show_examples(0)
        self._show_mode()
