"""The workbench app driven headless as a person would: set traits, click buttons, read what it shows and
what reached the run. A scripted FakeBackend keeps these fast; one test loads the real default model
through the model picker."""

from __future__ import annotations

import html
import re
import sys
import threading

import ipywidgets
import polars as pl
import pytest

from tests.generate.selfinstruct.test_pipeline import scripted  # self-instruct candidates incl. filter bait
from widgets import Workbench
from widgets.app import TAB_TITLES, spec_of
from widgets.ui import controls_in
from workbench.engine import FakeBackend, GenerationRequest
from workbench.export import load_export
from workbench.pipeline.recipe import load_recipe
from workbench.pipeline.runner import run_recipe
from workbench.session import Session

SMALL = {"num_instructions": 6, "rounds": 3, "prompts_per_round": 6, "seed": 3}


def responder(req: GenerationRequest) -> str:
    """Judge prompts get a score that grows with the answer's length; everything else is scripted."""
    text = req.prompt or req.messages[-1]["content"]  # type: ignore[index]
    graded = re.search(r"Response to grade:\n(.*?)(?:\n\n|\nFeedback:|\Z)", text, re.S)
    if graded:
        return f" Judged by length.\nScore: {min(5, 1 + len(graded.group(1)) // 12)}"
    return scripted(req)


def make_app(tmp_path, backend=None, run="app", **kw) -> Workbench:
    session = Session(backend or FakeBackend(responder=responder), runs_root=tmp_path / "runs", run=run)
    return Workbench(session=session, generate=SMALL, **kw)


def _tab(app: Workbench, title: str) -> None:
    app.tabs.selected_index = TAB_TITLES.index(title)


def test_layout_classes_and_shared_session(tmp_path):
    app = make_app(tmp_path)
    assert "wb-app" in app._dom_classes and "wb-tabs" in app.tabs._dom_classes
    assert (
        "wb-model-input" in app.model_input._dom_classes and "wb-model-load" in app.load_button._dom_classes
    )
    assert {"wb-status"} <= set(app.status._dom_classes) and "wb-error" in app.error_box._dom_classes
    assert app.tabs.titles == ("Seeds", "Generate", "Filters", "Inspect", "Judge", "Diversity", "Compare", "Export")
    panels = [app.seeds, app.generate, app.answers, app.filters, app.inspector, app.judge, app.diversity, app.export]
    assert all(p.session is app.session for p in panels)  # one run, one model
    assert app.load_job is None  # a given backend is already loaded: nothing to preload
    assert app.model_input.value == "fake"
    assert "rows</b> 0" in app.status.value and "fake" in app.status.value
    assert app.error_row.layout.display == "none"
    assert app.generate.num_instructions.value == 6 and app.generate.rounds.value == 3  # prefilled knobs


JARGON = re.compile(r"^(k human|m machine|target|per round|ROUGE-L >|reasoning ≤|desc|judge|sample)$")


def test_every_control_has_a_plain_label_and_a_one_sentence_tooltip(tmp_path):
    """Issue 18.7: unexplained knobs ("k human / m machine") and cut-off labels; every control gets a
    readable label and a tooltip of one sentence."""
    app = make_app(tmp_path)
    controls = controls_in(app)
    assert len(controls) > 40  # the walk reaches every tab

    def name(w) -> str:
        return f"{type(w).__name__}({getattr(w, 'description', '') or getattr(w, 'placeholder', '')!r})"

    missing = [name(w) for w in controls if not (w.tooltip or "").strip()]
    assert missing == []
    several = [name(w) for w in controls if not re.fullmatch(r"[^.!?]+(\.[\w)]+[^.!?]*)*[.!?]", w.tooltip.strip())]
    assert several == []  # one sentence each
    jargon = [name(w) for w in controls if JARGON.match(str(getattr(w, "description", "")))]
    assert jargon == []
    fixed = [name(w) for w in controls if isinstance(w, ipywidgets.Button) and (w.layout.width or "auto") != "auto"]
    assert fixed == []  # fixed-width buttons cut their text ("di…" on dismiss)
    narrow = [name(w) for w in controls if hasattr(w.style, "description_width")
              and getattr(w, "description", "") and w.style.description_width != "initial"]  # fmt: skip
    assert narrow == []  # a fixed label column cuts longer labels ("temperat…", "answers e…")


def test_unknown_knob_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"no knob 'targett'.*num_instructions"):
        Workbench(session=Session(FakeBackend(), runs_root=tmp_path), generate={"targett": 3})


