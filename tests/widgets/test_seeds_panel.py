"""The Seeds tab headless: every example of a seed is editable, and seeds import from datasets with a
column mapping (a `save_to_disk` folder here; `hf://` loading itself is tested in tests/generate)."""

from __future__ import annotations

import html
from pathlib import Path

import datasets
import polars as pl
import pytest

from widgets.seeds import SeedsPanel
from workbench.engine import FakeBackend
from workbench.session import Session

POOL = [
    {"id": "t1", "instruction": "Sort the numbers.", "category": "maths",
     "instances": [{"input": "3 1 2", "output": "1 2 3"}, {"input": "9 7", "output": "7 9"}]},
    {"id": "t2", "instruction": "Name a colour.", "instances": []},
]  # fmt: skip


@pytest.fixture
def panel(tmp_path: Path) -> SeedsPanel:
    session = Session(FakeBackend(), runs_root=tmp_path, run="seeds")
    return SeedsPanel(session, seeds=pl.DataFrame(POOL))


def _instances(panel: SeedsPanel, seed_id: str) -> list[dict[str, str]]:
    return list(panel.seeds.filter(pl.col("id") == seed_id)["instances"][0])


def test_every_example_of_a_seed_is_shown_and_saved(panel: SeedsPanel) -> None:
    panel.picker.value = "t1"
    assert [label for label, _ in panel.example_picker.options] == ["example 1 of 2", "example 2 of 2"]
    assert (panel.example_input.value, panel.example_output.value) == ("3 1 2", "1 2 3")
    panel.example_picker.value = 1
    assert (panel.example_input.value, panel.example_output.value) == ("9 7", "7 9")
    panel.example_output.value = "7, 9"
    panel.example_picker.value = 0  # switching keeps the edit of example 2
    panel.example_input.value = "3 2 1"
    panel.update_button.click()
    assert _instances(panel, "t1") == [{"input": "3 2 1", "output": "1 2 3"}, {"input": "9 7", "output": "7, 9"}]


def test_examples_can_be_added_and_removed(panel: SeedsPanel) -> None:
    panel.picker.value = "t1"
    panel.add_example_button.click()
    assert panel.example_picker.value == 2 and panel.example_input.value == ""
    panel.example_input.value, panel.example_output.value = "5 4", "4 5"
    panel.update_button.click()
    assert [i["output"] for i in _instances(panel, "t1")] == ["1 2 3", "7 9", "4 5"]
    panel.example_picker.value = 0
    panel.remove_example_button.click()
    panel.update_button.click()
    assert [i["output"] for i in _instances(panel, "t1")] == ["7 9", "4 5"]
    assert panel.example_output.value == "7 9"


def test_the_only_example_cannot_be_removed_and_says_why(panel: SeedsPanel) -> None:
    panel.picker.value = "t2"
    assert panel.remove_example_button.disabled
    panel.remove_example_button.click()  # even when clicked anyway, it explains and keeps the example
    assert "only example" in panel.status.value
    assert panel.example_picker.options == (("example 1 of 1", 0),)


def test_add_as_new_copies_no_examples_unless_edited(panel: SeedsPanel) -> None:
    panel.picker.value = "t1"
    panel.instruction.value = "Sort the words."
    panel.add_button.click()
    new = panel.picker.value
    assert new != "t1" and _instances(panel, new) == []
    assert "not copied" in panel.status.value
    panel.picker.value = "t1"
    panel.example_picker.value = 1
    panel.example_output.value = "seven, nine"
    panel.instruction.value = "Sort the numbers, spelled."
    panel.add_button.click()
    assert [i["output"] for i in _instances(panel, panel.picker.value)] == ["1 2 3", "seven, nine"]


def test_new_starts_with_one_empty_example(panel: SeedsPanel) -> None:
    panel.picker.value = "t1"
    panel.new_button.click()
    assert panel.example_picker.options == (("example 1 of 1", 0),)
    assert (panel.example_input.value, panel.example_output.value) == ("", "")


def test_import_a_saved_dataset_with_mapped_columns(panel: SeedsPanel, tmp_path: Path) -> None:
    rows = {"question": ["What is 2+2?", "Spell 'cat'."], "answer": ["4", "c-a-t"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    panel.import_path.value = str(tmp_path / "ds")
    panel.import_button.click()
    assert "needs an 'instruction' column" in html.unescape(panel.status.value)
    panel.map_instruction.value, panel.map_output.value = "question", "answer"
    panel.import_button.click()
    assert panel.seeds["instruction"].to_list() == rows["question"]
    assert [i[0]["output"] for i in panel.seeds["instances"].to_list()] == rows["answer"]


def test_a_hub_import_runs_in_a_worker_and_reports_a_bad_name(panel: SeedsPanel) -> None:
    before = panel.seeds
    panel.import_path.value = "hf://not a name"
    job = panel.import_file(panel.import_path.value)
    assert job is not None
    job.wait(30)
    assert job.state == "failed" and "hf://owner/name" in panel.status.value
    assert panel.seeds.equals(before) and not panel.import_button.disabled
