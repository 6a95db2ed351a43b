"""The app when the engine process crashes: the message in the error area, the engine back on the next Run."""

from __future__ import annotations

import pytest

from widgets import Workbench
from workbench.engine import LlamaCppBackend
from workbench.session import Session

pytestmark = pytest.mark.model


def test_a_crash_shows_in_the_error_area_and_the_next_run_works(tmp_path, default_model_path):
    backend = LlamaCppBackend(default_model_path, n_parallel=4, n_ctx_per_seq=512)
    session = Session(backend, runs_root=tmp_path / "runs", run="crash")
    app = Workbench(session=session, generate={"num_instructions": 2, "rounds": 1, "prompts_per_round": 3, "seed": 1})
    g = app.generate
    g.max_tokens.value = 24
    try:
        backend._inject_crash(after_rows=1, kind="segv")
        g.run_button.click()
        assert g.job.wait(180).state == "failed"
        assert "engine process died" in app.error_box.value and "SIGSEGV" in app.error_box.value
        assert "Traceback" not in app.error_box.value
        assert session.store.manifest["engine"]["buffer_policy"] == backend.buffer_policy
        g.run_button.click()
        assert g.job.wait(180).state == "done", g.job.error_text
        assert backend.restarts == 1
    finally:
        backend.close()
