"""Compare runs panel: two runs (or two models of one run) side by side, and their metrics with the
interval of the difference. Headless: set traits, click, wait for the job."""

from __future__ import annotations

import polars as pl
import pytest

from widgets.compare_panel import ComparePanel
from widgets.ui import controls_in
from workbench import FakeBackend, Session
from workbench.runs import RunStore

PROMPTS = [f"Question {i}: how does thing {i} work?" for i in range(12)]


def completions(prefix: str, prompts: list[str], text, model: str = "m") -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "stage": "completion",
            "prompt": p,
            "model": model,
            "status": "kept",
            "text": text(i),
        }
        for i, p in enumerate(prompts)
    ]


def varied(i: int) -> str:
    words = [
        "tides",
        "spices",
        "chess",
        "water",
        "heist",
        "miles",
        "rings",
        "notes",
        "ferries",
        "soup",
        "running",
    ]
    return f"An answer about {words[i % len(words)]} and {words[(i * 5 + 3) % len(words)]}, case {i}."


@pytest.fixture
def session(tmp_path) -> Session:
    s = Session(FakeBackend(), runs_root=tmp_path, run="main")
    # main answers prompts 0..9 varied; "other" answers 2..11, the same text for 2..4, a stock reply after
    s.store.append(completions("a", PROMPTS[:10], varied))
    other = RunStore.create(tmp_path, "other")
    rows = completions("b", PROMPTS[2:], lambda i: varied(i + 2) if i < 3 else "I cannot help with that.")
    other.append(rows)
    return s


def test_constructible_with_a_session_and_every_control_has_a_tooltip(session):
    panel = ComparePanel(session)
    assert panel.run_names() == ["main", "other"]
    assert (panel.run_a.value, panel.run_b.value) == ("main", "other")
    assert panel.stage.value == "completion" and panel.on.value == "prompt" and panel.text.value == "text"
    assert panel.models_row.layout.display == "none"
    for control in controls_in(panel):
        assert control.tooltip, control


def test_diff_two_runs_side_by_side(session):
    panel = ComparePanel(session, page_size=4)
    panel.diff_button.click()
    diff = panel.diff_frame
    assert diff is not None and session.last_error is None
    presence = dict(diff.group_by("presence").len().iter_rows())
    assert presence == {"both": 8, "only_a": 2, "only_b": 2}
    assert (
        "8 prompts in both (5 with different texts), 2 only in A (main), 2 only in B (other)"
        in panel.summary.value
    )
    # most different first: a changed prompt heads the table, with both texts next to each other
    first = panel.shown().row(0, named=True)
    assert first["changed"] and first["text_b"] == "I cannot help with that."
    assert "page 1 of 3 (12 prompts)" in panel.page_label.value
    assert panel.table.value.count("<tr class='wb-diff-") == 4
    assert "A: main" in panel.table.value and "B: other" in panel.table.value

    panel.show.value = "only_b"
    assert panel.shown()["presence"].to_list() == ["only_b", "only_b"]
    assert panel.table.value.count("only in B") == 2 and panel.table.value.count("wb-only-b") == 2
    panel.show.value = "changed"
    assert panel.shown().height == 5 + 4  # changed texts, and a side with no text at all counts as changed
    panel.show.value = "all"
    panel.next_button.click()
    assert panel.page == 1 and panel.prev_button.disabled is False
    panel.next_button.click()
    assert panel.page == 2 and panel.next_button.disabled is True
    assert panel.table.value.count("<tr class='wb-diff-") == 4


def test_metrics_of_each_side_with_the_interval_of_the_difference(session):
    panel = ComparePanel(session, n_boot=50)
    panel.run_button.click()
    job = panel.job
    assert job is not None
    job.wait(60)
    assert job.state == "done", job.error_text
    table = panel.metrics
    assert table is not None
    assert set(table["set"]) == {"main", "other", "main - other"}
    assert (table.filter(pl.col("set") != "main - other")["n_rows"] == 10).all()  # the smaller side: 10 rows

    def get(s: str, m: str) -> dict:
        return table.filter((pl.col("set") == s) & (pl.col("metric") == m)).row(0, named=True)

    d2 = get("main - other", "distinct_2")
    assert d2["value"] == pytest.approx(
        get("main", "distinct_2")["value"] - get("other", "distinct_2")["value"]
    )
    assert d2["ci_low"] > 0  # varied answers beat a stock reply, and the interval says so
    assert "main - other" in panel.metrics_table.value and "distinct-2" in panel.metrics_table.value
    assert "done · 10 rows per side" in panel.progress_label.value


def test_budget_cuts_both_sides(session):
    panel = ComparePanel(session, n_boot=20)
    panel.budget.value = 4
    panel.run_button.click()
    assert panel.job is not None
    panel.job.wait(60)
    assert panel.metrics is not None and set(panel.metrics["n_rows"]) == {4}


def test_two_models_in_one_run(tmp_path):
    s = Session(FakeBackend(), runs_root=tmp_path, run="preds")
    s.store.append(completions("x", PROMPTS[:6], varied, model="alpha"))
    s.store.append(
        completions("y", PROMPTS[:6], lambda i: varied(i) if i % 2 else "Same reply.", model="beta")
    )
    panel = ComparePanel(s, n_boot=20)
    panel.mode.value = "models"
    assert panel.models_row.layout.display is None and panel.runs_row.children == (panel.run_a,)
    assert (panel.model_a.value, panel.model_b.value) == ("alpha", "beta")
    panel.diff_button.click()
    diff = panel.diff_frame
    assert diff is not None and set(diff["presence"]) == {"both"}
    assert diff.filter(pl.col("changed")).height == 3
    assert "A: alpha" in panel.table.value
    panel.run_button.click()
    assert panel.job is not None
    panel.job.wait(60)
    assert panel.job.state == "done" and "alpha - beta" in set(panel.metrics["set"])  # type: ignore[index]


def test_bad_choices_are_refused_with_what_to_do(session, tmp_path):
    panel = ComparePanel(session)
    panel.run_b.value = "main"
    panel.diff_button.click()
    assert panel.diff_frame is None and "pick two different runs" in panel.error.value
    panel.run_button.click()
    assert panel.job is None and "pick two different runs" in panel.error.value
    assert "not started" in panel.progress_label.value

    lone = Session(FakeBackend(), runs_root=tmp_path / "one", run="solo")
    lone.store.append(
        completions("z", PROMPTS[:1], varied) + completions("w", PROMPTS[:3], varied, model="n")
    )
    p2 = ComparePanel(lone)
    p2.mode.value = "models"
    p2.run_button.click()
    assert p2.job is None and "at least 2 rows" in p2.error.value


def test_refresh_sees_a_new_run(session, tmp_path):
    panel = ComparePanel(session)
    RunStore.create(tmp_path, "third").append(completions("c", PROMPTS[:2], varied))
    panel.refresh()
    assert panel.run_names() == ["main", "other", "third"]
    panel.run_b.value = "third"
    panel.diff_button.click()
    assert panel.diff_frame is not None and panel.diff_frame.height == 10
