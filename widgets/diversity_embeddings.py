"""The Diversity tab's embedding metrics: Vendi score and mean embedding distance of each set, with
intervals, from an embedding model chosen apart from the generation model.

Embedding runs the model, so it is off until the "embedding metrics" box is ticked, and it runs in a
worker thread (Compute / Stop, a progress bar). The model box takes what `load_backend` takes (a GGUF
path, 'default', 'smollm2', an hf:// name); empty means the session's model. The backend pools the
token states itself (mean pooling in a context of its own), so any GGUF can embed; one that cannot is
refused with a message when it is loaded. A loaded embedding model is kept on the panel until another
is named.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable

import altair as alt
import ipywidgets as W
import numpy as np
import polars as pl

from widgets.job_controls import JobControlsMixin
from widgets.metric_tables import metrics_html
from widgets.ui import row, tip
from workbench.engine import Backend, Progress, load_backend
from workbench.jobs import Job
from workbench.metrics import charts, compare_sets, embed_frame
from workbench.metrics._ngrams import seeded_sample
from workbench.session import Session

__all__ = ["EMBEDDING_METRICS", "EmbeddingMetricsPanel", "check_embeds"]

EMBEDDING_METRICS = ("vendi", "mean_cosine_distance")
SetsFn = Callable[[], tuple[dict[str, pl.DataFrame], str]]


def check_embeds(backend: Backend, spec: str) -> int:
    """Embed one probe text; return the embedding size, or raise saying the model cannot embed."""
    try:
        probe = np.asarray(backend.embed(["a short probe sentence"]), dtype=np.float64)
    except Exception as err:
        raise ValueError(
            f"the model {spec!r} cannot embed ({type(err).__name__}: {err}); name a GGUF that can "
            "(any llama.cpp text model, e.g. 'default'), or leave the box empty for the session's model"
        ) from err
    if probe.ndim != 2 or probe.shape[0] != 1 or probe.shape[1] == 0 or not np.isfinite(probe).all():
        raise ValueError(f"the model {spec!r} returned no usable embedding (shape {probe.shape})")
    return int(probe.shape[1])


class EmbeddingMetricsPanel(JobControlsMixin, W.VBox):
    """Vendi and embedding distance per set with intervals, computed in a worker thread.

    `sets()` gives the sets to measure and their text column (the Diversity tab's current sets);
    `loader` loads an embedding model from its spec (tests pass a fake one).
    """

    failure_prefix = "embedding metrics failed"

    def __init__(
        self,
        session: Session,
        sets: SetsFn,
        *,
        embed_sample: int = 200,
        n_boot: int = 300,
        loader: Callable[[str], Backend] = load_backend,
    ) -> None:
        self.session, self._sets, self._loader = session, sets, loader
        self.embed_sample, self.n_boot = embed_sample, n_boot
        self.job: Job | None = None
        self.frame: pl.DataFrame | None = None
        self.chart: alt.JupyterChart | None = None
        self._backend: Backend | None = None
        self._backend_spec: str | None = None
        self._lock = threading.Lock()
        self._used = ""
        self.enabled = tip(W.Checkbox(value=False, description="embedding metrics", indent=False),
                           "Also measure each set's Vendi score and embedding distance (runs an embedding model).")  # fmt: skip
        self.model = tip(W.Text(value="", description="embedding model", placeholder="empty: the session's model"),
                         "The model that embeds: a GGUF path, 'default', 'smollm2' or an hf:// name; empty uses the session's model.")  # fmt: skip
        self._make_job_controls(
            "embeddings", "Compute", "calculator",
            "Embed a sample of each set and compute its Vendi score and embedding distance.",
            "Stop embedding; nothing is computed from a partial sample.",
        )  # fmt: skip
        self.error = W.HTML()
        self.table = W.HTML()
        self.chart_box = W.VBox()
        self.body = W.VBox(
            [row([self.model, self.run_button, self.stop_button]), row([self.progress, self.progress_label]),
             self.error, self.table, self.chart_box],
            layout=W.Layout(display="none"),
        )  # fmt: skip
        self.enabled.observe(self._on_enabled, names="value")
        super().__init__([self.enabled, self.body])
        self.add_class("wb-diversity-embeddings")

    # -- the embedding model -------------------------------------------------------------------
    def embedding_backend(self) -> Backend:
        """The embedding model: the session's for an empty box (or the same spec), else the one named,
        loaded once and checked to embed; it stays loaded until another is named."""
        spec = self.model.value.strip()
        if not spec or spec == self.session.model_spec:
            return self.session.backend
        with self._lock:
            if self._backend is not None and self._backend_spec == spec:
                return self._backend
            old, self._backend, self._backend_spec = self._backend, None, None
            if old is not None and callable(getattr(old, "close", None)):
                old.close()  # type: ignore[attr-defined]
            try:
                backend = self._loader(spec)
            except Exception as err:
                raise ValueError(
                    f"cannot load embedding model {spec!r}: {err} (give a GGUF path, 'default', 'smollm2' "
                    "or an hf:// name)"
                ) from err
            check_embeds(backend, spec)
            self._backend, self._backend_spec = backend, spec
            return backend

    # -- the job -------------------------------------------------------------------------------
    def run(self) -> Job | None:
        """Embed a seeded sample of `embed_sample` rows of each set and compute the metrics."""
        if self._job_busy():
            return self.job
        self.error.value = ""
        sets, column = self._sets()
        small = [name for name, df in sets.items() if df.height < 2]
        if not sets or small:
            self._cannot_start(
                f"every set needs at least 2 rows with text to embed (too few: {small})"
                if sets
                else "no rows with text yet: generate some first"
            )
            return None
        samples = {name: seeded_sample(df, self.embed_sample, 0) for name, df in sets.items()}
        return self._launch(Job(lambda report, cancel: self._work(samples, column, report, cancel),
                                name="embedding-metrics"), "loading the embedding model…")  # fmt: skip

    def _work(
        self,
        samples: dict[str, pl.DataFrame],
        column: str,
        report: Callable[[Progress], None],
        cancel: threading.Event,
    ) -> pl.DataFrame | None:
        t0 = time.monotonic()
        total = sum(df.height for df in samples.values())
        backend = self.embedding_backend()
        self._used = backend.name
        report(Progress(0, total, 0, time.monotonic() - t0))
        embedded: dict[str, pl.DataFrame] = {}
        done = 0
        for name, df in samples.items():

            def on_batch(d: int, _total: int, base: int = done) -> None:
                report(Progress(base + d, total, 0, time.monotonic() - t0))

            part = embed_frame(
                df.select(column), backend, column, batch_size=16, cancel=cancel, on_batch=on_batch
            )
            if cancel.is_set():
                return None
            embedded[name], done = part, done + df.height
        table = compare_sets(embedded, column, embeddings=True, sample=None, embed_sample=None,
                             n_boot=self.n_boot, rouge=False, set_ci=True, jackknife_groups=50)  # fmt: skip
        self.frame = table.filter(pl.col("metric").is_in(EMBEDDING_METRICS))
        return self.frame

    def _after_progress(self, p: Progress) -> None:
        eta = "" if p.eta_s is None else f" · ETA {p.eta_s:.0f}s"
        self.progress_label.value = html.escape(f"embedded {p.rows_done}/{p.rows_total} rows{eta}")

    def _after_done(self, job: Job) -> None:
        if job.state == "cancelled":
            self.progress_label.value = "cancelled: nothing computed (Compute starts again)"
        if job.state != "done" or self.frame is None:
            return
        size = int(self.frame["sample_size"].fill_null(0).cast(pl.Int64).max() or 0)  # type: ignore[arg-type]
        self.progress_label.value = html.escape(
            f"done · up to {size} rows per set, embedded with {self._used}"
        )
        self.table.value = metrics_html(self.frame, "set")
        self.chart = alt.JupyterChart(
            charts.metric_comparison(self.frame, columns=2), embed_options={"renderer": "svg"}
        )
        self.chart.add_class("wb-chart-embedding-metrics")
        self.chart_box.children = [self.chart]

    # -- view ----------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget results computed on sets that have since changed (the tab's knobs moved)."""
        if not self._job_busy():
            self.frame, self.chart = None, None
            self.table.value, self.chart_box.children = "", []

    def _on_enabled(self, change: dict[str, object]) -> None:
        self.body.layout.display = None if change["new"] else "none"

    def _fail(self, message: str) -> None:
        full = f"Diversity, embedding metrics: {message}"
        self.error.value = f"<span class='wb-error'>{html.escape(full)}</span>"
        self.session.report_error(full)
