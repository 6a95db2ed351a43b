"""Export: TRL formats with provenance, three file kinds that load back identically, cards, safety."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.export import ExportSpec, export_run, load_export, to_dataset
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.runs import RunStore

PROMPTS = pl.DataFrame(
    {"instruction": ["Write a poem about tea", "List three fruits", "Explain why rain falls"], "input": ["", "tropical", ""]}
)


@pytest.fixture
def judged_run(tmp_path):
    """A run with 3 prompts x 2 completions (FakeBackend) and one absolute judgment per completion."""
    store = RunStore.create(tmp_path / "runs", "r", manifest={"recipe": {"name": "r", "steps": []}})
    completions = run_completions(FakeBackend(), store, PROMPTS, CompletionConfig(k=2, seed=7))
    scores = [5.0, 2.0, 3.0, 3.0, 4.0, 1.0]  # prompt 2's answers tie: no DPO pair for it
    store.append(
        [
            {"id": f"judge-{i}", "stage": "judgment", "parent_id": cid, "score": s, "rubric": "helpful",
             "rubric_version": "abc123abc123", "judge_kind": "absolute", "parse_ok": True, "status": "kept"}
            for i, (cid, s) in enumerate(zip(completions["id"], scores, strict=True))
        ]
    )  # fmt: skip
    return store, completions


@pytest.mark.parametrize("kind", ["disk", "parquet", "jsonl"])
@pytest.mark.parametrize("fmt", ["sft", "prompt_completion", "dpo"])
def test_every_format_and_kind_loads_back_identically(judged_run, tmp_path, fmt, kind):
    store, _ = judged_run
    result = export_run(store, ExportSpec(format=fmt, kind=kind, path=str(tmp_path / f"{fmt}-{kind}")))
    written = to_dataset(result.frame)
    back = load_export(result.path)
    assert back.features == written.features
    assert back.to_list() == written.to_list()
    assert len(back) == result.rows > 0


def test_sft_is_conversational_with_provenance(judged_run, tmp_path):
    store, completions = judged_run
    ds = load_export(export_run(store, ExportSpec(format="sft", path=str(tmp_path / "sft"))).path)
    assert len(ds) == 6
    first = ds[0]
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    row = completions.filter(pl.col("id") == first["id"]).row(0, named=True)
    assert first["messages"][0]["content"] == row["instruction"]
    assert first["messages"][1]["content"] == row["text"]
    assert first["model_sha"] == "fake:0" and first["seed"] == row["seed"]
    assert json.loads(first["params"])["seed"] == row["seed"]
    assert first["rubric_version"] == "abc123abc123" and first["score"] == 5.0
    with_input = [r for r in ds if r["messages"][0]["content"].startswith("List three fruits")]
    assert with_input and all(r["messages"][0]["content"] == "List three fruits\n\ntropical" for r in with_input)


def test_sft_min_score_and_system_prompt(judged_run, tmp_path):
    store, _ = judged_run
    spec = ExportSpec(format="sft", path=str(tmp_path / "s"), min_score=4, system_prompt="Be brief.")
    ds = load_export(export_run(store, spec).path)
    assert sorted(ds["score"]) == [4.0, 5.0]
    assert all(r["messages"][0] == {"role": "system", "content": "Be brief."} for r in ds)


def test_dpo_pairs_best_against_worst(judged_run, tmp_path):
    store, completions = judged_run
    ds = load_export(export_run(store, ExportSpec(format="dpo", path=str(tmp_path / "d"), kind="jsonl")).path)
    assert len(ds) == 2  # the tied prompt gives no pair
    for r in ds:
        assert r["chosen_score"] - r["rejected_score"] >= 1
        chosen = completions.filter(pl.col("id") == r["chosen_id"]).row(0, named=True)
        assert r["chosen"] == chosen["text"] and r["chosen_seed"] == chosen["seed"]
        assert r["rubric_version"] == "abc123abc123" and r["chosen_model_sha"] == "fake:0"
    conv = export_run(store, ExportSpec(format="dpo", path=str(tmp_path / "dc"), conversational=True))
    row = load_export(conv.path)[0]
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"


def test_prompt_completion_strings(judged_run, tmp_path):
    store, _ = judged_run
    ds = load_export(export_run(store, ExportSpec(format="prompt_completion", path=str(tmp_path / "pc"))).path)
    assert set(ds.column_names) >= {"prompt", "completion", "id", "model_sha", "params", "seed"}
    assert all(isinstance(r["prompt"], str) and r["completion"] for r in ds)


def test_card_has_recipe_counts_and_diversity(judged_run, tmp_path):
    store, _ = judged_run
    path = export_run(store, ExportSpec(format="sft", path=str(tmp_path / "c"))).path
    card = (path / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "data/train.parquet" in card
    assert "| exported rows | 6 |" in card
    assert "| run rows: completion / kept | 6 |" in card
    assert "distinct_1" in card and "distinct_2" in card
    assert "## Recipe" in card and "name: r" in card
    assert "abc123abc123" in card  # rubric version in provenance


def test_hub_layout_loads_with_datasets(judged_run, tmp_path):
    from datasets import load_dataset

    store, _ = judged_run
    path = export_run(store, ExportSpec(format="sft", path=str(tmp_path / "hub"))).path
    ds = load_dataset(str(path), split="train")
    assert len(ds) == 6 and ds[0]["messages"][0]["role"] == "user"


def test_never_overwrites_without_flag(judged_run, tmp_path):
    store, _ = judged_run
    out = tmp_path / "e"
    export_run(store, ExportSpec(format="sft", path=str(out)))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_run(store, ExportSpec(format="sft", path=str(out)))
    export_run(store, ExportSpec(format="prompt_completion", path=str(out), overwrite=True))
    assert "completion" in load_export(out).column_names
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a workbench export"):
        export_run(store, ExportSpec(format="sft", path=str(user_dir), overwrite=True))
    assert (user_dir / "notes.txt").read_text() == "keep me"


def test_clear_errors_when_nothing_to_export(tmp_path):
    store = RunStore.create(tmp_path, "empty")
    run_completions(FakeBackend(), store, PROMPTS, CompletionConfig(k=1))
    with pytest.raises(ValueError, match=r"needs parsed judgments.*add a judge step"):
        export_run(store, ExportSpec(format="dpo", path=str(tmp_path / "d")))
    with pytest.raises(ValueError, match="nothing to export"):
        export_run(store, ExportSpec(format="sft", path=str(tmp_path / "s"), min_score=1))


def test_sft_frame_of_rows_built_outside_a_run():
    # an experiment's frame (instruction, text, provenance) has no `prompt` column to fall back on
    from workbench.export import sft_frame

    rows = pl.DataFrame({"id": ["a"], "instruction": ["Say hi."], "input": [""], "text": ["Hi!"], "model_sha": ["s"]})
    [msgs] = sft_frame(rows)["messages"].to_list()
    assert msgs == [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}]
