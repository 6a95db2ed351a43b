"""The Evolve section driven headless: tick operators, click Evolve, wait for the job, read the lineage and the
drops; a recipe built from the app replays the same rows. One test runs the real default model."""

from __future__ import annotations

import re

import polars as pl
import pytest

from tests.widgets.test_app import make_app
from widgets.evolve_panel import OPERATOR_HELP, EvolvePanel
from workbench.engine import FakeBackend, GenerationRequest
from workbench.generate.evolve import DEFAULT_OPERATORS
from workbench.pipeline.recipe import EvolveStep, Recipe
from workbench.pipeline.runner import run_recipe
from workbench.session import Session


def rewriter(req: GenerationRequest) -> str:
    """A rewriter that fails in a known way per operator, so each drop reason is predictable."""
    text = req.prompt or req.messages[-1]["content"]  # type: ignore[index]
    given = text.rsplit("Prompt#:\n", 2)[1].split("\n\n#", 1)[0].strip()
    if "more specific concepts" in text:  # concretize: the prompt unchanged
        return given
    if "Prompt Creator" in text:  # breadth: nothing
        return ""
    if "constraint" in text:
        return given + " Use at most fifty words."
    return given + " Also explain why it matters to people in everyday life."


@pytest.fixture
def session(tmp_path):
    s = Session(FakeBackend(responder=rewriter), runs_root=tmp_path, run="evolve")
    s.errors = []  # type: ignore[attr-defined]
    s.subscribe(lambda what: s.errors.append(s.last_error) if what == "error" else None)  # type: ignore[attr-defined]
    return s


def _evolutions(session: Session) -> pl.DataFrame:
    return session.store.rows().filter(pl.col("stage") == "evolution")


def test_operators_have_plain_labels_and_config_follows_the_knobs(session):
    panel = EvolvePanel(session)
    assert set(panel.operators) == set(DEFAULT_OPERATORS) == set(OPERATOR_HELP)
    assert all(box.tooltip and box.description and "_" not in box.description for box in panel.operators.values())
    panel.operators["deepen"].value = False
    panel.rounds.value, panel.strategy.value, panel.temperature.value, panel.max_tokens.value = 3, "all", 0.3, 40
    cfg = panel.config()
    assert cfg.operators == ("add_constraints", "concretize", "increase_reasoning", "breadth")
    assert (cfg.generations, cfg.strategy, cfg.params.temperature, cfg.params.max_tokens) == (3, "all", 0.3, 40)
    assert "#Rewritten Prompt#" in cfg.params.stop  # the default stops stay


def test_no_operator_picked_is_refused_in_plain_words(session):
    panel = EvolvePanel(session)
    for box in panel.operators.values():
        box.value = False
    panel.run_button.click()
    assert panel.job is None and panel.last_config is None
    assert "tick at least one operator" in panel.error.value
    assert session.errors[-1].startswith("Evolve: cannot start")
    assert panel.progress_label.value.startswith("not started")


def test_evolves_the_seeds_shows_lineage_and_drops_with_reasons(session):
    panel = EvolvePanel(session)
    panel.limit.value, panel.rounds.value, panel.strategy.value = 2, 2, "all"
    assert "first <b>2</b> seed tasks" in panel.source_note.value
    panel.run_button.click()
    assert panel.job.wait(60).state == "done", panel.job.error_text
    assert panel.progress.value == 1.0 and panel.run_button.disabled is False
    rows = _evolutions(session)
    # Round 1: 5 operators on 2 seeds; the 3 rewrites that lengthen the prompt survive on each, so round 2
    # rewrites 6 prompts with 5 operators each.
    assert rows.filter(pl.col("generation") == 1).height == 10
    assert rows.filter(pl.col("generation") == 2).height == 30
    assert panel.job.progress.rows_done == 40 and "40 rows" in panel.progress_label.value  # both rounds count
    kept = rows.filter(pl.col("status") == "kept")
    assert set(kept["operator"]) == {"add_constraints", "deepen", "increase_reasoning"}
    reasons = dict(rows.filter(pl.col("status") != "kept").group_by("reason").len().iter_rows())
    assert reasons == {"unchanged": 8, "empty": 8}  # concretize and breadth on 2 + 6 prompts
    # Lineage: each round-2 rewrite shows its seed, its round-1 parent and both operators.
    table = panel.lineage_table.value
    child = kept.filter(pl.col("generation") == 2).row(0, named=True)
    parent = rows.filter(pl.col("id") == child["parent_id"]).row(0, named=True)
    cell = re.search(rf"<tr data-id='{child['id']}'>(.*?)</tr>", table, re.S)
    assert cell is not None
    assert parent["parent_text"].split("\n")[0] in cell.group(1) and parent["text"] in cell.group(1)
    assert f"→ {parent['operator']}:" in cell.group(1) and child["operator"] in cell.group(1)
    assert f"<b>{kept.height}</b> kept" in panel.counts.value and "2 rounds so far" in panel.counts.value
    assert "unchanged: 8" in panel.drops_table.value and "empty: 8" in panel.drops_table.value
    # What the run used is kept for a recipe.
    assert panel.last_source == "seeds" and panel.last_limit == 2
    assert panel.last_config is not None and panel.last_config.generations == 2


