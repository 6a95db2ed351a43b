"""The engine: a small backend protocol and its adapters.

- `LlamaCppBackend`: llama.cpp through llama-cpp-python's low-level API, many sequences decoded together
  (continuous batching), native sampler chains, grammars, logprobs, scoring, embeddings — run in an engine
  process of its own, so a native crash raises `EngineCrashed` instead of killing the caller
  (`InProcessLlamaBackend` in `engine.llama` is the same engine without the process boundary).
- `cpu_safety`: the llama.cpp weight-buffer setting that is safe on this CPU, self-checked once per machine.
- `OpenAIHTTPBackend`: any OpenAI-compatible server (llama.cpp's, llama-cpp-python's, vLLM).
- `FakeBackend`: deterministic and model-free, for unit tests.
- `hub`: `hf://owner/repo/file.gguf` names, downloaded once into the Hugging Face cache and checked.
`load_backend(spec)` turns "default", "smollm2", a GGUF path, a hf:// name or an http(s) URL into a backend.
"""

from .cpu_safety import CPUSafetyWarning, choose_policy
from .errors import (
    BackendUnavailableError,
    EngineCrashed,
    EngineError,
    GrammarError,
    ModelFileError,
    NoChatTemplateError,
)
from .fake import FakeBackend
from .hub import DownloadProgress, HubModelError, parse_hub_spec, resolve_hub_gguf
from .loader import default_model_path, load_backend
from .params import GenerationRequest, SamplingParams
from .protocol import Backend, ProgressCallback, ResultCallback
from .results import Generation, Progress, TokenLogprob, TokenScores, generations_frame


def __getattr__(name: str):
    # Lazy: importing the engine package must not load llama.cpp's shared library.
    if name == "LlamaCppBackend":
        from .llama_process import LlamaCppBackend

        return LlamaCppBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Backend",
    "BackendUnavailableError",
    "CPUSafetyWarning",
    "DownloadProgress",
    "EngineCrashed",
    "EngineError",
    "FakeBackend",
    "Generation",
    "GenerationRequest",
    "GrammarError",
    "HubModelError",
    "LlamaCppBackend",
    "ModelFileError",
    "NoChatTemplateError",
    "Progress",
    "ProgressCallback",
    "ResultCallback",
    "SamplingParams",
    "TokenLogprob",
    "TokenScores",
    "choose_policy",
    "default_model_path",
    "generations_frame",
    "load_backend",
    "parse_hub_spec",
    "resolve_hub_gguf",
]
