"""OpenAI-compatible HTTP backend: llama.cpp's server, llama-cpp-python's server, vLLM.

Requests run with bounded concurrency, a timeout each, and retries with backoff on connection errors,
429 and 5xx. A request the server rejects (4xx) becomes an error row carrying the server's message.
Grammars are sent as llama.cpp's `grammar` extension (vLLM: `guided_grammar`); servers that ignore
them return unconstrained text, which the judge's parser then counts as it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
import numpy as np

from .errors import BackendUnavailableError
from .params import GenerationRequest
from .protocol import ProgressCallback, ResultCallback
from .results import FinishReason, Generation, Progress, TokenLogprob, TokenScores

_RETRY_STATUS = {429, 500, 502, 503, 504}


class OpenAIHTTPBackend:
    """The Backend protocol over an OpenAI-compatible endpoint (`base_url` like http://127.0.0.1:8080)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        chat: bool = False,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        retries: int = 3,
        api_key: str | None = None,
        model_identity: str | None = None,
    ) -> None:
        """`model_identity` says what the endpoint serves, as row ids should know it: a name you choose
        (e.g. "qwen2.5-7b-instruct-q4_k_m") or the GGUF's sha256 (`workbench.engine.gguf.file_sha256`),
        so the same model behind another URL, on Ray, or in-process from that file resumes the same
        rows. Default: the served model's name. The URL is never part of it."""
        url = base_url.rstrip("/")
        self.base_url = url[: -len("/v1")] if url.endswith("/v1") else url
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.chat = chat
        self.max_concurrency = max_concurrency
        self.retries = retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)
        self._model = model
        if model_identity is not None and not model_identity.strip():
            raise ValueError("model_identity must not be empty: leave it None to use the served model's name")
        self.model_identity = model_identity

    # -- identity ------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        if self._model is None:
            data = self._request("GET", "/v1/models")
            models = [m.get("id") for m in data.get("data", [])]
            if not models:
                raise BackendUnavailableError(f"{self.base_url} serves no models; pass model=...")
            self._model = str(models[0])
        return self._model

    @property
    def name(self) -> str:
        """The served model's name (where it is served is not part of what made a row)."""
        return self.model

    @property
    def model_id(self) -> str:
        """Model identity for row ids and provenance: `model_identity`, or `served:<served model name>`."""
        return self.model_identity or f"served:{self.model}"

    @property
    def chat_template(self) -> str | None:
        # The server applies its own template; we only know whether chat was asked for.
        return "<server-side chat template>" if self.chat else None

    # -- transport -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                resp = self._client.request(method, path, json=payload)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.TimeoutException) as exc:
                if attempt == self.retries:
                    raise BackendUnavailableError(
                        f"cannot reach {self.base_url}{path} after {self.retries + 1} tries ({type(exc).__name__}): "
                        "is the server running and the URL right?"
                    ) from exc
            else:
                if resp.status_code < 400:
                    return resp.json()
                if resp.status_code not in _RETRY_STATUS or attempt == self.retries:
                    raise _ServerRejected(resp.status_code, resp.text[:500])
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _payload(self, req: GenerationRequest) -> tuple[str, dict[str, Any]]:
        p = req.params
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "top_k": p.top_k,
            "min_p": p.min_p,
            "repeat_penalty": p.repeat_penalty,
            "seed": p.seed,
        }
        if p.stop:
            body["stop"] = list(p.stop)
        if p.grammar is not None:
            body["grammar"] = p.grammar
            body["guided_grammar"] = p.grammar
        if p.json_schema is not None:
            body["response_format"] = {"type": "json_object", "schema": p.json_schema}
        if req.messages is not None or self.chat:
            messages = list(req.messages) if req.messages is not None else [{"role": "user", "content": req.prompt}]
            body["messages"] = messages
            if p.logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = p.logprobs
            return "/v1/chat/completions", body
        body["prompt"] = req.prompt
        if p.logprobs is not None:
            body["logprobs"] = max(1, p.logprobs)
        return "/v1/completions", body

    def _one(self, req: GenerationRequest) -> Generation:
        t0 = time.perf_counter()
        path, body = self._payload(req)
        try:
            data = self._request("POST", path, body)
        except _ServerRejected as exc:
            return Generation(req.key, "", "error", error=f"server rejected the request ({exc})",
                              seconds=time.perf_counter() - t0)
        choice = (data.get("choices") or [{}])[0]
        text = choice.get("message", {}).get("content") if "message" in choice else choice.get("text")
        usage = data.get("usage") or {}
        finish: FinishReason = "length" if choice.get("finish_reason") == "length" else "stop"
        return Generation(
            key=req.key,
            text=text or "",
            finish_reason=finish,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=time.perf_counter() - t0,
            logprobs=_parse_logprobs(choice.get("logprobs")) if req.params.logprobs is not None else None,
            prompt_text=req.prompt,
        )

    # -- protocol ------------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        _ = self.model  # resolve the model name once, before the workers start
        results: dict[int, Generation] = {}
        t0, tokens = time.perf_counter(), 0
        pending = list(enumerate(requests))[::-1]
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="workbench-http") as pool:
            running: dict[Future[Generation], int] = {}
            while pending or running:
                while pending and len(running) < self.max_concurrency and not (cancel and cancel.is_set()):
                    i, req = pending.pop()
                    running[pool.submit(self._one, req)] = i
                if not running:
                    break
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = running.pop(fut)
                    try:
                        gen = fut.result()
                    except BackendUnavailableError as exc:
                        gen = Generation(requests[i].key, "", "error", error=str(exc))
                    results[i] = gen
                    tokens += gen.completion_tokens
                    if on_result is not None:
                        on_result(i, gen)
                if on_progress is not None and done:
                    errors = sum(1 for g in results.values() if g.finish_reason == "error")
                    on_progress(Progress(len(results), len(requests), tokens, time.perf_counter() - t0, errors))
        for i, req in enumerate(requests):
            if i not in results:
                results[i] = Generation(req.key, "", "cancelled", prompt_text=req.prompt)
        return [results[i] for i in range(len(requests))]

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        """Scores via `echo` + `logprobs` on /v1/completions (servers that support prompt logprobs)."""
        out = []
        for p, c in zip(prompts, continuations, strict=True):
            data = self._request(
                "POST", "/v1/completions",
                {"model": self.model, "prompt": p + c, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0},
            )
            lp = (data.get("choices") or [{}])[0].get("logprobs") or {}
            toks, vals, offsets = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
            if not toks or vals is None or offsets is None:
                raise NotImplementedError(f"{self.base_url} does not return prompt logprobs (echo); score in-process")
            keep = [(t, v) for t, v, o in zip(toks, vals, offsets, strict=False) if o >= len(p) and v is not None]
            keep = keep[: max(0, len(keep) - 1)]  # drop the one generated token
            out.append(TokenScores([t for t, _ in keep], [float(v) for _, v in keep]))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        try:
            data = self._request("POST", "/v1/embeddings", {"model": self.model, "input": list(texts)})
        except _ServerRejected as exc:
            raise NotImplementedError(f"{self.base_url} does not serve embeddings ({exc})") from exc
        mat = np.array([d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])], dtype=np.float32)
        if mat.ndim == 3:  # some servers return one vector per token: mean-pool
            mat = mat.mean(axis=1)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        return mat / np.where(norms == 0, 1, norms)

    def count_tokens(self, text: str) -> int:
        for path, body in (("/tokenize", {"content": text}), ("/extras/tokenize", {"input": text})):
            try:
                data = self._request("POST", path, body)
            except _ServerRejected:
                continue
            return len(data.get("tokens", []))
        raise NotImplementedError(f"{self.base_url} has no tokenize endpoint")

    def close(self) -> None:
        self._client.close()


class _ServerRejected(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status


def _parse_logprobs(lp: Any) -> list[TokenLogprob] | None:
    if not lp:
        return None
    if isinstance(lp, dict) and "content" in lp:  # chat format
        return [
            TokenLogprob(e["token"], float(e["logprob"]), [(t["token"], float(t["logprob"])) for t in e.get("top_logprobs", [])])
            for e in lp["content"] or []
        ]
    toks, vals, tops = lp.get("tokens") or [], lp.get("token_logprobs") or [], lp.get("top_logprobs") or []
    out = []
    for i, (t, v) in enumerate(zip(toks, vals, strict=False)):
        top = tops[i] if i < len(tops) and tops[i] else {}
        alts = sorted(((k, float(x)) for k, x in top.items()), key=lambda kv: -kv[1])
        out.append(TokenLogprob(t, float(v if v is not None else float("nan")), alts))
    return out