def test_whole_flow_generate_inspect_answer_judge_diversity_export_recipe(tmp_path):
    app = make_app(tmp_path)
    store = app.session.store
    app.generate.run_button.click()
    assert app.generate.job.wait(60).state == "done", app.generate.job.error_text
    instructions = store.rows().filter(pl.col("stage") == "instruction")
    assert instructions.height >= 6
    # Status line: rows in the run and the generation's tokens/s.
    assert f"rows</b> {store.rows().height}" in app.status.value
    assert app.tokens_per_s and app.tokens_per_s > 0
    # The inspector followed the run's "rows" event: every instruction is a card.
    _tab(app, "Inspect")
    assert app.inspector.view.total == instructions.height
    assert {c["id"] for c in app.inspector.view.cards} <= set(instructions["id"])

    app.answers.k.value = 2
    app.answers.run_button.click()
    assert app.answers.job.wait(60).state == "done", app.answers.job.error_text
    completions = store.rows().filter(pl.col("stage") == "completion")
    kept = instructions.filter(pl.col("status") == "kept")
    assert completions.height == 2 * kept.height and set(completions["parent_id"]) == set(kept["id"])

    _tab(app, "Judge")
    app.judge.sample_size.value = 4
    app.judge.run_button.click()
    assert app.judge.job.wait(60).state == "done", app.judge.job.error_text
    judgments = store.rows().filter(pl.col("stage") == "judgment")
    assert judgments.height == 4 and judgments["score"].drop_nulls().len() == 4

    # Diversity refreshes when its tab opens after new rows; a chart selection filters the inspector.
    _tab(app, "Diversity")
    assert "lengths" in app.diversity.charts
    table = app.diversity._tables["lengths"]
    first_bin = table.row(0, named=True)
    picks = [{k: first_bin[k] for k in table.columns if k != "id"}]
    ids = app.diversity.select("lengths", picks)
    assert ids and app.inspector.query.ids == tuple(ids)
    assert app.inspector.view.total <= len(ids)
    # ...and the inspector says so, with a way back (issue 18.3); clearing it there clears the chart's note.
    assert "lengths chart" in app.inspector.chart_filter_label.value
    assert app.inspector.chart_filter.layout.display == "flex" and app.diversity.selection_label.value
    app.inspector.clear_ids_button.click()
    assert app.inspector.query.ids is None and app.diversity.selection_label.value == ""
    app.diversity.select("lengths", picks)
    app.diversity.select("lengths", [])  # a double-click empties the chart selection: every row again
    assert app.inspector.query.ids is None and app.inspector.chart_filter.layout.display == "none"

    _tab(app, "Export")
    app.export.format.value, app.export.target.value = "sft", "jsonl"
    assert app.export.path.value.endswith("app-sft-jsonl")
    app.export.export_button.click()
    assert app.export.job.wait(60).state == "done", app.export.job.error_text
    exported = load_export(app.export.path.value)
    assert len(exported) == completions.height and "wb-export-done" in app.export.result.value

    app.export.recipe_button.click()
    recipe = load_recipe(app.export.last_recipe)
    assert [s.kind for s in recipe.steps] == ["self_instruct", "completions", "judge"]
    assert recipe.model.source == "fake" and recipe.steps[0].config["num_instructions"] == 6
    assert recipe.steps[1].config.k == 2 and recipe.exports[0].kind == "jsonl"
    # The saved recipe replays headless to the very same rows.
    replay = run_recipe(recipe, backend=FakeBackend(responder=responder), runs_root=tmp_path / "replay",
                        export=False)  # fmt: skip
    replayed, made = replay.store.rows(), store.rows()
    for stage in ("instruction", "completion"):
        assert set(replayed.filter(pl.col("stage") == stage)["id"]) == set(
            made.filter(pl.col("stage") == stage)["id"]
        )
    # The app judged a sample of 4; the recipe records those rows (row_ids) and judges exactly them.
    assert recipe.steps[2].row_ids == judgments["parent_id"].to_list()  # type: ignore[union-attr]
    assert set(judgments["id"]) == set(replayed.filter(pl.col("stage") == "judgment")["id"])
    assert app.errors == []


def test_step_errors_show_in_the_error_area(tmp_path):
    app = make_app(tmp_path)
    app.answers.run_button.click()  # nothing to answer yet
    assert app.errors and "no kept instructions" in app.errors[-1]
    assert app.error_row.layout.display == "flex"
    assert "no kept instructions" in app.error_box.value and "run self-instruct" in app.error_box.value
    app.dismiss_button.click()
    assert app.error_row.layout.display == "none" and app.error_box.value == ""
    app.seeds.import_path.value = str(tmp_path / "missing.jsonl")
    app.seeds.import_button.click()
    assert "missing.jsonl" in app.error_box.value and "does not exist" in app.error_box.value


def test_an_error_goes_once_the_same_step_succeeds(tmp_path):
    """Issue 18.5: the error area kept "Answers: cannot start" beside a finished answers run."""
    app = make_app(tmp_path)
    app.answers.run_button.click()  # nothing to answer yet
    assert app.error_row.layout.display == "flex" and "Answers" in app.error_box.value
    app.generate.run_button.click()
    assert app.generate.job.wait(60).state == "done"
    assert app.error_row.layout.display == "flex"  # another step's success says nothing about Answers
    app.answers.run_button.click()
    assert app.answers.job.wait(60).state == "done"
    assert app.error_row.layout.display == "none" and app.error_box.value == ""
    assert app.answers.progress_label.value.startswith("done")


