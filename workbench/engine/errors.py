"""Errors the engine raises. Each message says what was wrong and what to do about it."""


class EngineError(Exception):
    """Base class for engine errors."""


class ModelFileError(EngineError, ValueError):
    """The model path is missing, unreadable, not a GGUF file, or truncated."""


class NoChatTemplateError(EngineError, ValueError):
    """A chat request was sent to a model whose GGUF carries no chat template."""


class GrammarError(EngineError, ValueError):
    """A GBNF grammar or JSON schema did not compile."""


class BackendUnavailableError(EngineError, ConnectionError):
    """An HTTP endpoint could not be reached or kept failing after retries."""
