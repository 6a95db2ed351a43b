"""A session: the one model and the one run that every panel of the workbench shares.

The session holds nothing the run directory cannot reproduce: the model spec and the run path are
recorded in the run's manifest, and every row lives in the run's parts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .engine import Backend, load_backend
from .runs import RunStore


class Session:
    """Shared state of the workbench: a lazily loaded backend and a run directory."""

    def __init__(
        self,
        model: str | Path | Backend = "default",
        *,
        runs_root: str | Path = "runs",
        run: str | None = None,
        resume: bool = True,
        model_options: dict[str, Any] | None = None,
    ) -> None:
        self.runs_root = Path(runs_root)
        self.run_name = run or datetime.now().strftime("run-%Y%m%d-%H%M%S")
        self._resume = resume
        self._model_options = dict(model_options or {})
        self._backend: Backend | None = None
        self._model_spec: str = "default"
        self._store: RunStore | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self.last_error: str | None = None
        self.last_status: str = ""
        if isinstance(model, (str, Path)):
            self._model_spec = str(model)
        else:
            self._backend = model
            self._model_spec = model.name

    # -- model ---------------------------------------------------------------------------------
    @property
    def model_spec(self) -> str:
        return self._model_spec

    def use_model(self, spec: str | Path | Backend, **options: Any) -> None:
        """Switch model. Loading happens on first use (or now, with `load()`)."""
        with self._lock:
            old, self._backend = self._backend, None
            if isinstance(spec, (str, Path)):
                self._model_spec = str(spec)
                self._model_options = options
            else:
                self._backend = spec
                self._model_spec = spec.name
        close = getattr(old, "close", None)
        if callable(close):
            close()
        self._emit("model")

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = load_backend(self._model_spec, **self._model_options)
                self._record_engine()
            return self._backend

    def _record_engine(self) -> None:
        # The run manifest records how the engine ran (CPU flags, llama.cpp build, buffer setting).
        runtime = getattr(self._backend, "runtime", None)
        if self._store is not None and runtime is not None:
            self._store.update_manifest(model_spec=self._model_spec, engine=runtime)

    @property
    def model_loaded(self) -> bool:
        return self._backend is not None

    # -- run -----------------------------------------------------------------------------------
    @property
    def store(self) -> RunStore:
        with self._lock:
            if self._store is None:
                path = self.runs_root / self.run_name
                manifest = {"model_spec": self._model_spec}
                if (path / "manifest.json").exists() and self._resume:
                    self._store = RunStore.open(path)
                else:
                    self._store = RunStore.create(self.runs_root, self.run_name, manifest=manifest)
                self._record_engine()
            return self._store

    def open_run(self, name: str, *, create: bool = True) -> RunStore:
        with self._lock:
            path = self.runs_root / name
            if (path / "manifest.json").exists():
                self._store = RunStore.open(path)
            elif create:
                self._store = RunStore.create(self.runs_root, name, manifest={"model_spec": self._model_spec})
            else:
                raise FileNotFoundError(f"no run named {name!r} under {self.runs_root}")
            self.run_name = name
        self._emit("run")
        return self._store

    # -- change notifications (widgets subscribe; the core never imports them) -----------------
    def subscribe(self, fn: Callable[[str], None]) -> None:
        self._listeners.append(fn)

    def _emit(self, what: str) -> None:
        for fn in list(self._listeners):
            fn(what)

    def notify_rows_changed(self) -> None:
        """Call after appending rows so open panels refresh."""
        self._emit("rows")

    def report_error(self, message: str) -> None:
        """A step failed: record what went wrong and how to fix it; the app shows it in its error area."""
        self.last_error = message
        self._emit("error")

    def report_status(self, message: str) -> None:
        """A short status line (model, tokens/s, rows) for the app's status bar."""
        self.last_status = message
        self._emit("status")
