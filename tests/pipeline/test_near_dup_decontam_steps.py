"""Recipe steps near_dup and decontam: they drop rows a completions step wrote (FakeBackend, scripted
answers), record each drop as a filter row with its reason and what it matched, later steps and exports
no longer see the dropped rows, and the dry run lists both steps."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.engine import FakeBackend
from workbench.export import load_export
from workbench.filters.apply import FILTER_STAGE, with_filter_drops
from workbench.pipeline.cli import main
from workbench.pipeline.hygiene_steps import BenchmarkSource, load_benchmark_source
from workbench.pipeline.recipe import DecontamStep, IFDStep, NearDupStep, Recipe, RecipeError
from workbench.pipeline.runner import run_recipe, step_inputs
from workbench.runs import RunStore

LEAK = "janet has three ducks that lay sixteen eggs per day and she eats three for breakfast every morning"
ANSWERS = {
    "alpha": "the quick brown fox jumps over the lazy dog near the river bank",
    "beta": "the quick brown fox jumps over the lazy dog near the river bend",  # near duplicate of alpha
    "gamma": f"well, as we know {LEAK}, so the answer is nine",  # contains a benchmark question
    "delta": "photosynthesis turns light water and carbon dioxide into sugar and oxygen",
    "epsilon": "a completely different answer about sailing boats and wind",
}


def responder(req) -> str:
    for key, answer in ANSWERS.items():
        if f"question {key}" in (req.prompt or ""):
            return answer
    raise AssertionError(f"unexpected prompt {req.prompt!r}")


def write_benchmark(tmp_path):
    path = tmp_path / "gsm8k_test.jsonl"
    items = [
        {"qid": "q-7", "question": f"{LEAK}. How many eggs are left?", "answer": "nine"},
        {
            "qid": "q-8",
            "question": "a train leaves the station at noon going sixty miles an hour",
            "answer": "2",
        },
    ]
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def recipe_text(tmp_path, bench, *, extra_refs: str = "", name: str = "hygiene") -> str:
    prompts = ", ".join(f"question {k}" for k in ANSWERS)
    return f"""\
name: {name}
model: fake
steps:
  - kind: completions
    prompts_from: list
    prompts: [{prompts}]
    config: {{k: 1, params: {{max_tokens: 40}}}}
  - kind: near_dup
    rows_from: completions
    threshold: 0.8
    references: [{extra_refs}]
  - kind: decontam
    rows_from: completions
    columns: [instruction, text]
    n: 8
    benchmarks:
      - {{source: {bench}, text_columns: [question, answer], id_column: qid, name: gsm8k-test}}
exports:
  - {{format: sft, path: {tmp_path / "exports" / name}}}