def test_bad_model_path_shows_the_engine_message_and_keeps_the_model(tmp_path):
    app = make_app(tmp_path)
    backend = app.session.backend
    missing = tmp_path / "models" / "nope.gguf"
    app.model_input.value = str(missing)
    app.load_button.click()
    assert app.load_job.wait(30).state == "failed"
    assert app.errors[-1].startswith("Model: model file not found: ")
    assert str(missing) in app.error_box.value and "Traceback" not in app.error_box.value
    assert app.session.backend is backend and app.model_spec == "fake"  # still usable
    assert not app.load_button.disabled
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    app.load_model(str(not_gguf))
    app.load_job.wait(30)
    shown = html.unescape(app.error_box.value)
    assert "is not a GGUF file" in shown and "keeps using 'fake'" in shown


def test_stop_keeps_rows_and_loading_waits_for_running_steps(tmp_path):
    app = make_app(tmp_path, backend=FakeBackend(responder=responder, delay_s=0.05))
    app.generate.num_instructions.value, app.generate.rounds.value = 200, 50
    app.generate.run_button.click()
    job = app.generate.job
    assert job.running and app.generate.stop_button.disabled is False
    app.model_input.value = "default"
    app.load_button.click()  # refused: switching models under a running step
    assert "still running" in app.errors[-1] and app.load_job is None
    app.generate.stop_button.click()
    assert job.wait(30).state == "cancelled"
    assert not app.generate.run_button.disabled and app.generate.stop_button.disabled
    assert app.session.store.rows().height == app.generate.rows.height  # what was decided is kept
    assert "cancelled" in app.generate.progress_label.value


def test_judge_tab_says_when_unavailable_and_recovers(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "widgets.judge", None)  # import fails as if the module were missing
    app = make_app(tmp_path)
    assert app.judge_unavailable and "wb-judge-unavailable" in app.judge._dom_classes
    assert "not available" in app.judge.value
    assert app.recipe_steps() == []
    monkeypatch.delitem(sys.modules, "widgets.judge")
    _tab(app, "Judge")  # re-checked when the tab opens
    assert app.judge_unavailable is None and "wb-judge" in app.judge._dom_classes
    assert app.tabs.children[TAB_TITLES.index("Judge")] is app.judge


@pytest.mark.model
def test_real_model_loaded_from_the_picker_generates(tmp_path):
    app = make_app(tmp_path, backend=FakeBackend())
    app.model_input.value = "default"
    app.load_button.click()
    assert app.load_job.wait(120).state == "done", app.load_job.error_text
    assert app.model_spec == "default" and app.session.backend.name != "fake"
    assert spec_of(app.session.backend) == "default"  # what a saved recipe records
    assert "loaded default" in app.status.value
    g = app.generate
    g.num_instructions.value, g.rounds.value, g.prompts_per_round.value, g.max_tokens.value = 2, 1, 3, 32
    try:
        g.run_button.click()
        assert g.job.wait(120).state == "done", g.job.error_text
        rows = app.session.store.rows()
        assert rows.filter(pl.col("stage") == "instruction").height >= 1
        assert set(rows["model"]) == {app.session.backend.name}
        assert app.tokens_per_s and app.tokens_per_s > 1 and f"rows</b> {rows.height}" in app.status.value
        assert app.inspector.view.total >= 1
    finally:
        app.session.use_model(FakeBackend())  # closes the real model


def test_endpoint_identity_from_the_picker_goes_into_row_ids_and_the_recipe(tmp_path):
    from tests.engine.test_http import _FakeServer

    servers = [_FakeServer(), _FakeServer()]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        app = make_app(tmp_path, backend=FakeBackend())
        app.identity_input.value = "my-model-q4"
        app.model_input.value = "default"  # a GGUF is identified by its sha256: a typed identity is refused
        app.load_button.click()
        assert app.load_job is None and "identity is for server URLs only" in app.errors[-1]
        ids = []
        for srv in servers:  # the same model behind two URLs
            app.load_model(f"http://127.0.0.1:{srv.server_address[1]}/v1")
            assert app.load_job.wait(30).state == "done", app.load_job.error_text
            assert app.session.backend.model_id == "my-model-q4"
            ids.append(app.session.backend.model_id)
        assert ids[0] == ids[1]
        app.generate.num_instructions.value, app.generate.rounds.value = 2, 1
        app.generate.run_button.click()
        assert app.generate.job.wait(60).state == "done", app.generate.job.error_text
        recipe = app.export.recipe()
        assert recipe.model.options == {"model_identity": "my-model-q4"}
    finally:
        for srv in servers:
            srv.shutdown()
