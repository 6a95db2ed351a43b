"""Shared fixtures: the real default model (loaded once), the shared self-instruct data, a fake backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.engine import FakeBackend

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORKBENCH_SHARED_DATA", REPO.parent / "shared" / "data" / "self-instruct"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The self-instruct paper's data in ../shared (skips where it is absent)."""
    if not (SHARED_DATA / "seed_tasks.jsonl").exists():
        pytest.skip(f"shared self-instruct data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    from workbench.engine import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def llama_backend(default_model_path):
    """The real default model, in-process, shared by every test (loading costs about a second)."""
    from workbench.engine import LlamaCppBackend

    backend = LlamaCppBackend(default_model_path, n_parallel=16, n_ctx_per_seq=1024)
    yield backend
    backend.close()


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture(scope="session")
def chat_model_path(default_model_path, tmp_path_factory) -> Path:
    """A real GGUF with a chat template: the default weights plus Gemma's own template (a stand-in for
    the chat models users bring; no chat GGUF can be downloaded here)."""
    from tests.engine.gguf_tools import GEMMA_CHAT_TEMPLATE, with_metadata_string

    dst = tmp_path_factory.mktemp("chatmodel") / "gemma-3-270m-chat-template.gguf"
    return with_metadata_string(default_model_path, dst, "tokenizer.chat_template", GEMMA_CHAT_TEMPLATE)
