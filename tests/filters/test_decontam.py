"""Decontamination: rows sharing a word n-gram with a benchmark item are flagged with the item and span."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from workbench.filters import decontam
from workbench.filters.decontam import Benchmark, DecontamConfig, decontaminate, load_benchmark
from workbench.generate.seeds import default_seeds, self_instruct_seeds

HOST = (
    "zebra quartz violin maple oyster tundra"  # words absent from the benchmark: spans cannot grow into them
)


@pytest.fixture(scope="module")
def bench() -> Benchmark:
    """The self-instruct paper's seed tasks (instruction + first instance) as a 'test set'."""
    seeds = self_instruct_seeds()
    frame = seeds.select(
        "id",
        pl.col("instruction"),
        pl.col("instances").list.first().struct.field("input").fill_null("").alias("input"),
        pl.col("instances").list.first().struct.field("output").fill_null("").alias("output"),
    )
    return load_benchmark(
        frame, text_column=["instruction", "input", "output"], id_column="id", name="seed-tasks"
    )


def _long_items(bench: Benchmark, k: int) -> list[tuple[str, list[str]]]:
    out = []
    for row in bench.items.iter_rows(named=True):
        words = decontam._words(pl.Series([row["text"]])).to_list()[0]
        if len(words) >= 30:
            out.append((row["id"], words))
        if len(out) == k:
            return out
    raise AssertionError("not enough long items")


def test_flags_name_the_item_and_the_span(bench: Benchmark) -> None:
    items = _long_items(bench, 5)
    rows, expect = [], []
    for k, (item_id, words) in enumerate(items):
        span = words[3 : 3 + 13 + k]  # 13..17 shared words
        # change case and punctuation: normalisation must still see the same words
        pasted = " ".join(w.upper() if i % 2 else w + "," for i, w in enumerate(span))
        rows.append(f"{HOST} {pasted}. {HOST}")
        expect.append((item_id, " ".join(span)))
    clean = default_seeds()["instruction"].to_list()
    frame = pl.DataFrame({"id": [f"r{k}" for k in range(len(rows) + len(clean))], "text": rows + clean})
    out = decontaminate(frame, bench)
    flagged = out.filter(pl.col("status") == "dropped")
    assert flagged["id"].to_list() == [f"r{k}" for k in range(len(rows))]  # and no false flag on the seeds
    assert list(zip(flagged["contaminated_by"], flagged["contamination_span"], strict=True)) == expect
    assert flagged["reason"].unique().to_list() == ["contamination:seed-tasks"]
    assert flagged["contamination_benchmark"].unique().to_list() == ["seed-tasks"]
    assert out.filter(pl.col("status") == "kept")["contaminated_by"].null_count() == len(clean)


def test_an_overlap_shorter_than_n_is_not_flagged_and_n_is_configurable(bench: Benchmark) -> None:
    (item_id, words), *_ = _long_items(bench, 1)
    frame = pl.DataFrame({"id": ["a"], "text": [f"{HOST} {' '.join(words[:12])} {HOST}"]})
    assert decontaminate(frame, bench)["status"].to_list() == ["kept"]
    out = decontaminate(frame, bench, DecontamConfig(n=12))
    assert out["contaminated_by"].to_list() == [item_id]
    assert out["contamination_span"].to_list() == [" ".join(words[:12])]


def test_short_items_skip_or_whole() -> None:
    short = "Name three primary colours used in painting today"  # 8 words < 13
    frame = pl.DataFrame({"id": ["a", "b"], "text": [f"Q: {short}? A: red.", "three primary colours"]})
    assert decontaminate(frame, [short])["status"].to_list() == ["kept", "kept"]
    out = decontaminate(frame, [short], DecontamConfig(short_items="whole"))
    assert out["status"].to_list() == ["dropped", "kept"]
    assert out["contamination_span"][0] == short.lower()
    assert out["contaminated_by"][0] == "0" and out["contamination_benchmark"][0] == "benchmark"
    tiny = DecontamConfig(short_items="whole", min_words=9)
    assert decontaminate(frame, [short], tiny)["status"].to_list() == ["kept", "kept"]


def test_several_benchmarks_and_rows_already_dropped() -> None:
    a = " ".join(f"alpha{k}" for k in range(20))
    b = " ".join(f"beta{k}" for k in range(20))
    frame = pl.DataFrame({
        "id": ["x", "y", "z"],
        "text": [a, b, a],
        "status": ["kept", None, "dropped"],
        "reason": [None, None, "too_long"],
    })  # fmt: skip
    benches = [load_benchmark([a], name="A"), load_benchmark([b], name="B")]
    out = decontaminate(frame, benches)
    assert out["status"].to_list() == ["dropped", "dropped", "dropped"]
    assert out["reason"].to_list() == ["contamination:A", "contamination:B", "too_long"]
    assert out["contamination_benchmark"].to_list() == ["A", "B", None]


def test_a_hash_collision_never_flags_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # every window hashes to 0: all rows hit the table, and only the real overlap survives the word check
    monkeypatch.setattr(decontam, "mix64", lambda x: np.zeros_like(x))
    item = " ".join(f"w{k}" for k in range(15))
    frame = pl.DataFrame(
        {"id": ["a", "b"], "text": [f"pre {item} post", " ".join(f"v{k}" for k in range(30))]}
    )
    out = decontaminate(frame, [item])
    assert out["status"].to_list() == ["dropped", "kept"]
    span = out["contamination_span"][0]
    assert span in item and len(span.split()) >= 13  # a verified run of the item's words


def test_load_benchmark_files_and_datasets(tmp_path: Path) -> None:
    recs = [
        {"qid": "q1", "question": "What is two plus two", "answer": "four"},
        {"qid": "q2", "question": "Hi", "answer": "x"},
    ]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    pl.DataFrame(recs).write_parquet(tmp_path / "t.parquet")
    pl.DataFrame(recs).write_csv(tmp_path / "t.csv")
    for name in ("t.jsonl", "t.parquet", "t.csv"):
        b = load_benchmark(tmp_path / name, text_column=["question", "answer"], id_column="qid")
        assert b.name == "t"
        assert b.items.to_dicts() == [
            {"id": "q1", "text": "What is two plus two\nfour"},
            {"id": "q2", "text": "Hi\nx"},
        ]
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(recs)
    b = load_benchmark(ds, text_column="question", id_column="qid", name="toy")
    assert (b.name, b.items["id"].to_list()) == ("toy", ["q1", "q2"])


def test_errors_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        DecontamConfig(n=0)
    with pytest.raises(ValidationError):
        DecontamConfig(ngram=13)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="load_dataset"):
        load_benchmark("hf://datasets/openai/gsm8k")
    with pytest.raises(ValueError, match="does not exist"):
        load_benchmark(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match=r"\.jsonl, \.json, \.parquet or \.csv"):
        (tmp_path / "x.txt").write_text("hi")
        load_benchmark(tmp_path / "x.txt")
    with pytest.raises(ValueError, match=r"no column\(s\) \['question'\]"):
        load_benchmark(pl.DataFrame({"text": ["a"]}), text_column="question")
    with pytest.raises(ValueError, match="repeat"):
        load_benchmark(pl.DataFrame({"id": ["a", "a"], "text": ["x", "y"]}), id_column="id")
    with pytest.raises(ValueError, match="no 'text' column"):
        decontaminate(pl.DataFrame({"id": ["a"], "instruction": ["x"]}), ["x"])
    with pytest.raises(ValueError, match="must hold str"):
        decontaminate(pl.DataFrame({"id": ["a"], "text": ["x"]}), [1, 2])  # type: ignore[arg-type]
