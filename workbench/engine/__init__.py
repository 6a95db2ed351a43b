"""The engine: a small backend protocol and its adapters.

- `LlamaCppBackend`: llama.cpp in-process through llama-cpp-python's low-level API, many sequences
  decoded together (continuous batching), native sampler chains, grammars, logprobs, scoring, embeddings.
- `OpenAIHTTPBackend`: any OpenAI-compatible server (llama.cpp's, llama-cpp-python's, vLLM).
- `FakeBackend`: deterministic and model-free, for unit tests.
`load_backend(spec)` turns "default", a GGUF path, or an http(s) URL into a backend.
"""

from .errors import BackendUnavailableError, EngineError, GrammarError, ModelFileError, NoChatTemplateError
from .fake import FakeBackend
from .loader import default_model_path, load_backend
from .params import GenerationRequest, SamplingParams
from .protocol import Backend, ProgressCallback, ResultCallback
from .results import Generation, Progress, TokenLogprob, TokenScores, generations_frame

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "EngineError",
    "FakeBackend",
    "Generation",
    "GenerationRequest",
    "GrammarError",
    "ModelFileError",
    "NoChatTemplateError",
    "Progress",
    "ProgressCallback",
    "ResultCallback",
    "SamplingParams",
    "TokenLogprob",
    "TokenScores",
    "default_model_path",
    "generations_frame",
    "load_backend",
]
