"""The collapse panel, driven headless: set the knobs, click Run/Stop, read the chart and the table."""

from __future__ import annotations

import polars as pl
import pytest

from widgets import CollapsePanel
from widgets.ui import controls_in


@pytest.fixture
def panel() -> CollapsePanel:
    p = CollapsePanel()
    p.generations.value, p.seeds.value = 3, 3
    return p


def test_knobs_make_the_config_and_every_control_has_a_tooltip(panel):
    panel.arms.value = ("replace", "mix")
    panel.mix_fraction.value = 0.3
    panel.order.value = 3
    cfg = panel.config()
    assert (cfg.arms, cfg.generations, cfg.seeds, cfg.mix_fraction, cfg.order) == (("replace", "mix"), 3, 3, 0.3, 3)
    assert "wb-collapse" in panel._dom_classes
    assert all(c.tooltip for c in controls_in(panel))


def test_run_shows_the_chart_and_the_contrasts_and_prints_nothing(panel, capfd):
    panel.run_button.click()
    assert panel.run_button.disabled and not panel.stop_button.disabled
    job = panel.job.wait(120)
    assert job.state == "done", job.error_text
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert panel.progress.value == 1.0 and panel.progress_label.value.startswith("done · 36/36 generations")
    result = panel.result
    assert result is not None and set(result.per_seed["arm"]) == {"replace", "accumulate", "mix"}
    spec = panel.chart.chart.to_dict()
    data = pl.DataFrame(next(iter(spec["datasets"].values())))
    assert set(data["metric"]) >= {"perplexity", "tail_mass", "coverage_1", "distinct_1", "compression_ratio"}
    assert data["generation"].max() == 3
    table = panel.contrasts.value
    assert "replace - accumulate" in table and "mix - accumulate" in table and "perplexity" in table
    # replace's perplexity is above accumulate's beyond the interval after 3 generations
    row = table.split("replace - accumulate</td><td>3</td><td>perplexity</td>")[1].split("</tr>")[0]
    assert row.endswith("<td>yes</td>")
    assert "9 arm×seed runs" in panel.status.value
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the worker thread never prints


def test_stop_keeps_what_was_measured(panel):
    panel.generations.value, panel.seeds.value = 50, 20
    seen = []

    def stop_soon(p):
        seen.append(p.rows_done)
        if p.rows_done == 2:
            panel.stop_button.click()

    panel.run_button.click()
    panel.job.on_progress.append(stop_soon)
    job = panel.job.wait(120)
    assert job.state == "cancelled"
    assert panel.result is not None and panel.result.cancelled
    assert panel.result.per_seed.select("arm", "seed", "generation").unique().height < 50
    assert panel.progress_label.value.startswith("stopped after") and "ETA" not in panel.progress_label.value
    assert panel.status.value.startswith("stopped")
    assert panel.progress.value < 1.0


def test_refuses_a_second_run_and_an_empty_arm_choice(panel):
    panel.generations.value, panel.seeds.value = 50, 20
    panel.run_button.click()
    assert panel.run() is None and "already in progress" in panel.error.value
    panel.stop()
    panel.job.wait(120)
    panel.arms.value = ()
    assert panel.run() is None
    assert "choose at least one arm" in panel.error.value and panel.progress_label.value.startswith("not started")


def test_a_users_corpus():
    # word{i} occurs once: the human tail the experiment measures needs rare words
    texts = [f"task {i % 7} asks for word{i} and item {i % 5}" for i in range(200)]
    p = CollapsePanel(pl.DataFrame({"text": texts}))
    p.arms.value, p.generations.value, p.seeds.value = ("replace", "accumulate"), 2, 2
    p.run_button.click()
    job = p.job.wait(60)
    assert job.state == "done", job.error_text
    assert p.result is not None and p.result.corpus["train_sentences"] == 160
    assert set(p.result.per_seed["arm"]) == {"replace", "accumulate"}


def test_a_corpus_without_rare_words_is_refused_in_the_panel_with_what_to_change():
    texts = [f"task {i % 7} asks for item {i % 11} and item {i % 5}" for i in range(200)]
    p = CollapsePanel(pl.DataFrame({"text": texts}))
    p.arms.value, p.generations.value, p.seeds.value = ("replace",), 1, 1
    p.run_button.click()
    assert p.job.wait(60).state == "failed"
    assert "rare_max_count" in p.error.value and "collapse run failed" in p.error.value
    assert not p.run_button.disabled
