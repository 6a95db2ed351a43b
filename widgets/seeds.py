"""The seed-pool editor: pick a seed to edit it, or start a new one, and import a seed file.

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

from widgets.ui import row, tip
from workbench.generate.seeds import SEED_SCHEMA, default_seeds, load_seeds
from workbench.session import Session

__all__ = ["SeedsPanel"]

_FULL = {"width": "auto", "flex": "1 1 auto"}  # a text box as wide as the panel, never wider


def _error_html(message: str) -> str:
    return f"<span class='wb-error' style='color:#b00020'>{html.escape(message)}</span>"


class SeedsPanel(widgets.VBox):
    """Edit, add, remove and import seed tasks. `seeds` is the current pool (a polars frame)."""

    def __init__(self, session: Session, seeds: pl.DataFrame | None = None) -> None:
        self.session = session
        self.seeds: pl.DataFrame = load_seeds(seeds) if seeds is not None else default_seeds()
        self._listeners: list[Any] = []
        self._shown_example: tuple[str, str] | None = None  # the picked seed's example, as loaded
        self.picker = tip(widgets.Select(options=[], rows=8, description="seeds", layout=_FULL),
                          "The seed pool: pick a seed to edit it in the form below.")  # fmt: skip
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
            widgets.Text(placeholder="path to .jsonl / .csv / .json / .parquet", description="import",
                         layout=_FULL),
            "The path of a seed file whose tasks replace the pool.",
        )  # fmt: skip
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
        super().__init__(
            [
                self.picker,
                self.mode_label,
                self.instruction,
                row([self.category, self.is_classification]),
                self.example_input,
                self.example_output,
                row([self.new_button, self.add_button, self.update_button, self.remove_button]),
                widgets.HBox([self.import_path, self.import_button], layout={"width": "100%"}),
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
        """The form's example as seed instances, and a note when a picked seed's example was left out."""
        inp, out = self.example_input.value, self.example_output.value
        if for_new and self.picker.value is not None and self._shown_example == (inp, out) and (inp or out):
            return [], f" without an example (the example shown was {self.picker.value}'s and was not copied)"
        return ([{"input": inp, "output": out}] if (inp or out) else []), ""

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
            self.status.value = _error_html(message)
            self.session.report_error(message)

    def new(self) -> None:
        """Clear the form and the selection: the next Add writes a seed from scratch."""
        self.picker.value = None
        self._shown_example = None
        self.instruction.value = self.category.value = ""
        self.example_input.value = self.example_output.value = ""
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
            self._shown_example = (self.example_input.value, self.example_output.value)

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

    def import_file(self, path: str | Path) -> None:
        def _import() -> None:
            if not str(path).strip():
                raise ValueError("give the path of a seed file to import")
            seeds = load_seeds(path)
            self._set(seeds, f"imported {seeds.height} seeds from {path}")

        self._guard(_import)

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
        first = row["instances"][0] if row["instances"] else {"input": "", "output": ""}
        self.example_input.value, self.example_output.value = first["input"], first["output"]
        self._shown_example = (first["input"], first["output"])
        self._show_mode()
