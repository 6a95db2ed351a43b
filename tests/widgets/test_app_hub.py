"""The app's model picker takes a `hf://` GGUF: the first load downloads it from a Hub stand-in on
127.0.0.1 with its size and speed in the status line; offline and uncached, the error says how to get it."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from tests.engine.test_hub import FILE, REPO, _repo
from tests.hub_server import fake_hub
from tests.widgets.test_app import make_app
from workbench.engine import FakeBackend
from workbench.engine.gguf import file_sha256
from workbench.engine.packaged import SMOLLM2_HOW_TO_GET, smollm2_path


@pytest.fixture
def hf_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_the_picker_downloads_a_hub_gguf_and_shows_progress(
    tmp_path: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = smollm2_path()
    if gguf is None:
        pytest.skip(f"SmolLM2 GGUF not installed: {SMOLLM2_HOW_TO_GET}")
    app = make_app(tmp_path, backend=FakeBackend())
    shown: list[str] = []
    app.status.observe(lambda change: shown.append(html.unescape(change["new"])), names="value")
    with fake_hub(_repo(gguf, tmp_path), chunk_pause_s=0.01) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        app.model_input.value = f"hf://{REPO}/{FILE}"
        app.load_button.click()
        assert app.load_job is not None
        assert app.load_job.wait(180).state == "done", app.load_job.error_text
    try:
        assert any("downloading " + FILE in s and "MB/s" in s for s in shown), shown[-5:]
        assert f"loaded hf://{REPO}/{FILE}" in html.unescape(app.status.value)
        assert app.session.backend.model_id == file_sha256(gguf)
        assert app.model_spec == f"hf://{REPO}/{FILE}"  # what Save recipe writes as the model source
    finally:
        app.session.backend.close()


def test_offline_and_uncached_the_picker_says_how_to_get_it(
    tmp_path: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = make_app(tmp_path, backend=FakeBackend())
    app.model_input.value = f"hf://{REPO}/{FILE}"
    app.load_button.click()
    assert app.load_job is not None and app.load_job.wait(60).state == "failed"
    message = app.errors[-1]
    assert "not in the Hugging Face cache" in message and f"hf download {REPO} {FILE}" in message
    assert "keeps using" in message  # the old model stays
