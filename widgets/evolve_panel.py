"""The Evolve section of the Generate tab: rewrite instructions into harder or new ones (Evol-Instruct).

A thin view over `workbench.generate.evolve.run_evolution`: pick operators, rounds and sampling; Run evolves
the run's kept instructions (or, before there are any, the seed tasks) in a `Job` worker thread with
progress and Stop. The lineage table (`workbench.generate.evolve_lineage`) shows each evolved instruction with
the prompts it came from and the operator of every step, and the drops list the eliminator's reasons.
Preview evolves the first few of those prompts in a scratch run (nothing saved) and estimates a full Run's time.
The config a Run used stays in `last_config` / `last_source` / `last_limit`, so a recipe replays it.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any, Literal

import ipywidgets as W
import polars as pl

from widgets.job_controls import LiveStepMixin
from widgets.preview_box import PreviewBox
from widgets.ui import error_html, row, tip
from workbench.engine import Progress
from workbench.generate.evolve import DEFAULT_OPERATORS, EvolveConfig, run_evolution
from workbench.generate.evolve_lineage import drop_reasons, lineage_frame
from workbench.generate.seeds import default_seeds
from workbench.jobs import Job
from workbench.pipeline.preview import Preview, preview_evolve
from workbench.pipeline.recipe import EvolveStep, Recipe
from workbench.pipeline.runner import step_inputs
from workbench.session import Session

__all__ = ["OPERATOR_HELP", "EvolvePanel", "RoundsProgress", "seed_prompts"]

# Each default operator's checkbox label and one-sentence tooltip (what the rewrite asks the model to do).
OPERATOR_HELP: dict[str, tuple[str, str]] = {
    "add_constraints": ("add a constraint", "Ask the model to add one more constraint or requirement to the instruction."),
    "deepen": ("go deeper", "Ask the model to widen and deepen what the instruction asks about."),
    "concretize": ("make it concrete", "Ask the model to replace general concepts with more specific ones."),
    "increase_reasoning": ("ask for reasoning", "Ask the model to rewrite the instruction so it needs several reasoning steps."),
    "breadth": ("new related topic", "Ask the model for a brand-new instruction on a related but rarer topic."),
}  # fmt: skip
_STYLE = (
    "<style>.wb-evolve table{border-collapse:collapse;max-width:100%;line-height:1.4}.wb-evolve th,.wb-evolve td"
    "{padding:3px 8px;text-align:left;vertical-align:top}.wb-evolve th{white-space:nowrap}.wb-evolve td"
    "{overflow-wrap:anywhere;white-space:pre-wrap}.wb-evolve tr:nth-child(even) td{background:#f6f6f6}"
    ".wb-evolve .wb-evolve-op{color:#6a4c93;white-space:nowrap}</style>"
)


def seed_prompts(seeds: pl.DataFrame) -> pl.DataFrame:
    """Seed tasks as evolution prompts (id, instruction, input of the first example, round 0), as a recipe's
    `prompts_from: seeds` reads them."""
    inputs = [(inst[0]["input"] if inst else "") or "" for inst in seeds["instances"].to_list()] if (
        "instances" in seeds.columns
    ) else [""] * seeds.height
    return pl.DataFrame(
        {"id": seeds["id"].cast(pl.Utf8).to_list(), "instruction": seeds["instruction"].to_list(),
         "input": inputs, "round": [0] * seeds.height},
        schema={"id": pl.Utf8, "instruction": pl.Utf8, "input": pl.Utf8, "round": pl.Int64},
    )  # fmt: skip


class EvolvePanel(LiveStepMixin, W.VBox):
    """Operators, rounds and sampling; Run/Stop with progress; the lineage of every evolved instruction
    and the drops with their reasons. `seeds` gives the seed tasks evolved while the run has no kept
    instructions (default: the project's seed set)."""

    step_name = "Evolve"

    def __init__(
        self,
        session: Session,
        *,
        seeds: Callable[[], pl.DataFrame] | None = None,
        table_rows: int = 40,
    ) -> None:
        self.session = session
        self._seeds = seeds or default_seeds
        self.table_rows = table_rows
        self.job: Job | None = None
        self.last_config: EvolveConfig | None = None
        """The exact config the last Run used (what a recipe replays), None before any Run."""
        self.last_source: Literal["instructions", "seeds"] | None = None
        """What the last Run evolved: the run's kept instructions or the seed tasks."""
        self.last_limit: int | None = None
        """How many prompts the last Run evolved at most (the recipe step's `limit`)."""
        self._last_refresh = 0.0
        defaults = EvolveConfig()
        self.operators = {
            name: tip(W.Checkbox(True, description=OPERATOR_HELP[name][0], indent=False,
                                 layout=W.Layout(width="auto", margin="0 12px 0 0")), OPERATOR_HELP[name][1])
            for name in DEFAULT_OPERATORS
        }
        self.rounds = W.BoundedIntText(1, min=1, max=10, description="rounds")
        self.strategy = W.Dropdown(
            options=[("one, picked at random", "random"), ("every picked operator", "all")],
            value="random", description="operators per instruction", layout=W.Layout(width="auto"),
        )  # fmt: skip
        self.limit = W.BoundedIntText(8, min=1, max=100_000, description="instructions to evolve")
        self.temperature = W.FloatSlider(defaults.params.temperature, min=0.0, max=2.0, step=0.05, description="temperature")
        self.max_tokens = W.IntSlider(defaults.params.max_tokens, min=8, max=512, description="max tokens")
        self.seed = W.BoundedIntText(0, min=0, max=2**32 - 17, description="seed")
        self._make_job_controls(
            "evolve",
            "Evolve",
            "random",
            "Rewrite the kept instructions (or the seeds) with the picked operators, round by round.",
            "Stop after the rows in flight; finished rewrites stay in the run.",
        )
        for control, text in (
            (self.rounds, "How many times to rewrite: each round rewrites the rewrites the last round kept."),
            (self.strategy, "Use one operator per instruction each round (picked reproducibly) or every picked one."),
            (self.limit, "Evolve at most this many of the first kept instructions (or seeds)."),
            (self.temperature, "Sampling randomness: 0 always picks the likeliest word, higher is more varied."),
            (self.max_tokens, "The longest a rewritten instruction may be, in tokens."),
            (self.seed, "The random seed that picks operators and makes the rewrites repeat exactly."),
        ):
            tip(control, text)
        self.source_note = W.HTML()
        self.source_note.add_class("wb-evolve-source")
        self.counts = W.HTML()
        self.counts.add_class("wb-evolve-counts")
        self.error = W.HTML()
        self.lineage_table = W.HTML()
        self.lineage_table.add_class("wb-evolve-lineage")
        self.drops_table = W.HTML()
        self.drops_table.add_class("wb-evolve-drops")
        session.subscribe(self._on_session_event)
        self.limit.observe(lambda _c: self.show_source(), names="value")
        self.preview = PreviewBox("evolve", self._preview_work, what="the evolution")
        super().__init__([
            W.HTML(_STYLE + "<b>Evolve</b>: rewrite instructions into harder or new ones (Evol-Instruct); "
                   "the eliminator drops failed rewrites and says why."),
            row([W.HTML("operators:"), *self.operators.values()]),
            row([self.rounds, self.strategy, self.limit]),
            row([self.temperature, self.max_tokens, self.seed]),
            self.source_note,
            row([self.run_button, self.stop_button, self.preview.button, self.progress, self.progress_label]),
            self.preview,
            self.error,
            self.counts,
            self.lineage_table,
            self.drops_table,
        ])  # fmt: skip
        self.add_class("wb-evolve")
        self.refresh()

    # -- config --------------------------------------------------------------------------------
    def config(self) -> EvolveConfig:
        """The evolution config the knobs describe (fails clearly with no operator picked)."""
        picked = tuple(name for name, box in self.operators.items() if box.value)
        if not picked:
            raise ValueError("no operator is picked: tick at least one operator box")
        defaults = EvolveConfig()
        params = defaults.params.model_copy(
            update={"temperature": self.temperature.value, "max_tokens": self.max_tokens.value}
        )
        return EvolveConfig(operators=picked, generations=self.rounds.value, strategy=self.strategy.value,
                            params=params, seed=self.seed.value)  # fmt: skip

    def prompts(self) -> tuple[pl.DataFrame, Literal["instructions", "seeds"]]:
        """What Run evolves: the run's kept instructions (Filters drops left out), else the seed tasks; at most
        `limit` of them."""
        step = EvolveStep(prompts_from="instructions", limit=self.limit.value)
        kept = step_inputs(step, Recipe(name="workbench", steps=[step]), self.session.store)
        if kept.height:
            return kept, "instructions"
        return seed_prompts(self._seeds()).head(self.limit.value), "seeds"

    # -- running -------------------------------------------------------------------------------
    def run(self) -> Job | None:
        """Start evolving in a worker thread (returns the Job); errors show in the panel."""
        if self._job_busy():
            self._fail("an evolution is already running: press Stop first")
            return None
        try:
            config = self.config()
            prompts, source = self.prompts()
            if prompts.height == 0:
                raise ValueError("there is nothing to evolve: add seed tasks or run self-instruct first")
            backend, store = self.session.backend, self.session.store
        except Exception as err:
            self._cannot_start(str(err))
            return None
        self.error.value = ""
        self.last_config, self.last_source, self.last_limit = config, source, self.limit.value

        def work(report: Any, cancel: Any) -> pl.DataFrame:
            rounds = RoundsProgress(report)
            return run_evolution(backend, store, prompts, config, on_progress=rounds, cancel=cancel)

        return self._launch(Job(work, name="evolve"), f"evolving {prompts.height} {source}…")

    def _preview_work(self) -> Any:
        """Read the knobs and what Run would evolve here (the kernel thread); the work evolves a few of them
        through every round in a scratch run and prices all of them."""
        config, (prompts, _source) = self.config(), self.prompts()
        if prompts.height == 0:
            raise ValueError("there is nothing to evolve: add seed tasks or run self-instruct first")
        backend = self.session.backend

        def work() -> Preview:
            return preview_evolve(backend, prompts, config, full_rows=prompts.height)

        return work

    # -- views ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the run's evolution rows and redraw the source note, counts, lineage and drops."""
        self._last_refresh = time.monotonic()
        try:
            rows = self.session.store.rows()
        except Exception as err:
            self.error.value = error_html(f"Evolve: cannot read the run: {err}")
            return
        self.show_source()
        frame = lineage_frame(rows)
        kept = frame.filter(pl.col("status") == "kept")
        rounds = int(frame["generation"].max() or 0) if frame.height else 0  # type: ignore[arg-type]
        self.counts.value = (
            f"<b>{kept.height}</b> kept · <b>{frame.height - kept.height}</b> dropped or failed · {rounds} rounds so far"
            if frame.height else ""
        )  # fmt: skip
        self.lineage_table.value = self._lineage_html(kept)
        self.drops_table.value = self._drops_html(frame.filter(pl.col("status") != "kept"), drop_reasons(rows))

    def show_source(self) -> None:
        """Say what Run would evolve now: how many kept instructions, or seed tasks when there are none."""
        try:
            prompts, source = self.prompts()
        except Exception as err:  # a seed pool being edited can be briefly invalid: say so, do not raise
            self.source_note.value = error_html(f"Evolve: cannot read what to evolve: {err}")
            return
        what = "kept instructions of the run" if source == "instructions" else "seed tasks (the run has no kept instructions yet)"
        self.source_note.value = f"Evolve will rewrite the first <b>{prompts.height}</b> {html.escape(what)}."

    def _lineage_html(self, kept: pl.DataFrame) -> str:
        if kept.height == 0:
            return "<i>No evolved instructions yet: press Evolve.</i>"
        head = "<tr><th>round</th><th>operator</th><th>evolved instruction</th><th>came from (oldest first)</th></tr>"
        body = [
            f"<tr data-id='{html.escape(r['id'])}'><td>{r['generation']}</td>"
            f"<td class='wb-evolve-op'>{html.escape(r['operator'] or '')}</td>"
            f"<td>{html.escape(r['text'] or '')}</td><td>{_chain_html(r)}</td></tr>"
            for r in kept.head(self.table_rows).iter_rows(named=True)
        ]
        return (f"<b>Lineage</b> {_shown(kept.height, self.table_rows)}"
                f"<table class='wb-evolve-lineage-table'>{head}{''.join(body)}</table>")  # fmt: skip

    def _drops_html(self, dropped: pl.DataFrame, reasons: pl.DataFrame) -> str:
        if dropped.height == 0:
            return ""
        summary = " · ".join(f"{html.escape(str(r['reason']))}: {r['count']}" for r in reasons.iter_rows(named=True))
        head = "<tr><th>round</th><th>operator</th><th>reason</th><th>rewrite</th><th>of</th></tr>"
        body = [
            f"<tr><td>{r['generation']}</td><td class='wb-evolve-op'>{html.escape(r['operator'] or '')}</td>"
            f"<td style='color:#b00020'>{html.escape(r['reason'] or r['status'] or '')}</td>"
            f"<td>{html.escape(r['text'] or '') or '<i>(empty)</i>'}</td>"
            f"<td>{html.escape((r['chain_texts'] or [''])[-1])}</td></tr>"
            for r in dropped.head(self.table_rows).iter_rows(named=True)
        ]
        return (f"<b>Dropped</b> ({summary}) {_shown(dropped.height, self.table_rows)}"
                f"<table class='wb-evolve-drops-table'>{head}{''.join(body)}</table>")  # fmt: skip


class RoundsProgress:
    """Adds up the engine's per-call progress over the rounds of one evolution (each round is one generate
    call whose counts start at 0), so the bar and the final summary count every round's rows."""

    def __init__(self, report: Callable[[Progress], None]) -> None:
        self._report = report
        self._t0 = time.monotonic()
        self._before = Progress(0, 0, 0, 0.0)  # totals of the rounds already finished
        self._last: Progress | None = None

    def __call__(self, p: Progress) -> None:
        last = self._last
        if last is not None and (p.rows_total != last.rows_total or p.rows_done < last.rows_done
                                 or p.tokens_generated < last.tokens_generated or p.elapsed_s < last.elapsed_s):
            b = self._before  # a new round's generate call began: bank the previous one
            self._before = Progress(b.rows_done + last.rows_done, b.rows_total + last.rows_total,
                                    b.tokens_generated + last.tokens_generated, 0.0, b.errors + last.errors)  # fmt: skip
        self._last = p
        b = self._before
        self._report(Progress(b.rows_done + p.rows_done, b.rows_total + p.rows_total, b.tokens_generated +
                              p.tokens_generated, time.monotonic() - self._t0, b.errors + p.errors))  # fmt: skip


def _chain_html(r: dict[str, Any]) -> str:
    """The ancestors root first, each later one with the operator that made it."""
    texts, ops = r["chain_texts"] or [], r["chain_operators"] or []
    parts = [html.escape(texts[0])] if texts else []
    for text, op in zip(texts[1:], ops, strict=False):
        parts.append(f"<span class='wb-evolve-op'>→ {html.escape(op or '')}:</span> {html.escape(text)}")
    return "<br>".join(parts)


def _shown(total: int, cap: int) -> str:
    return f"<small>(first {cap} of {total})</small>" if total > cap else ""
