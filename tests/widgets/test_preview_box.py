"""Preview buttons headless: a handful of rows and the full run's estimate, nothing written to the run;
and Save recipe takes each step's config from its last Run, not from knobs moved since."""

from __future__ import annotations

import html

import polars as pl

from tests.widgets.test_app import make_app
from widgets.preview_box import preview_table
from workbench.pipeline.recipe import CompletionsStep, SelfInstructStep


def test_self_instruct_preview_shows_rows_and_an_estimate_and_writes_nothing(tmp_path) -> None:
    app = make_app(tmp_path)
    panel = app.generate
    job = panel.preview.start()
    assert job is not None and job.wait(60).state == "done", job.error_text
    text = html.unescape(panel.preview.estimate.value)
    assert text.startswith("preview: ") and "a full run ≈" in text and "instruction:" in text
    assert "<table" in panel.preview.rows.value
    assert app.session.store.rows().height == 0


def test_answers_preview_needs_instructions_then_estimates_every_prompt(tmp_path) -> None:
    app = make_app(tmp_path)
    app.answers.preview.start()
    assert "no kept instructions" in html.unescape(app.answers.preview.estimate.value)
    job = app.generate.run()
    assert job is not None and job.wait(60).state == "done", job.error_text
    before = app.session.store.rows().height
    job = app.answers.preview.start()
    assert job is not None and job.wait(60).state == "done", job.error_text
    assert "completion:" in html.unescape(app.answers.preview.estimate.value)
    assert app.session.store.rows().height == before  # previews are never saved


def test_save_recipe_uses_what_each_step_ran_with(tmp_path) -> None:
    app = make_app(tmp_path)
    app.generate.temperature.value = 0.5
    assert app.generate.run().wait(60).state == "done"
    app.answers.k.value = 2
    assert app.answers.run().wait(60).state == "done"
    app.generate.temperature.value, app.answers.k.value = 1.3, 5  # moved after the runs
    steps = app.recipe_steps()
    si = next(s for s in steps if isinstance(s, SelfInstructStep))
    ans = next(s for s in steps if isinstance(s, CompletionsStep))
    assert si.config["sampling"]["temperature"] == 0.5 and ans.config.k == 2


def test_preview_table_cuts_long_text_and_says_how_many_are_hidden() -> None:
    rows = pl.DataFrame({"instruction": ["x" * 500] * 8, "text": ["y"] * 8})
    table = preview_table(rows, limit=3, width=20)
    assert table.count("<tr>") == 4 and "x" * 21 not in table and "5 more rows" in table
    assert "no rows" in preview_table(rows.head(0))
