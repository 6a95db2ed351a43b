"""The OpenAI-compatible HTTP adapter: against a real llama.cpp server process (llama-cpp-python's
server on 127.0.0.1 serving the default model), and against a tiny local HTTP server for the
transport logic (bounded concurrency, retries, rejected requests)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers_server import llama_server
from workbench.engine import BackendUnavailableError, GenerationRequest, SamplingParams, load_backend
from workbench.engine.http import OpenAIHTTPBackend


def _reqs(n, **kw):
    return [GenerationRequest(prompt=f"Question {i}: name a fruit.\nAnswer:", key=str(i),
                              params=SamplingParams(**{"max_tokens": 12, "seed": i, **kw})) for i in range(n)]


@pytest.mark.model
@pytest.mark.server
def test_against_a_real_llama_cpp_server():
    # n_batch 1: llama.cpp's CPU kernels give slightly different numbers for different batch sizes,
    # and the server reuses cached prefixes; one token per batch makes seeded texts reproducible.
    with llama_server(extra_args=("--n_batch", "1", "--n_ubatch", "1")) as server:
        backend = load_backend(server.url, max_concurrency=2)
        assert isinstance(backend, OpenAIHTTPBackend)
        assert backend.model_id == f"served:{server.model}" and server.url not in backend.model_id
        progress = []
        gens = backend.generate(_reqs(3, stop=("\n",)), on_progress=progress.append)
        assert [g.key for g in gens] == ["0", "1", "2"]
        assert all(g.ok and g.completion_tokens >= 1 and "\n" not in g.text for g in gens)
        assert progress[-1].rows_done == 3
        again = backend.generate(_reqs(3, stop=("\n",))[::-1])[::-1]
        assert [g.text for g in again] == [g.text for g in gens]
        lp = backend.generate(_reqs(1, logprobs=3, temperature=0.0))[0]
        assert lp.logprobs and all(step.logprob <= 0 for step in lp.logprobs)
        assert backend.count_tokens("hello world") >= 2
        backend.close()


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer  # type: ignore[assignment]

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"data": [{"id": "fake-model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        with srv.lock:
            srv.active += 1
            srv.peak = max(srv.peak, srv.active)
            srv.calls += 1
            fail = srv.fail_first > 0
            srv.fail_first -= 1
        try:
            time.sleep(0.05)
            if fail:
                return self._send(503, {"error": "busy"})
            if body.get("max_tokens", 0) > 100:
                return self._send(400, {"error": "max_tokens too large for this server"})
            self._send(200, {"choices": [{"text": f"echo {body['prompt'][:10]}", "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
        finally:
            with srv.lock:
                srv.active -= 1


class _FakeServer(ThreadingHTTPServer):
    def __init__(self, fail_first=0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.active = self.peak = self.calls = 0
        self.fail_first = fail_first


@pytest.fixture
def fake_server():
    servers = []

    def start(fail_first=0):
        srv = _FakeServer(fail_first)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv, f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()


def test_concurrency_is_bounded(fake_server):
    srv, url = fake_server()
    gens = OpenAIHTTPBackend(url, max_concurrency=3).generate(_reqs(12))
    assert all(g.ok for g in gens) and srv.peak <= 3 and srv.peak >= 2


def test_retries_on_503_then_succeeds(fake_server):
    srv, url = fake_server(fail_first=2)
    g = OpenAIHTTPBackend(url, max_concurrency=1, retries=3).generate(_reqs(1))[0]
    assert g.ok and srv.calls == 3


def test_rejected_request_is_an_error_row_not_an_exception(fake_server):
    _, url = fake_server()
    gens = OpenAIHTTPBackend(url).generate([*_reqs(1), *_reqs(1, max_tokens=500)])
    assert gens[0].ok
    assert gens[1].finish_reason == "error" and "max_tokens too large" in (gens[1].error or "")


def test_unreachable_endpoint_says_so():
    backend = OpenAIHTTPBackend("http://127.0.0.1:9", model="m", retries=1, timeout_s=2)
    gens = backend.generate(_reqs(1))
    assert gens[0].finish_reason == "error" and "cannot reach" in (gens[0].error or "")
    with pytest.raises(BackendUnavailableError, match="is the server running"):
        OpenAIHTTPBackend("http://127.0.0.1:9", retries=0).model  # noqa: B018