"""


def run(tmp_path, text, **kw):
    recipe = Recipe.loads(text)
    return recipe, run_recipe(recipe, backend=FakeBackend(responder), runs_root=tmp_path / "runs", **kw)


def completions(store: RunStore) -> pl.DataFrame:
    return store.rows().filter(pl.col("stage") == "completion")


def id_of(store: RunStore, key: str) -> str:
    rows = completions(store)
    return rows.filter(pl.col("text") == ANSWERS[key])["id"][0]


def test_recipe_drops_near_duplicates_and_contamination_with_reasons(tmp_path):
    bench = write_benchmark(tmp_path)
    recipe, report = run(tmp_path, recipe_text(tmp_path, bench))
    store = report.store
    filt = store.rows().filter(pl.col("stage") == FILTER_STAGE)
    assert filt.height == 2 and set(filt["status"]) == {"dropped"}
    by_parent = {r["parent_id"]: r for r in filt.iter_rows(named=True)}

    dup = by_parent[id_of(store, "beta")]
    assert dup["reason"] == "near_duplicate"
    # names the row it repeats and the similarity (ROUGE-L of the two answers, 12 of 13 words shared)
    assert f"with row {id_of(store, 'alpha')}" in dup["text"] and "ROUGE-L 0.92" in dup["text"]
    assert "the quick brown fox" in dup["text"]
    assert (dup["filter_name"], dup["matched_id"]) == ("near_dup", id_of(store, "alpha"))  # typed, too
    assert round(dup["matched_score"], 2) == 0.92 and dup["matched_span"] is None

    leak = by_parent[id_of(store, "gamma")]
    assert leak["reason"] == "contamination:gsm8k-test"
    assert "gsm8k-test item q-7" in leak["text"]
    assert (
        "text shares 'janet has three ducks that lay sixteen eggs per day and she eats three" in leak["text"]
    )
    assert json.loads(leak["params"])["step"]["n"] == 8
    assert (leak["filter_name"], leak["matched_id"]) == ("decontam", "q-7")
    assert leak["matched_span"].startswith("janet has three ducks") and leak["matched_score"] is None

    # every generated row stays; the view, later steps and the export see the drops
    assert completions(store).height == 5 and set(completions(store)["status"]) == {"kept"}
    view = with_filter_drops(store.rows()).filter(pl.col("stage") == "completion")
    assert view.filter(pl.col("status") == "dropped")["id"].sort().to_list() == sorted(by_parent)
    later = step_inputs(IFDStep(rows_from="completions"), recipe, store)
    assert later.height == 3 and not set(later["id"]) & set(by_parent)
    exported = load_export(tmp_path / "exports" / "hygiene")
    assert len(exported) == 3
    assert [s.kind for s in report.steps] == ["completions", "near_dup", "decontam"]
    assert [s.new_rows for s in report.steps] == [5, 1, 1]


def test_resume_decides_only_kept_rows_and_adds_nothing(tmp_path):
    bench = write_benchmark(tmp_path)
    text = recipe_text(tmp_path, bench)
    _, first = run(tmp_path, text, export=False)
    before = first.store.rows().height
    _, again = run(tmp_path, text, resume=True, export=False)
    assert again.store.rows().height == before
    assert [s.new_rows for s in again.steps] == [0, 0, 0]


def test_near_dup_against_an_earlier_run_and_a_dataset_file(tmp_path):
    bench = write_benchmark(tmp_path)
    _, earlier = run(tmp_path, recipe_text(tmp_path, bench, name="earlier"), export=False)
    data = tmp_path / "old_answers.jsonl"
    data.write_text(json.dumps({"key": "old-1", "output": ANSWERS["delta"].upper() + "!"}) + "\n")
    refs = f"{{path: {data}, column: output, id_column: key, name: old-answers}}, {earlier.store.path}"
    _, report = run(tmp_path, recipe_text(tmp_path, bench, extra_refs=refs, name="later"), export=False)
    store = report.store
    drops = {
        r["parent_id"]: r for r in store.rows().filter(pl.col("stage") == FILTER_STAGE).iter_rows(named=True)
    }
    # the earlier run holds the same answers: every row repeats one of its kept rows ...
    alpha = drops[id_of(store, "alpha")]
    assert alpha["reason"] == "near_duplicate"
    assert f"ROUGE-L 1.00 with earlier row {id_of(earlier.store, 'alpha')}" in alpha["text"]
    # ... except the rows the earlier run dropped itself, which are not in its pool: beta repeats the
    # earlier alpha (this run's alpha is dropped, so not a match), gamma is only contaminated
    assert (
        f"ROUGE-L 0.92 with earlier row {id_of(earlier.store, 'alpha')}"
        in drops[id_of(store, "beta")]["text"]
    )
    assert drops[id_of(store, "gamma")]["reason"] == "contamination:gsm8k-test"
    # the dataset file is checked too, and listed first it wins the tie (the shouted copy has the same words)
    assert "ROUGE-L 1.00 with old-answers row old-1" in drops[id_of(store, "delta")]["text"]
    assert len(drops) == 5


def test_decontam_reads_a_save_to_disk_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "bench_disk"
    datasets.DatasetDict(
        {"test": datasets.Dataset.from_dict({"question": [LEAK], "answer": ["9"], "qid": ["d-1"]})}
    ).save_to_disk(str(folder))
    bench = load_benchmark_source(
        BenchmarkSource(source=str(folder), text_columns=["question", "answer"], id_column="qid")
    )
    assert bench.name == "bench_disk" and bench.items["id"].to_list() == ["d-1"]
    text = recipe_text(tmp_path, folder).replace("name: gsm8k-test", "name: on-disk")
    _, report = run(tmp_path, text, export=False)
    flagged = report.store.rows().filter(pl.col("reason") == "contamination:on-disk")
    assert flagged.height == 1 and "on-disk item d-1" in flagged["text"][0]


def test_hf_benchmark_offline_gives_a_clear_error(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(
        ValueError, match=r"could not load benchmark hf://openai/gsm8k:test .*Offline\?.*save_to_disk"
    ):
        load_benchmark_source(BenchmarkSource(source="hf://openai/gsm8k:test", config="main"))
    with pytest.raises(ValueError, match="hf://<dataset>"):
        load_benchmark_source(BenchmarkSource(source="hf://"))


def test_missing_reference_and_benchmark_say_what_to_give(tmp_path):
    with pytest.raises(ValueError, match=r"does not exist: give a \.jsonl"):
        load_benchmark_source(BenchmarkSource(source=str(tmp_path / "nope.jsonl")))
    text = recipe_text(tmp_path, write_benchmark(tmp_path), extra_refs=str(tmp_path / "no-such-run"))
    with pytest.raises(ValueError, match=r"near_dup reference .*no-such-run does not exist"):
        run(tmp_path, text, export=False)


def test_step_configs_are_typed_and_strict():
    recipe = Recipe.loads(
        "name: x\nmodel: fake\nsteps:\n  - kind: near_dup\n    references: [runs/a]\n"
        "  - kind: decontam\n    benchmarks: [b.jsonl]\n"
    )
    near, dec = recipe.steps
    assert isinstance(near, NearDupStep) and near.references[0].path == "runs/a" and near.threshold == 0.7
    assert isinstance(dec, DecontamStep) and dec.benchmarks[0].source == "b.jsonl" and dec.n == 13
    assert Recipe.loads(recipe.dumps()).steps == recipe.steps
    with pytest.raises(RecipeError, match=r"line 4: unknown key 'treshold'.*did you mean 'threshold'"):
        Recipe.loads("name: x\nsteps:\n  - kind: near_dup\n    treshold: 0.5\n")
    with pytest.raises(RecipeError, match="benchmarks"):
        Recipe.loads("name: x\nsteps:\n  - kind: decontam\n")


def test_cli_dry_run_lists_both_steps(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe_text(tmp_path, write_benchmark(tmp_path)))
    assert (
        main(["run", str(path), "--dry-run", "--sample-rows", "0", "--runs-root", str(tmp_path / "runs")])
        == 0
    )
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line[:1].isdigit()}
    assert "filter: ROUGE-L >= 0.8 within the run" in lines["2:near_dup"]
    assert "filter: 8-gram overlap of instruction/text with gsm8k-test" in lines["3:decontam"]
    assert lines["2:near_dup"].split()[1] == "5"  # the 5 completions the first step plans
    assert not (tmp_path / "runs" / "hygiene").exists()  # a dry run writes nothing
