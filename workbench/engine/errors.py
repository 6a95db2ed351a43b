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


class EngineCrashed(EngineError, RuntimeError):
    """The engine process died natively (segfault, abort). The caller lives; the next call restarts it."""

    def __init__(self, message: str, *, exitcode: int = 0, log_tail: str = "") -> None:
        super().__init__(message)
        self.exitcode = exitcode
        self.log_tail = log_tail

    def __reduce__(self):
        return (_rebuild_crashed, (str(self), self.exitcode, self.log_tail))

    @property
    def signal_name(self) -> str | None:
        import signal

        if self.exitcode < 0:
            try:
                return signal.Signals(-self.exitcode).name
            except ValueError:
                return None
        return None


def _rebuild_crashed(message: str, exitcode: int, log_tail: str) -> EngineCrashed:
    return EngineCrashed(message, exitcode=exitcode, log_tail=log_tail)
