from __future__ import annotations

import json

import polars as pl
import pytest

from widgets.dashboard import DiversityPanel
from workbench import FakeBackend, Session
from workbench.runs import RunStore


def pick(chart, values):
    """What the browser sends when a user clicks a mark: the vega signal of the `pick` selection."""
    chart._vl_selections = {"pick": {"value": {"vlPoint": {"or": values}}, "store": []}}


@pytest.fixture
def session(tmp_path, shared_data) -> Session:
    tasks = [json.loads(line) for line in (shared_data / "seed_tasks.jsonl").read_text().splitlines() if line]
    s = Session(FakeBackend(), runs_root=tmp_path, run="main")
    s.store.append(
        [
            {
                "id": f"i{i}",
                "stage": "instruction",
                "round": i % 3,
                "status": "kept" if i % 4 else "dropped",
                "text": t["instruction"],
            }
            for i, t in enumerate(tasks)
        ]
    )
    return s


def test_panel_builds_charts_and_selection_filters_ids(session):
    panel = DiversityPanel(session, n_boot=50)
    assert "wb-diversity" in panel._dom_classes
    panel.embeddings.value = True
    panel.k.value = 4
    panel.refresh()
    assert session.last_error is None
    assert set(panel.charts) == {
        "compare",
        "lengths",
        "similarity",
        "shape",
        "acceptance",
        "cluster_map",
        "cluster_sizes",
    }
    assert "175 rows" in panel.status.value
    got: list[list[str]] = []
    panel.on_select(got.append)

    pick(panel.charts["cluster_sizes"], [{"cluster": 2}])
    expected = panel.frames["clusters"].filter(pl.col("cluster") == 2)["id"].to_list()
    assert got[-1] == expected and len(expected) > 0
    assert f"<b>{len(expected)}</b> rows selected" in panel.selection_label.value

    pick(panel.charts["acceptance"], [{"round": 1}])
    assert got[-1] == [f"i{i}" for i in range(175) if i % 3 == 1]

    shapes = panel.frames["shape"]
    verb, obj, count = shapes.row(0)[:3]
    pick(panel.charts["shape"], [{"verb": verb, "object": obj}])
    assert len(got[-1]) == count

    pick(panel.charts["cluster_sizes"], [])
    assert got[-1] is None  # an emptied selection clears the inspector's filter (it never hides every row)
    assert panel.selection_label.value == ""


def test_compare_by_round_splits_sets_and_picks_a_set(session):
    panel = DiversityPanel(session, n_boot=50)
    panel.compare_by.value = "round"
    panel.refresh()
    cmp = panel.frames["compare"]
    assert sorted(cmp["set"].unique().to_list()) == ["0", "1", "2"]
    got: list[list[str]] = []
    panel.on_select(got.append)
    pick(panel.charts["compare"], [{"set": "2"}])
    assert got[-1] == [f"i{i}" for i in range(175) if i % 3 == 2]
    lengths = panel._tables["lengths"]
    row = lengths.row(0, named=True)
    pick(panel.charts["lengths"], [{"bin_start": row["bin_start"], "set": row["set"]}])
    assert row["id"] in got[-1]
    assert all(s == row["set"] for s in lengths.filter(pl.col("id").is_in(got[-1]))["set"])


def test_compare_with_another_run(session, tmp_path):
    other = RunStore.create(tmp_path, "other")
    other.append(
        [{"id": f"o{i}", "stage": "instruction", "text": "write a poem about the sea"} for i in range(20)]
    )
    panel = DiversityPanel(session, n_boot=50)
    assert panel.other_runs.options == ("other",)
    panel.other_runs.value = ("other",)
    panel.refresh()
    cmp = panel.frames["compare"]
    self_bleu = dict(cmp.filter(pl.col("metric") == "self_bleu").select("set", "value").iter_rows())
    assert self_bleu["other"] > 0.9 > self_bleu["main"]


