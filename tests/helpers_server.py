"""A real llama.cpp server process on 127.0.0.1 for tests (llama-cpp-python's OpenAI-compatible server).

Use the context manager anywhere, or the pytest fixture `llama_server_url` (module scope: one server per
test module, since loading takes a few seconds):

    from tests.helpers_server import llama_server
    with llama_server() as server:
        httpx.get(f"{server.url}/v1/models")

The server binds 127.0.0.1 only, on a free port, and is stopped (terminate, then kill) on exit even when
the test fails. Its log goes to a temporary file that is shown in the error if it does not come up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A TCP port that nothing listens on right now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    """A running server: `url` is the base URL (no /v1), `model` the name it serves models under."""

    process: subprocess.Popen[bytes]
    url: str
    model: str
    log_path: Path

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def _default_model() -> Path:
    from workbench.engine import default_model_path

    return default_model_path()


@contextlib.contextmanager
def llama_server(
    model: str | os.PathLike[str] | None = None,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    startup_timeout_s: float = 120.0,
    extra_args: tuple[str, ...] = (),
) -> Iterator[LlamaServer]:
    """Start `python -m workbench.engine.serve` (llama_cpp.server with the CPU-safe buffer setting) serving
    `model` (default: the default GGUF), wait until
    `/v1/models` answers, yield it, and stop it."""
    model_path = Path(model) if model is not None else _default_model()
    port = free_port()
    alias = model_path.stem
    cmd = [
        sys.executable,
        "-m",
        "workbench.engine.serve",
        "--model",
        str(model_path),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        *(("--n_threads", str(n_threads)) if n_threads else ()),
        *extra_args,
    ]
    log_file = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
    log_path = Path(log_file.name)
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    server = LlamaServer(proc, url, alias, log_path)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with code {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"llama.cpp server did not answer within {startup_timeout_s}s:\n{server.log()}")
            time.sleep(0.25)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log_file.close()
        with contextlib.suppress(OSError):
            log_path.unlink()


@pytest.fixture(scope="module")
def llama_server_url() -> Iterator[LlamaServer]:
    """One real llama.cpp server (default model) for the whole test module."""
    with llama_server() as server:
        yield server
