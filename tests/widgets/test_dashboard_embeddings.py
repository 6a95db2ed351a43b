"""Diversity tab: embedding metrics (Vendi, distance) from a separately chosen model in a worker
thread, and the "split by" view over sampled attributes. Headless: set traits, click, wait."""

from __future__ import annotations

import json
import threading

import numpy as np
import polars as pl
import pytest

from widgets.dashboard import DiversityPanel
from widgets.diversity_embeddings import EmbeddingMetricsPanel
from widgets.ui import controls_in
from workbench import FakeBackend, Session
from workbench.engine import load_backend

TOPICS = ["food", "travel", "music"]


def instructions(n: int = 24) -> list[dict]:
    return [
        {
            "id": f"i{i}",
            "stage": "instruction",
            "round": 1,
            "status": "kept",
            "text": f"Write a {['short', 'long', 'funny'][i % 3]} note about {TOPICS[i % 3]} number {i}",
            "attributes": json.dumps({"topic": TOPICS[i % 3], "tone": "calm"}, sort_keys=True),
        }
        for i in range(n)
    ]


@pytest.fixture
def session(tmp_path) -> Session:
    s = Session(FakeBackend(), runs_root=tmp_path, run="main")
    s.store.append(instructions())
    return s


class CountingLoader:
    """Stands in for `load_backend`: records each load, hands out fakes (or a model that cannot embed)."""

    def __init__(self) -> None:
        self.loads: list[str] = []

    def __call__(self, spec: str) -> FakeBackend:
        self.loads.append(spec)
        backend = FakeBackend()
        if spec == "no-embed.gguf":

            def refuse(texts):
                raise NotImplementedError("this endpoint does not serve embeddings")

            backend.embed = refuse  # type: ignore[method-assign]
        return backend


def panel_with(session: Session, loader: CountingLoader | None = None) -> DiversityPanel:
    panel = DiversityPanel(session, n_boot=30)
    if loader is not None:
        panel.embedding_metrics._loader = loader
    panel.refresh()
    return panel


def test_embedding_metrics_are_off_and_hidden_until_ticked(session):
    panel = panel_with(session)
    emb = panel.embedding_metrics
    assert emb.enabled.value is False and emb.body.layout.display == "none"
    assert "vendi" not in set(panel.frames["compare"]["metric"])  # the lexical refresh never embeds
    emb.enabled.value = True
    assert emb.body.layout.display is None
    for control in controls_in(panel):  # the tab's every control, the new ones included
        assert control.tooltip, control
    assert {emb.enabled, emb.model, emb.run_button, emb.stop_button, panel.split.split_by} <= set(
        controls_in(panel)
    )


def test_compute_with_the_session_model_in_a_worker(session):
    panel = panel_with(session)
    emb = panel.embedding_metrics
    emb.enabled.value = True
    job = emb.run_button.click() or emb.job
    assert job is not None
    job.wait(30)
    assert job.state == "done", job.error_text
    frame = emb.frame
    assert frame is not None and set(frame["metric"]) == {"vendi", "mean_cosine_distance"}
    assert (frame["ci_low"] <= frame["value"] + 1e-12).all() and (
        frame["value"] <= frame["ci_high"] + 1e-12
    ).all()
    assert frame.filter(pl.col("metric") == "vendi")["sample_size"].to_list() == [24]
    assert "Vendi score" in emb.table.value and "[" in emb.table.value
    assert emb.chart is not None and emb.chart_box.children == (emb.chart,)
    assert "embedded with fake" in emb.progress_label.value
    assert emb.progress.value == 1.0 and emb.run_button.disabled is False


def test_a_named_embedding_model_loads_once_and_is_kept(session):
    loader = CountingLoader()
    panel = panel_with(session, loader)
    emb = panel.embedding_metrics
    emb.enabled.value, emb.model.value = True, "my-embedder.gguf"
    for _ in range(2):
        emb.run_button.click()
        assert emb.job is not None
        emb.job.wait(30)
        assert emb.job.state == "done", emb.job.error_text
    assert loader.loads == ["my-embedder.gguf"]  # cached on the panel
    assert emb.embedding_backend() is emb._backend
    emb.model.value = ""  # empty: back to the session's model, no load
    assert emb.embedding_backend() is session.backend
    assert loader.loads == ["my-embedder.gguf"]


def test_a_model_that_cannot_embed_is_refused_clearly(session):
    loader = CountingLoader()
    panel = panel_with(session, loader)
    emb = panel.embedding_metrics
    emb.enabled.value, emb.model.value = True, "no-embed.gguf"
    emb.run_button.click()
    assert emb.job is not None
    emb.job.wait(30)
    assert emb.job.state == "failed"
    assert "cannot embed" in emb.error.value and "no-embed.gguf" in emb.error.value
    assert "does not serve embeddings" in (session.last_error or "")
    assert emb._backend is None  # nothing half-loaded is kept


