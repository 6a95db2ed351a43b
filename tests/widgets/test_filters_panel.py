"""The Filters tab driven headless: set traits, click, read the counts, the dropped rows and the run."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from widgets.filters_panel import FilterPanel, reference_texts
from widgets.inspector import InspectorPanel
from widgets.ui import controls_in
from workbench.engine import FakeBackend
from workbench.export import ExportSpec, build_export_frame
from workbench.filters import FILTER_STAGE, NEAR_DUPLICATE, rouge_l_matrix, with_filter_drops
from workbench.generate.seeds import default_seeds
from workbench.session import Session

SEA = "Write a short poem about the sea at night for a child"
SEA2 = "Write a short poem about the sea at night for a small child"
LEAK = "the quick brown fox jumps over the lazy dog while the farmer sleeps in the barn"
INSTRUCTIONS = [
    SEA,
    "Explain how tides work on the Earth and the Moon",
    SEA2,
    "Name it",  # two words
    "Describe the image of a quiet harbour at dawn",
    f"Continue the story: {LEAK} until morning",
    "List three prime numbers above one hundred please",
]


def _store_rows(session: Session) -> None:
    rows = [
        {"id": f"i{k}", "stage": "instruction", "text": t, "round": 1} for k, t in enumerate(INSTRUCTIONS)
    ]
    rows.append({"id": "bad", "stage": "instruction", "text": "", "status": "dropped", "reason": "empty"})
    answers = [
        {"id": f"a{k}", "stage": "completion", "parent_id": f"i{k}", "instruction": INSTRUCTIONS[k], "input": "",
         "text": f"Answer number {k}: " + " ".join(["tides", "moon", "sea", "poem", "night"][: k + 1]) + " words here.",
         "prompt": INSTRUCTIONS[k], "model": "fake"}
        for k in (0, 1, 2, 6)
    ]  # fmt: skip
    session.store.append(rows)
    session.store.append(answers)


@pytest.fixture
def panel(tmp_path) -> FilterPanel:
    session = Session(FakeBackend(), runs_root=tmp_path / "runs", run="filters")
    _store_rows(session)
    return FilterPanel(session)


def counts(p: FilterPanel) -> dict[str, int]:
    assert p.result is not None
    return dict(zip(p.result.counts["filter"], p.result.counts["dropped"], strict=True))


def dropped(p: FilterPanel) -> dict[str, dict]:
    assert p.result is not None
    return {r["id"]: r for r in p.result.dropped.iter_rows(named=True)}


def test_defaults_show_counts_and_every_dropped_row_with_its_reason(panel):
    c = counts(panel)
    d = dropped(panel)
    assert d["i3"]["filter"] == "length" and d["i3"]["reason"] == "too_short"
    assert d["i4"]["reason"] == "blacklist:image"  # the paper's blocklist is on by default
    assert d["i2"]["filter"] == "near_dup" and d["i2"]["dup_of"] == "i0"
    sim = float(rouge_l_matrix([SEA2], [SEA])[0, 0])
    assert f"{sim:.2f}" in d["i2"]["detail"] and d["i2"]["reason"] == NEAR_DUPLICATE
    assert (c["length"], c["keywords"], c["near_dup"]) == (1, 1, 1)
    assert panel.result.skipped == 1  # the row dropped when generated is not re-filtered
    html_counts = panel.counts.value
    assert "near duplicates" in html_counts and "<td class='wb-filters-n'>1</td>" in html_counts
    assert "near_duplicate" in panel.dropped_table.value and "i0" in panel.dropped_table.value
    assert "<b>4</b> kept · <b>3</b> dropped of 7 instructions" in panel.summary.value


def test_cheap_thresholds_refilter_live(panel):
    panel.min_words.value = 9  # "Name it" and several short ones now fail the length filter
    words = {f"i{k}": len(t.split()) for k, t in enumerate(INSTRUCTIONS)}
    expect_short = {k for k, n in words.items() if n < 9}
    assert {k for k, r in dropped(panel).items() if r["filter"] == "length"} == expect_short
    panel.min_words.value = 1
    panel.use_keywords.value = False
    assert "i4" not in dropped(panel)
    panel.near_dup.value = 1.0  # above the pair's similarity: both kept
    assert counts(panel)["near_dup"] == 0 and "i2" not in dropped(panel)
    panel.use_near_dup.value = False
    assert panel.result.counts.filter(pl.col("filter") == "near_dup")["setting"][0] == "off"
    panel.blocklist.value = "harbour, primes"
    panel.use_keywords.value = True
    assert dropped(panel)["i4"]["reason"] == "blacklist:harbour"


def test_rouge_l_to_the_seeds(tmp_path):
    session = Session(FakeBackend(), runs_root=tmp_path / "runs", run="r")
    seeds = default_seeds()
    copy = seeds["instruction"][0] + " please"
    session.store.append(
        [{"id": "c", "stage": "instruction", "text": copy}, {"id": "o", "stage": "instruction", "text": SEA}]
    )
    p = FilterPanel(session, seeds=lambda: seeds)
    p.use_rouge.value = True
    p.rouge_max.value = 0.8
    d = dropped(p)
    assert d["c"]["filter"] == "rouge_l" and d["c"]["dup_of"] == seeds["id"][0] and "o" not in d
    outputs = reference_texts(seeds, "completion")
    assert outputs.height > 0 and outputs["id"][0].endswith("/output")


def test_decontamination_from_a_file_and_a_clear_error_for_a_bad_path(panel, tmp_path):
    bench = tmp_path / "gsm.jsonl"
    bench.write_text(
        json.dumps({"question": f"Read: {LEAK}."}) + "\n" + json.dumps({"question": "What is 2+2?"})
    )
    panel.use_decontam.value = True
    assert "no benchmark file" in panel.error.value and panel.result is None
    panel.bench_path.value = str(tmp_path / "missing.jsonl")
    assert "does not exist" in panel.error.value
    panel.bench_path.value = str(bench)
    assert (
        "has no column" in panel.error.value and "question" in panel.error.value
    )  # names the columns there are
    panel.bench_column.value = "question"
    d = dropped(panel)
    assert panel.error.value == ""
    assert d["i5"]["filter"] == "decontam" and d["i5"]["reason"] == "contamination:gsm"
    assert d["i5"]["contaminated_by"] == "0" and d["i5"]["contamination_span"] == LEAK
    panel.ngram.value = 17  # longer than the shared span
    assert "i5" not in dropped(panel)


def test_apply_records_drops_that_the_inspector_and_export_see_and_deletes_nothing(panel, tmp_path):
    store = panel.session.store
    before = store.rows().filter(pl.col("stage") != FILTER_STAGE).height
    panel.apply_button.click()
    rows = store.rows()
    assert rows.filter(pl.col("stage") != FILTER_STAGE).height == before  # nothing generated is lost
    filt = rows.filter(pl.col("stage") == FILTER_STAGE)
    assert set(filt["parent_id"]) == set(dropped(panel)) and set(filt["status"]) == {"dropped"}
    assert (
        "recorded 3 decisions" in panel.apply_status.value
        and "3 dropped in the run by Apply" in panel.summary.value
    )
    inspector = InspectorPanel(panel.session)
    inspector.status.value = "dropped"
    inspector.stage.value = "instruction"
    shown = {c["id"] for c in inspector.view.cards}
    assert {"i2", "i3", "i4"} <= shown and "i0" not in shown
    panel.apply_button.click()
    assert "already has these decisions" in panel.apply_status.value
    # Answers: drop the short ones; the export leaves them out.
    panel.stage.value = "completion"
    panel.use_near_dup.value = False
    panel.min_words.value = 7
    gone = set(dropped(panel))
    short = {r["id"] for r in panel.rows.iter_rows(named=True) if len(r["text"].split()) < 7}
    assert gone == short and 0 < len(gone) < 4
    panel.apply_button.click()
    frame = build_export_frame(
        store.rows(), ExportSpec(format="prompt_completion", stage="completion", path=str(tmp_path / "pc"))
    )
    assert set(frame["id"]) == {"a0", "a1", "a2", "a6"} - gone
    view = with_filter_drops(store.rows())
    assert set(view.filter((pl.col("stage") == "completion") & (pl.col("status") == "dropped"))["id"]) == gone


def test_ifd_runs_only_on_run_in_a_worker_and_then_filters_live(panel):
    panel.stage.value = "completion"
    panel.use_length.value = panel.use_keywords.value = panel.use_near_dup.value = False
    panel.use_ifd.value = True
    assert panel.result.not_scored == 4 and panel.result.dropped.height == 0  # no model call yet
    panel.run_button.click()
    assert panel.job is not None and panel.job.wait(60).state == "done", panel.job.error_text
    ifd = panel.rows["ifd"].to_list()
    assert all(v is not None for v in ifd) and panel.result.not_scored == 0
    panel.max_ifd.value = sorted(ifd)[1]  # every answer but the lowest-scored one goes
    expect = {i for i, v in zip(panel.rows["id"], ifd, strict=True) if v >= panel.max_ifd.value}
    assert len(expect) >= 2 and {k for k, r in dropped(panel).items() if r["filter"] == "ifd"} == expect


def test_ifd_on_instructions_is_refused_in_plain_words(panel):
    panel.run_button.click()
    assert panel.job is None and "set rows to answers" in panel.error.value
    assert "not started" in panel.progress_label.value


def test_every_control_has_a_one_sentence_tooltip(panel):
    controls = controls_in(panel)
    assert len(controls) >= 18
    assert [c.description for c in controls if not (c.tooltip or "").strip()] == []
    one = re.compile(r"[^.!?]+(\.[\w)]+[^.!?]*)*[.!?]")
    assert [c.tooltip for c in controls if not one.fullmatch(c.tooltip.strip())] == []
