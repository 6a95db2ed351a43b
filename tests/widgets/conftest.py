"""Fixtures of the widget tests: the real default model as the app loads it (`load_backend("default")`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def default_backend():
    """The default model through `load_backend`, as the app's picker loads it (one per test module)."""
    from workbench.engine import load_backend

    backend = load_backend("default")
    yield backend
    backend.close()
