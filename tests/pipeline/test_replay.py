"""The acceptance test of recipes (issues 14.2-14.3, 15.4): what the app did, saved as a recipe, replays with
`workbench run` to the very same rows, stage by stage.

The app runs headless on a FakeBackend with a chat template (no responder, so the recipe's `model: fake`
with that template in its options is the same model and the CLI builds it itself): self-instruct,
Magpie with two-turn conversations, Evolve, Answers, Conversation and a Judge of a sample of the answers;
Save recipe in the Export tab writes the file, and `workbench.pipeline.cli.main(["run", file, ...])`
replays it into another runs folder. Row ids hash the model, prompt, parameters and seed, so equal id sets
mean the replay made the same rows, and the judge step judged exactly the app's sample.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from widgets import Workbench
from workbench.engine import FakeBackend
from workbench.pipeline.cli import main
from workbench.pipeline.recipe import JudgeStep, load_recipe
from workbench.runs import RunStore
from workbench.session import Session

TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
SMALL = {"num_instructions": 5, "rounds": 2, "prompts_per_round": 5, "seed": 3}


def _run(panel: Any) -> None:
    panel.run_button.click()
    assert panel.job is not None, panel.error.value
    assert panel.job.wait(60).state == "done", panel.job.error_text


def _ids(rows: pl.DataFrame) -> dict[tuple[str, str], set[str]]:
    keys = rows.select("stage", pl.col("source").fill_null("")).unique().iter_rows()
    return {
        (stage, source): set(rows.filter((pl.col("stage") == stage) & (pl.col("source").fill_null("") == source))["id"])
        for stage, source in keys
    }


def test_the_saved_recipe_replays_the_apps_rows_exactly(tmp_path, capsys):
    app = Workbench(session=Session(FakeBackend(chat_template=TEMPLATE), runs_root=tmp_path / "runs", run="app"),
                    generate=SMALL)  # fmt: skip
    _run(app.generate)
    app.magpie.num_prompts.value, app.magpie.n_turns.value, app.magpie.seed.value = 4, 2, 5
    _run(app.magpie)
    app.evolve.limit.value = 3
    _run(app.evolve)
    app.answers.k.value = 2
    _run(app.answers)
    app.conversation.turns.value, app.conversation.limit.value, app.conversation.seed.value = 1, 4, 2
    _run(app.conversation)
    app.judge.sample_size.value = 3
    _run(app.judge)
    made = app.session.store.rows()
    judged = made.filter(pl.col("stage") == "judgment")
    answers = made.filter((pl.col("stage") == "completion") & (pl.col("status") == "kept"))
    assert judged.height == 3 < answers.height  # the app judged a sample
    assert app.errors == []

    app.export.recipe_path.value = str(tmp_path / "app.recipe.yaml")
    saved = app.export.save_recipe()
    assert saved is not None, app.export.error.value
    recipe = load_recipe(saved)
    assert [s.kind for s in recipe.steps] == ["self_instruct", "magpie", "evolve", "completions", "conversation", "judge"]
    judge = recipe.steps[-1]
    assert isinstance(judge, JudgeStep) and sorted(judge.row_ids or []) == sorted(judged["parent_id"])
    text = saved.read_text()
    assert "# the app judged only these 3 rows: delete row_ids to judge every row" in text

    capsys.readouterr()
    root = tmp_path / "replay"
    assert main(["run", str(saved), "--runs-root", str(root), "--no-export"]) == 0
    assert f"judging 3 of {answers.height} rows as in the app (delete row_ids to judge all)" in capsys.readouterr().err
    replayed = RunStore.open(root / "app").rows()
    expected = _ids(made)
    assert set(expected) == {("instruction", "self_instruct"), ("instruction", "magpie"), ("conversation", "magpie"),
                             ("evolution", ""), ("completion", ""), ("conversation", "user_simulator"),
                             ("judgment", "")}  # fmt: skip
    assert all(expected.values())
    for key, ids in expected.items():
        assert _ids(replayed).get(key) == ids, f"stage/source {key}: the replay made other rows"
    assert set(_ids(replayed)) == set(expected)
