"""Seed pools load from every supported source; malformed input names file, line and field."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.generate.seeds import SEED_SCHEMA, SeedFormatError, default_seeds, load_seeds


def test_default_seeds_are_varied_and_valid():
    seeds = default_seeds()
    assert seeds.height >= 40
    assert dict(seeds.schema) == SEED_SCHEMA
    assert seeds["category"].n_unique() >= 8
    assert seeds["is_classification"].sum() >= 8
    assert seeds["id"].n_unique() == seeds.height
    assert (seeds["instances"].list.len() >= 1).all()


def test_real_self_instruct_seeds(shared_data):
    seeds = load_seeds(shared_data / "seed_tasks.jsonl")
    assert seeds.height == 175
    assert seeds["is_classification"].sum() > 0
    assert seeds.filter(pl.col("id") == "seed_task_0")["instances"][0][0]["output"].startswith("Yes")


def test_csv_polars_list_and_datasets(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "instruction,input,output,is_classification,category\n"
        'Classify the mood.,"I love it",positive,true,cls\n'
        "Write a haiku about rain.,,Drops on tin roofs,false,writing\n"
    )
    seeds = load_seeds(path)
    assert seeds["is_classification"].to_list() == [True, False]
    assert seeds["instances"][0][0] == {"input": "I love it", "output": "positive"}
    frame = load_seeds(pl.DataFrame({"instruction": ["Name a colour."], "category": ["x"]}))
    assert frame["id"].to_list() == ["seed_0"] and frame["instances"][0].to_list() == []
    assert load_seeds([{"instruction": "Say hi.", "id": "a"}])["id"][0] == "a"
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([{"instruction": "Count to three.", "input": "", "output": "1 2 3"}])
    assert load_seeds(ds)["instances"][0][0]["output"] == "1 2 3"


def test_jsonl_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"instruction": "Fine task here.", "instances": []})
    path.write_text(
        good + "\n" + json.dumps({"instruction": "X", "instances": [{"input": "", "output": 3}]}) + "\n"
    )
    with pytest.raises(
        SeedFormatError, match=r"bad\.jsonl line 2: field 'instances\[0\]\.output' must be a string"
    ):
        load_seeds(path)
    path.write_text(good + "\n\n" + '{"instruction": "broken"\n')
    with pytest.raises(SeedFormatError, match=r"bad\.jsonl line 3: not valid JSON"):
        load_seeds(path)
    path.write_text(json.dumps({"instances": []}) + "\n")
    with pytest.raises(SeedFormatError, match=r"line 1: field 'instruction' is missing"):
        load_seeds(path)
    path.write_text(
        json.dumps({"id": "a", "instruction": "A"}) + "\n" + json.dumps({"id": "a", "instruction": "B"})
    )
    with pytest.raises(SeedFormatError, match=r"line 2: field 'id' 'a' duplicates"):
        load_seeds(path)


def test_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("instruction,is_classification\nA task to do.,maybe\n")
    with pytest.raises(SeedFormatError, match=r"bad\.csv line 2: field 'is_classification'"):
        load_seeds(path)
    path.write_text("prompt\nhello\n")
    with pytest.raises(SeedFormatError, match="needs an 'instruction' column"):
        load_seeds(path)
    with pytest.raises(FileNotFoundError):
        load_seeds(tmp_path / "missing.jsonl")
