"""The row contract: one type per column whatever the mix of stages, old parts read or refused clearly."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.runs import COLUMNS, SCHEMA, ContractError, RunStore, contract_markdown, stage_columns


def _write_old_part(store: RunStore, name: str, frame: pl.DataFrame) -> None:
    """A part as an older version wrote it (bypassing today's append)."""
    frame.write_parquet(store.rows_dir / f"part-{name}.parquet")


def test_every_column_has_a_type_stages_and_a_meaning():
    names = [c.name for c in COLUMNS]
    assert len(names) == len(set(names)) and "order" not in names
    assert all(c.meaning and c.stages for c in COLUMNS)
    assert SCHEMA["decision_order"] == pl.Int64 and SCHEMA["pair_order"] == pl.Utf8
    assert "pair_order" in stage_columns("judgment") and "pair_order" not in stage_columns("instruction")
    table = contract_markdown()
    assert table.count("\n") == len(COLUMNS) + 1 and "| `decision_order` | Int64 | instruction |" in table


def test_types_do_not_depend_on_which_stages_a_run_holds(tmp_path):
    store = RunStore.create(tmp_path, "r")
    store.append([{"id": "j1", "stage": "judgment", "score": None, "pair_order": None}])  # all-null columns
    assert store.rows().schema["score"] == pl.Int64 and store.rows().schema["pair_order"] == pl.Utf8
    store.append([{"id": "j2", "stage": "judgment", "score": 4.0, "expected_score": 4}])  # float 4.0, int 4
    store.append([{"id": "i1", "stage": "instruction", "decision_order": 0, "example_ids": []}])
    rows = store.rows()
    for name, dtype in rows.schema.items():
        if name in SCHEMA:
            assert dtype == SCHEMA[name], name
    assert rows.filter(pl.col("id") == "j2")["score"].to_list() == [4]
    # Reading a run with the stages in a different order gives the same types.
    other = RunStore.create(tmp_path, "s")
    other.append([{"id": "i1", "stage": "instruction", "decision_order": 0, "example_ids": []}])
    other.append([{"id": "j2", "stage": "judgment", "score": 4.0, "expected_score": 4}])
    assert {k: v for k, v in other.rows().schema.items() if k in rows.columns} == {
        k: v for k, v in rows.schema.items() if k in other.rows().columns
    }


def test_a_value_of_the_wrong_type_is_refused_with_the_column_named(tmp_path):
    store = RunStore.create(tmp_path, "r")
    with pytest.raises(ContractError, match=r"column 'score' must be Int64.*judgment rows hold String"):
        store.append([{"id": "j", "stage": "judgment", "score": "high"}])
    with pytest.raises(ContractError, match=r"'score' holds integers.*4\.5"):
        store.append([{"id": "j", "stage": "judgment", "score": 4.5}])
    assert store.rows().height == 0  # nothing half-written


def test_columns_outside_the_contract_keep_their_first_type(tmp_path):
    store = RunStore.create(tmp_path, "r")
    store.append([{"id": "a", "stage": "completion", "my_note": None}])
    store.append([{"id": "b", "stage": "completion", "my_note": "useful"}])
    store.append([{"id": "c", "stage": "completion", "my_tag": 3}])
    assert store.rows().schema["my_note"] == pl.Utf8
    store.append([{"id": "d", "stage": "completion", "my_tag": [1, 2]}])
    with pytest.raises(ValueError, match=r"column 'my_tag' holds List.*earlier parts wrote it as Int64"):
        RunStore.open(store.path).rows()


def test_parts_of_an_older_version_are_read_by_stage(tmp_path):
    store = RunStore.create(tmp_path, "old")
    _write_old_part(store, "1", pl.DataFrame({"id": ["i1", "i2"], "stage": ["instruction"] * 2, "order": [0, 1],
                                              "status": ["kept", "dropped"]}))  # fmt: skip
    _write_old_part(store, "2", pl.DataFrame({"id": ["j1", "j2"], "stage": ["judgment"] * 2, "order": ["AB", "BA"]}))
    _write_old_part(store, "3", pl.DataFrame({"id": ["e1"], "stage": ["evolution"], "raw": ["raw out"]}))
    _write_old_part(store, "4", pl.DataFrame({"id": ["p1"], "stage": ["completion"], "source": ["predictions_x.jsonl"]}))
    rows = RunStore.open(store.path).rows()
    assert "order" not in rows.columns and "raw" not in rows.columns
    assert rows.schema["decision_order"] == pl.Int64 and rows.schema["pair_order"] == pl.Utf8
    by_id = {r["id"]: r for r in rows.iter_rows(named=True)}
    assert by_id["i2"]["decision_order"] == 1 and by_id["i2"]["pair_order"] is None
    assert by_id["j2"]["pair_order"] == "BA" and by_id["j2"]["decision_order"] is None
    assert by_id["e1"]["raw_text"] == "raw out"
    assert by_id["p1"]["source_file"] == "predictions_x.jsonl" and by_id["p1"]["source"] is None


def test_an_old_column_with_no_meaning_for_its_stage_is_refused(tmp_path):
    store = RunStore.create(tmp_path, "old")
    _write_old_part(store, "1", pl.DataFrame({"id": ["c1"], "stage": ["completion"], "order": [3]}))
    with pytest.raises(ContractError, match=r"part part-1.parquet.*column 'order' on 'completion' rows.*decision_order"):
        store.rows()


def test_the_readme_run_directory_section_is_the_contract():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## The run directory") :]
    section = section[: section.index("\n## ", 5)]
    assert contract_markdown() in section, "README's run-directory table is stale: paste contract_markdown()"
