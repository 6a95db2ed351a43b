"""Long work off the notebook's main thread: a worker thread, a cancel event, progress callbacks.

The job itself never touches widgets or prints; observers (widgets, the CLI's progress bar) subscribe
with `on_progress` / `on_done` and copy what they need into their own state.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .engine.results import Progress

JobState = Literal["idle", "running", "done", "cancelled", "failed"]
JobFn = Callable[[Callable[[Progress], None], threading.Event], Any]


@dataclass
class Job:
    """Run `fn(report_progress, cancel_event)` in a daemon thread."""

    fn: JobFn
    name: str = "job"
    on_progress: list[Callable[[Progress], None]] = field(default_factory=list)
    on_done: list[Callable[[Job], None]] = field(default_factory=list)
    state: JobState = "idle"
    progress: Progress | None = None
    result: Any = None
    error: BaseException | None = None
    error_text: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0

    def __post_init__(self) -> None:
        self.cancel_event = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Job:
        if self.state == "running":
            raise RuntimeError(f"{self.name} is already running")
        self.cancel_event.clear()
        self.state = "running"
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"workbench-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _report(self, p: Progress) -> None:
        self.progress = p
        for cb in list(self.on_progress):
            try:
                cb(p)
            except Exception:  # an observer's bug must not kill the job
                traceback.print_exc()

    def _run(self) -> None:
        try:
            self.result = self.fn(self._report, self.cancel_event)
            self.state = "cancelled" if self.cancel_event.is_set() else "done"
        except BaseException as exc:  # reported to observers, never raised in the worker
            self.error = exc
            self.error_text = f"{type(exc).__name__}: {exc}"
            self.state = "failed"
        finally:
            self.finished_at = time.monotonic()
            for cb in list(self.on_done):
                try:
                    cb(self)
                except Exception:
                    traceback.print_exc()

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> Job:
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    @property
    def running(self) -> bool:
        return self.state == "running"