def test_kept_instructions_are_evolved_before_the_seeds(session):
    session.store.append([
        {"id": "i1", "stage": "instruction", "status": "kept", "text": "Name three rivers in Africa.", "round": 1},
        {"id": "i2", "stage": "instruction", "status": "dropped", "reason": "too short", "text": "Hi.", "round": 1},
    ])  # fmt: skip
    panel = EvolvePanel(session)
    assert "first <b>1</b> kept instructions" in panel.source_note.value
    panel.operators["breadth"].value = panel.operators["concretize"].value = False
    panel.run_button.click()
    assert panel.job.wait(60).state == "done", panel.job.error_text
    rows = _evolutions(session)
    assert rows.height == 1 and rows["parent_id"].to_list() == ["i1"] and panel.last_source == "instructions"


def test_stop_keeps_finished_rewrites_and_run_resumes(tmp_path):
    session = Session(FakeBackend(responder=rewriter, delay_s=0.1), runs_root=tmp_path, run="stop")
    panel = EvolvePanel(session)
    panel.limit.value, panel.strategy.value = 8, "all"  # 40 rewrites, 4 s
    job = panel.run()
    assert job is not None
    while session.store.ids("evolution") == set() and job.running:
        job.wait(0.05)
    panel.stop_button.click()
    assert job.wait(30).state == "cancelled"
    assert "cancelled after" in panel.progress_label.value and panel.run_button.disabled is False
    done = session.store.ids("evolution")
    assert 0 < len(done) < 40
    assert panel.run().wait(60).state == "done"  # a re-run writes only what is missing
    rows = _evolutions(session)
    assert rows.height == 40 and rows["id"].n_unique() == 40 and done < set(rows["id"])


def test_app_has_the_sections_registers_the_panel_and_replays_it_as_a_recipe(tmp_path):
    app = make_app(tmp_path, backend=FakeBackend(responder=rewriter))
    assert app.generate_sections.titles == ("Self-instruct", "Evolve", "Magpie", "Conversation")
    assert app.generate_sections.children[1] is app.evolve and app.evolve in app._job_panels()
    # An Evolve error goes once Evolve succeeds (the error-prefix map knows the panel).
    for box in app.evolve.operators.values():
        box.value = False
    app.evolve.run_button.click()
    assert app.errors and app.errors[-1].startswith("Evolve:") and app.error_row.layout.display == "flex"
    app.evolve.operators["deepen"].value = True
    app.evolve.limit.value, app.evolve.rounds.value = 3, 2
    app.evolve.run_button.click()
    assert app.evolve.job.wait(60).state == "done", app.evolve.job.error_text
    assert app.error_row.layout.display == "none"
    # The knobs change after the run: the recipe still records what the run used.
    app.evolve.rounds.value, app.evolve.temperature.value = 5, 1.5
    steps = app.recipe_steps()
    assert [s.kind for s in steps] == ["evolve"]
    step = steps[0]
    assert isinstance(step, EvolveStep) and step.prompts_from == "seeds" and step.limit == 3
    assert step.config == app.evolve.last_config and step.config.generations == 2
    recipe = Recipe.loads(Recipe(name="replay", model="fake", steps=steps).dumps())
    report = run_recipe(recipe, backend=FakeBackend(responder=rewriter), runs_root=tmp_path / "replay")
    replayed = report.store.rows().filter(pl.col("stage") == "evolution")
    assert set(replayed["id"]) == set(_evolutions(app.session)["id"]) and replayed.height == 6


@pytest.mark.model
def test_real_default_model_evolves_two_seeds_for_one_round(default_backend, tmp_path):
    session = Session(default_backend, runs_root=tmp_path, run="evolve-real")
    panel = EvolvePanel(session)
    panel.limit.value, panel.rounds.value, panel.max_tokens.value = 2, 1, 24
    panel.run_button.click()
    assert panel.job.wait(300).state == "done", panel.job.error_text
    rows = _evolutions(session)
    assert rows.height == 2 and set(rows["model"]) == {default_backend.name}
    assert set(rows["status"]) <= {"kept", "dropped"}
    assert all((s == "dropped") == (r is not None) for s, r in zip(rows["status"], rows["reason"], strict=True))
    for r in rows.iter_rows(named=True):  # every row is shown: kept ones in the lineage, dropped ones with why
        shown = panel.lineage_table.value if r["status"] == "kept" else panel.drops_table.value
        assert r["operator"] in shown and (r["reason"] or "") in shown
    assert panel.job.progress is not None and panel.job.progress.tokens_generated > 0


def test_progress_adds_up_the_rounds():
    from widgets.evolve_panel import RoundsProgress
    from workbench.engine import Progress

    seen: list[Progress] = []
    rounds = RoundsProgress(seen.append)
    for p in (Progress(1, 2, 5, 0.1), Progress(2, 2, 9, 0.2), Progress(1, 1, 4, 0.05), Progress(1, 1, 7, 0.04)):
        rounds(p)  # rounds of 2 rows, 1 row and 1 row (equal totals: the reset clock tells them apart)
    assert [(p.rows_done, p.rows_total, p.tokens_generated) for p in seen] == [
        (1, 2, 5), (2, 2, 9), (3, 3, 13), (4, 4, 20)
    ]