def test_errors_reach_the_status_line_and_the_app(session):
    panel = DiversityPanel(session)
    panel.embeddings.value = True
    panel.k.value = 2
    session.use_model(FakeBackend())  # fine; now break the backend's embed
    session.backend.embed = lambda texts: (_ for _ in ()).throw(RuntimeError("embedding model missing"))  # type: ignore[method-assign]
    panel.refresh()
    assert "embedding model missing" in panel.status.value
    assert "embedding model missing" in (session.last_error or "")


def test_empty_run_says_what_to_do(tmp_path):
    s = Session(FakeBackend(), runs_root=tmp_path, run="empty")
    panel = DiversityPanel(s)
    panel.refresh()
    assert "generate some first" in panel.status.value
    assert panel.charts_box.children == ()


def test_session_rows_event_marks_stale(session):
    panel = DiversityPanel(session)
    session.notify_rows_changed()
    assert "Refresh" in panel.status.value


@pytest.fixture
def mixed_session(tmp_path) -> Session:
    """What a first session leaves: self-instruct candidates, then answers and judge outputs that carry
    the same round and a status of their own (the quickstart run of issue 18)."""
    s = Session(FakeBackend(), runs_root=tmp_path, run="mixed")
    statuses = {1: ["kept", "kept", "kept", "dropped"], 2: ["kept", "dropped", "kept", "dropped"]}
    rows = []
    for rnd, sts in statuses.items():
        for j, st in enumerate(sts):
            rows.append({"id": f"i{rnd}{j}", "stage": "instruction", "round": rnd, "status": st,
                         "text": f"Write item {rnd}{j} about topic {j} in detail."})  # fmt: skip
            if st == "kept":
                rows.append({"id": f"c{rnd}{j}", "stage": "completion", "parent_id": f"i{rnd}{j}", "round": rnd,
                             "status": "kept", "text": f"answer {rnd}{j}"})  # fmt: skip
                rows.append({"id": f"j{rnd}{j}", "stage": "judgment", "parent_id": f"c{rnd}{j}", "round": rnd,
                             "status": "kept", "text": "1"})  # fmt: skip
    rows.append({"id": "e1", "stage": "instruction", "round": 1, "status": "error", "text": ""})
    s.store.append(rows)
    return s


def test_default_stage_is_instructions_not_everything(mixed_session):
    """Issue 18.2: "(all)" mixed answers and judge outputs ("1", "i", "a" as root verbs) into the metrics."""
    panel = DiversityPanel(mixed_session, n_boot=20)
    assert panel.stage.value == "instruction"
    panel.refresh()
    assert "8 rows" in panel.status.value
    verbs = set(panel.frames["shape"]["verb"].to_list())
    assert "write" in verbs and "1" not in verbs


def test_changing_the_stage_recomputes_without_refresh(mixed_session):
    panel = DiversityPanel(mixed_session, n_boot=20)
    panel.refresh()
    assert "8 rows" in panel.status.value
    panel.stage.value = "completion"  # no Refresh press
    assert "5 rows" in panel.status.value
    assert set(panel.frames["compare"]["set"]) == {"mixed"}


def test_acceptance_is_the_same_number_in_generate_and_diversity(mixed_session):
    """Issue 18.2: Generate showed 0.75/0.50 per round, Diversity 86%/67% for the same run, because
    answers and judge outputs (status kept, same round) were counted as accepted candidates."""
    from workbench.generate.selfinstruct.stats import acceptance_by_round

    generate = acceptance_by_round(mixed_session.store.rows())
    assert generate["rate"].to_list() == [0.75, 0.5]
    assert generate["errors"].to_list() == [1, 0]  # an engine error is no decision: counted apart
    for stage in ("instruction", "(all)"):
        panel = DiversityPanel(mixed_session, n_boot=20)
        panel.stage.value = stage
        panel.refresh()
        shown = panel.frames["acceptance"]
        assert shown["rate"].to_list() == [0.75, 0.5], stage
