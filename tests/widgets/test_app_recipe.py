"""Save recipe records every step as it ran, in run order (issue 14.3): Filters Apply, Score IFD and a
pairwise judge included, with the rubric's version hash; the CLI replays the saved recipe to the very
same row ids, filter rows and judgments included; a reopened run saves the same steps from its log.

Headless on a FakeBackend with a chat template (the recipe's `model: fake` with that template is the same
model, so the CLI builds it itself). Row ids hash model, prompt, parameters and seed, so equal id sets per
stage mean the replay made the same rows, and the filters and judges decided the same rows.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from widgets import Workbench
from widgets.judge_selection import aspect_rubrics
from workbench.engine import FakeBackend
from workbench.pipeline.cli import main
from workbench.pipeline.filter_step import FiltersStep
from workbench.pipeline.recipe import JudgeStep, load_recipe
from workbench.pipeline.step_log import LOG_KEY
from workbench.runs import RunStore
from workbench.session import Session

TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
SMALL = {"num_instructions": 5, "rounds": 2, "prompts_per_round": 5, "seed": 3}


def _app(root, run: str = "app") -> Workbench:
    return Workbench(session=Session(FakeBackend(chat_template=TEMPLATE), runs_root=root, run=run), generate=SMALL)


def _run(panel: Any) -> None:
    panel.run_button.click()
    assert panel.job is not None, panel.error.value
    assert panel.job.wait(60).state == "done", panel.job.error_text


def _ids(rows: pl.DataFrame) -> dict[str, set[str]]:
    return {stage: set(rows.filter(pl.col("stage") == stage)["id"]) for stage in rows["stage"].unique().to_list()}


def _word_in_some(texts: list[str]) -> str:
    """A word between a fifth and half of `texts` contain (the fake model's answers are random words)."""
    docs = [set(t.lower().split()) for t in texts]
    counts = {w: sum(w in d for d in docs) for w in set().union(*docs) if w.isalpha() and len(w) > 3}
    fitting = sorted(w for w, c in counts.items() if len(texts) / 5 <= c <= len(texts) / 2)
    assert fitting, "no word is in some but not most answers"
    return fitting[0]


def _kept_answers(app: Workbench) -> pl.DataFrame:
    from workbench.filters.apply import with_filter_drops

    rows = with_filter_drops(app.session.store.rows())
    return rows.filter((pl.col("stage") == "completion") & (pl.col("status") == "kept"))


def test_filters_ifd_and_judges_replay_in_the_order_they_ran(tmp_path, capsys):
    app = _app(tmp_path / "runs")
    _run(app.generate)
    app.answers.k.value = 3
    _run(app.answers)
    # An absolute judge of a sample, *before* any filter: it sees every answer.
    app.judge.sample_size.value = 4
    _run(app.judge)
    # The judge lab's "Rate each criterion" over the same sample: one judge step per criterion.
    aspects = app.judge.lab.selection
    aspects.run_button.click()
    assert aspects.job is not None and aspects.job.wait(60).state == "done", aspects.job.error_text
    n_aspects = len(aspect_rubrics(app.judge.rubric))
    # Filters: block a word some answers use (keywords only), then Apply.
    f = app.filters
    f.stage.value = "completion"
    f.use_length.value = f.use_near_dup.value = False
    texts = _kept_answers(app)["text"].to_list()
    word = _word_in_some(texts)
    f.blocklist.value = word
    assert f.apply() and f.result is not None and 0 < f.result.dropped.height < len(texts)
    # Score IFD over the answers still kept, then a pairwise judge of two prompts' answers.
    _run(f)
    app.judge.mode.value, app.judge.sample_size.value = "pairwise", 2
    _run(app.judge)
    assert app.errors == []
    made = app.session.store.rows()
    assert {"filter", "ifd", "judgment"} <= set(made["stage"])
    assert made.filter(pl.col("stage") == "judgment")["judge_kind"].unique().sort().to_list() == ["absolute", "pairwise"]

    # The knobs change after the runs: the recipe still records what ran.
    f.blocklist.value, app.judge.sample_size.value, app.answers.k.value = "other", 99, 1
    app.export.recipe_path.value = str(tmp_path / "app.recipe.yaml")
    saved = app.export.save_recipe()
    assert saved is not None, app.export.error.value
    recipe = load_recipe(saved)
    kinds = ["self_instruct", "completions", "judge", *["judge"] * n_aspects, "filters", "ifd", "judge"]
    assert [s.kind for s in recipe.steps] == kinds and n_aspects >= 2
    absolute, filters, pairwise = recipe.steps[2], recipe.steps[3 + n_aspects], recipe.steps[-1]
    per_criterion = recipe.steps[3 : 3 + n_aspects]
    assert [s.rubric.version for s in per_criterion] == [r.version for r in aspect_rubrics(app.judge.rubric)]  # type: ignore[union-attr]
    assert all(sorted(s.row_ids or []) == sorted(absolute.row_ids or []) for s in per_criterion)  # type: ignore[union-attr]
    assert isinstance(absolute, JudgeStep) and absolute.mode == "absolute" and len(absolute.row_ids or []) == 4
    assert isinstance(pairwise, JudgeStep) and pairwise.mode == "pairwise" and pairwise.row_ids
    assert pairwise.rubric_version == app.judge.rubric.version  # the rubric's version hash is recorded
    assert isinstance(filters, FiltersStep) and filters.settings.blocklist == (word,)
    assert filters.settings.stage == "completion" and filters.settings.near_dup is None
    assert filters.settings.max_words is None
    text = saved.read_text()
    assert "# the app judged only these 4 rows: delete row_ids to judge every row" in text

    capsys.readouterr()
    root = tmp_path / "replay"
    assert main(["run", str(saved), "--runs-root", str(root), "--no-export"]) == 0
    err = capsys.readouterr().err
    assert "judging 4 of" in err and "filters:" in err
    replayed = _ids(RunStore.open(root / "app").rows())
    expected = _ids(made)
    assert set(expected) == {"instruction", "completion", "judgment", "filter", "ifd"}
    for stage, ids in expected.items():
        assert ids and replayed.get(stage) == ids, f"stage {stage}: the replay made other rows"
    assert set(replayed) == set(expected)


def test_a_reopened_run_saves_the_same_steps_from_its_log(tmp_path):
    root = tmp_path / "runs"
    app = _app(root)
    _run(app.generate)
    _run(app.answers)
    app.filters.stage.value = "completion"
    assert app.filters.apply() is not None
    first = app.recipe_steps()
    assert [s.kind for s in first] == ["self_instruct", "completions", "filters"]
    assert len(app.session.store.manifest[LOG_KEY]) == 3
    again = _app(root)  # a new session on the same run folder: nothing of the first app's state
    assert again.session.store.path == app.session.store.path
    assert again.recipe_steps() == first
    # The reopened session's own Runs go on the same log, after the first session's steps; running a step
    # twice in a row with the same settings adds no rows, and no second step.
    _run(again.answers)
    _run(again.answers)
    assert again.recipe_steps() == [*first, first[1]]


def test_a_stopped_run_is_logged_as_stopped_and_a_failed_one_not_at_all(tmp_path):
    app = _app(tmp_path / "runs")
    _run(app.generate)
    app.answers.run_button.click()
    app.answers.stop_button.click()
    job = app.answers.job
    assert job is not None
    state = job.wait(60).state
    steps = app.recipe_steps()
    if state == "cancelled":  # the fake backend may finish before Stop lands: then it is a finished step
        assert steps[-1].label is not None and "stopped early" in steps[-1].label
    else:
        assert steps[-1].kind == "completions" and steps[-1].label is None
    before = len(app.session.store.manifest[LOG_KEY])
    app.judge.mode.value = "pairwise"
    app.answers.k.value = 1
    app.judge.set_rows(pl.DataFrame({"id": ["x"], "instruction": ["a"], "text": ["b"]}))  # no pairs: refused
    app.judge.run_button.click()
    assert len(app.session.store.manifest[LOG_KEY]) == before


def test_judging_conversations_in_the_app_replays_to_the_same_judgments(tmp_path, capsys):
    app = _app(tmp_path / "runs")
    _run(app.generate)
    _run(app.answers)
    app.conversation.turns.value, app.conversation.limit.value = 1, 4
    _run(app.conversation)
    judge = app.judge
    judge.sample_size.value, judge.rows_from.value = 3, "last_turn"  # choosing the rows re-picks the sample
    assert {"messages", "judge_target"} <= set(judge.sample.columns) and judge.sample.height == 3
    _run(judge)
    made = app.session.store.rows()
    judged = made.filter(pl.col("stage") == "judgment")
    convs = made.filter(pl.col("stage") == "conversation")
    assert judged.height == 3 and set(judged["parent_id"]) <= set(convs["id"])
    assert judged["rubric_version"].unique().to_list() == [judge.last_judged.rubric.version]  # type: ignore[union-attr]
    assert judge.last_judged.rubric.version != judge.rubric.version  # type: ignore[union-attr]  # wrapped for its target
    # pairwise compares answers to one prompt: for conversations it is refused in words, and nothing is logged
    before = app.session.store.manifest[LOG_KEY]
    judge.mode.value = "pairwise"
    judge.run_button.click()
    assert "judge conversations in absolute mode" in judge.progress_label.value + judge.error.value + " ".join(app.errors)
    assert app.session.store.manifest[LOG_KEY] == before

    app.export.recipe_path.value = str(tmp_path / "conv.recipe.yaml")
    saved = app.export.save_recipe()
    assert saved is not None, app.export.error.value
    step = load_recipe(saved).steps[-1]
    assert isinstance(step, JudgeStep) and (step.rows_from, step.conversation_target) == ("conversations", "last_turn")
    assert main(["run", str(saved), "--runs-root", str(tmp_path / "replay"), "--no-export"]) == 0
    replayed = RunStore.open(tmp_path / "replay" / "app").rows()
    for stage, ids in _ids(made).items():
        assert _ids(replayed).get(stage) == ids, f"stage {stage}: the replay made other rows"