def test_stop_cancels_between_batches(session):
    gate, started = threading.Event(), threading.Event()
    fake = FakeBackend()
    real_embed = fake.embed

    def slow_embed(texts):
        started.set()
        gate.wait(10)
        return real_embed(texts)

    fake.embed = slow_embed  # type: ignore[method-assign]
    session.use_model(fake)
    panel = panel_with(session)
    emb = panel.embedding_metrics
    emb.enabled.value = True
    emb.run_button.click()
    assert emb.job is not None and started.wait(10)
    assert emb.stop_button.disabled is False
    emb.stop_button.click()
    gate.set()
    emb.job.wait(30)
    assert emb.job.state == "cancelled"
    assert emb.frame is None and "cancelled" in emb.progress_label.value


def test_too_few_rows_is_refused_before_starting(tmp_path):
    s = Session(FakeBackend(), runs_root=tmp_path, run="one")
    s.store.append(instructions(1))
    panel = panel_with(s)
    panel.embedding_metrics.enabled.value = True
    panel.embedding_metrics.run_button.click()
    assert panel.embedding_metrics.job is None
    assert "at least 2 rows" in panel.embedding_metrics.error.value


def test_split_by_lists_the_run_attributes_and_shows_groups(session):
    panel = panel_with(session)
    split = panel.split
    assert list(split.split_by.options) == ["(none)", "tone", "topic"]
    assert split.split_by.disabled is False
    split.split_by.value = "topic"
    frame = split.frame
    assert frame is not None
    assert frame["group"].unique(maintain_order=True).to_list() == ["food", "music", "travel"]
    assert frame.filter(pl.col("metric") == "mean_words")["n_rows"].to_list() == [8, 8, 8]
    d2 = frame.filter(pl.col("metric") == "distinct_2")
    assert d2["ci_low"].null_count() == 0  # jackknife intervals per group
    assert "3 groups of topic" in split.status.value and "food (8 rows)" in split.status.value
    assert "<th title=" in split.table.value and "distinct-2" in split.table.value
    assert split.chart is not None and split.chart_box.children == (split.chart,)
    split.split_by.value = "(none)"
    assert split.frame is None and split.chart_box.children == ()


def test_split_by_is_disabled_with_a_reason_without_samplers(tmp_path):
    s = Session(FakeBackend(), runs_root=tmp_path, run="plain")
    s.store.append([{**r, "attributes": None} for r in instructions(6)])
    panel = panel_with(s)
    assert panel.split.split_by.disabled is True
    assert "no sampled attributes" in panel.split.split_by.tooltip
    assert list(panel.split.split_by.options) == ["(none)"]


# -- one small real-model check: the default GGUF embeds through its own pooled context ---------------
@pytest.fixture(scope="module")
def default_model():
    backend = load_backend("default")
    yield backend
    backend.close()  # type: ignore[attr-defined]


def test_default_model_as_the_embedding_model(tmp_path, default_model):
    s = Session(FakeBackend(), runs_root=tmp_path, run="real")
    texts = [
        "Write a poem about the sea.",
        "Write a poem about the ocean.",
        "List three prime numbers.",
        "Explain how a bicycle works.",
        "Translate 'good morning' into French.",
        "Summarise the French revolution.",
        "Give a recipe for pancakes.",
        "Name the largest planet.",
    ]
    s.store.append([{"id": f"r{i}", "stage": "instruction", "text": t} for i, t in enumerate(texts)])
    panel = DiversityPanel(s, n_boot=30)
    emb: EmbeddingMetricsPanel = panel.embedding_metrics
    emb._loader = lambda spec: default_model  # the module's one load of the default model
    emb.enabled.value, emb.model.value = True, "default"
    emb.run_button.click()
    assert emb.job is not None
    emb.job.wait(300)
    assert emb.job.state == "done", emb.job.error_text
    frame = emb.frame
    assert frame is not None
    vendi = frame.filter(pl.col("metric") == "vendi").row(0, named=True)
    dist = frame.filter(pl.col("metric") == "mean_cosine_distance").row(0, named=True)
    assert 1.0 < vendi["value"] <= 8.0 and vendi["ci_low"] < vendi["value"] < vendi["ci_high"]
    assert 0.0 < dist["value"] < 1.0
    # the two sea poems are closer to each other than to the bicycle
    e = default_model.embed(texts[:4])
    assert float(e[0] @ e[1]) > float(e[0] @ e[3])
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
