"""The self-instruct panels, driven headless: set traits, click buttons, read what they show."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.generate.selfinstruct.test_pipeline import scripted  # the scripted fake model
from workbench.engine import FakeBackend
from workbench.session import Session

widgets_mod = pytest.importorskip("widgets.selfinstruct")
SeedsPanel, SelfInstructPanel = widgets_mod.SeedsPanel, widgets_mod.SelfInstructPanel


@pytest.fixture
def session(tmp_path):
    errors: list[str] = []
    s = Session(FakeBackend(responder=scripted), runs_root=tmp_path, run="panel")
    s.subscribe(lambda what: errors.append(s.last_error) if what == "error" else None)
    s.errors = errors
    return s


def test_seeds_panel_edit_add_remove_import(session, tmp_path):
    panel = SeedsPanel(session)
    assert "wb-seeds" in panel._dom_classes
    n = panel.seeds.height
    seen = []
    panel.on_change(seen.append)
    panel.instruction.value = "Name two planets with rings."
    panel.category.value = "science"
    panel.example_output.value = "Saturn and Uranus."
    panel.add_button.click()
    assert panel.seeds.height == n + 1 and seen
    new_id = panel.picker.value
    assert panel.seeds.filter(pl.col("id") == new_id)["category"][0] == "science"
    panel.instruction.value = "Name three planets with rings."
    panel.update_button.click()
    assert panel.seeds.filter(pl.col("id") == new_id)["instruction"][0] == "Name three planets with rings."
    panel.remove_button.click()
    assert panel.seeds.height == n
    # A malformed import is reported in the panel and through the session; the pool is untouched.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "ok task here"}) + "\n" + json.dumps({"instances": []}) + "\n")
    panel.import_path.value = str(bad)
    panel.import_button.click()
    assert "line 2" in panel.status.value and "instruction" in panel.status.value
    assert session.errors and "line 2" in session.errors[-1]
    assert panel.seeds.height == n
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"instruction": "Only task in this pool."}) + "\n")
    panel.import_path.value = str(good)
    panel.import_button.click()
    assert panel.seeds.height == 1


def test_run_threshold_slider_and_table(session):
    panel = SelfInstructPanel(session)
    assert {"wb-selfinstruct"} <= set(panel._dom_classes)
    assert "wb-selfinstruct-run" in panel.run_button._dom_classes
    assert "wb-selfinstruct-stop" in panel.stop_button._dom_classes
    assert "wb-selfinstruct-table" in panel.table._dom_classes
    panel.num_instructions.value, panel.rounds.value, panel.prompts_per_round.value = 6, 3, 6
    panel.seed.value = 3  # the seed the pipeline tests use: its candidates include filter bait
    panel.run_button.click()
    panel.job.wait(30)
    assert panel.job.state == "done", panel.job.error_text
    assert not panel.run_button.disabled and panel.stop_button.disabled
    stored = session.store.rows().filter(pl.col("stage") == "instruction")
    assert panel.rows.height == stored.height > 0
    assert "tok/s" in panel.progress_label.value
    assert "near_duplicate" in panel.table.value or "too_short" in panel.table.value
    kept_at_default = int((panel.view["status"] == "kept").sum())
    calls_before = len(session.backend.calls)
    panel.threshold.value = 0.05  # re-filter instantly: fewer kept, no model call
    kept_strict = int((panel.view["status"] == "kept").sum())
    assert kept_strict < kept_at_default
    assert f"<b>{kept_strict}</b> kept" in panel.counts.value
    assert len(session.backend.calls) == calls_before
    spec = panel.acceptance_chart.chart.to_dict()
    assert spec["data"]["values"][0]["round"] == 1
    panel.threshold.value = 0.7
    assert int((panel.view["status"] == "kept").sum()) == kept_at_default


def test_failure_is_shown_and_reported(session):
    class Broken(FakeBackend):
        def generate(self, requests, **kw):
            raise RuntimeError("llama.cpp died")

    session.use_model(Broken())
    panel = SelfInstructPanel(session)
    panel.run_button.click()
    panel.job.wait(30)
    assert panel.job.state == "failed"
    assert "llama.cpp died" in panel.error.value
    assert session.errors and "llama.cpp died" in session.errors[-1]
    # Invalid knobs fail before starting, with the reason.
    panel.k_human.value, panel.m_machine.value = 0, 0
    assert panel.run() is None
    assert "k_human + m_machine" in panel.error.value


def test_add_after_picking_a_seed_never_copies_its_example(session):
    """Issue 18.1: pick the haiku seed, type a new task, press Add: the new seed must not carry the
    haiku's input/output, and the panel says what it did. New clears the form."""
    panel = SeedsPanel(session)
    panel.picker.value = "wb_seed_2"  # the haiku seed, with an example output
    assert "Silent flakes" in panel.example_output.value
    assert "wb_seed_2" in panel.mode_label.value  # the form says which seed it is editing
    panel.instruction.value = "Name two planets with rings."
    panel.category.value = "science"
    panel.add_button.click()
    new = panel.seeds.filter(pl.col("id") == panel.picker.value).row(0, named=True)
    assert new["instruction"] == "Name two planets with rings." and new["category"] == "science"
    assert new["instances"] == []  # the haiku's example stayed with the haiku
    assert "not copied" in panel.status.value and "wb_seed_2" in panel.status.value
    haiku = panel.seeds.filter(pl.col("id") == "wb_seed_2").row(0, named=True)
    assert "Silent flakes" in haiku["instances"][0]["output"]  # untouched

    # New clears the whole form and the selection; a seed written from scratch keeps its own example.
    panel.picker.value = "wb_seed_2"
    panel.new_button.click()
    assert panel.picker.value is None
    assert (panel.instruction.value, panel.category.value, panel.example_input.value,
            panel.example_output.value) == ("", "", "", "")  # fmt: skip
    assert "new seed" in panel.mode_label.value.lower()
    panel.instruction.value = "Give the plural of the word below."
    panel.example_input.value, panel.example_output.value = "mouse", "mice"
    panel.add_button.click()
    mine = panel.seeds.filter(pl.col("id") == panel.picker.value).row(0, named=True)
    assert mine["instances"] == [{"input": "mouse", "output": "mice"}]

    # An example the person edited while a seed was picked is theirs: Add keeps it.
    panel.picker.value = "wb_seed_2"
    panel.instruction.value = "Write a haiku about the first rain of spring."
    panel.example_output.value = "Soft rain on the roof"
    panel.add_button.click()
    edited = panel.seeds.filter(pl.col("id") == panel.picker.value).row(0, named=True)
    assert edited["instances"] == [{"input": "", "output": "Soft rain on the roof"}]
    assert "not copied" not in panel.status.value
