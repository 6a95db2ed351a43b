"""`workbench` on the command line: run a recipe headless, plan it, export a run.

    workbench run RECIPE [--dry-run] [--resume] [--overwrite] [--runs-root DIR] [--run NAME]
                         [--endpoint URL ...] [--served-model NAME] [--ray-address ADDR] [--no-export]
    workbench validate RECIPE
    workbench export RUN_DIR --format sft|dpo|prompt_completion --out DIR [--kind parquet|jsonl|disk]
                     [--rubric NAME] [--rubric-version HASH] [--min-score S] [--best-of N] [--min-margin M]

Ctrl-C stops a run cleanly (finished rows are kept); `--resume` continues it. Exit codes: 0 done,
1 failed, 2 bad recipe or arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from ..jobs import Job

__all__ = ["ProgressBar", "main"]


class ProgressBar:
    """A one-line terminal progress bar on stderr (no dependency): redrawn in place on a terminal,
    a plain line every few seconds otherwise (CI logs)."""

    def __init__(self, stream: TextIO | None = None, width: int = 28, min_interval_s: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = min_interval_s if self.tty else 3.0
        self._last = 0.0
        self._line_open = False

    def update(self, report: object) -> None:
        from .runner import StepProgress

        assert isinstance(report, StepProgress)
        now = time.monotonic()
        p = report.progress
        final = p is not None and p.rows_done >= p.rows_total
        if p is None:
            self.message(f"[{report.step}/{report.steps}] {report.label}: {report.message}")
            return
        if not final and now - self._last < self.min_interval_s:
            return
        self._last = now
        frac = p.rows_done / p.rows_total if p.rows_total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{report.step}/{report.steps}] {report.label} |{bar}| {p.describe()}"
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self._line_open = not final
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        self.stream.write(text + "\n")
        self.stream.flush()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="workbench", description="Synthetic Data Workbench, headless.")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a recipe (YAML or JSON) to a run directory")
    run.add_argument("recipe", help="recipe file (.yaml, .yml or .json)")
    run.add_argument("--dry-run", action="store_true", help="print planned steps, row counts and a time estimate")
    run.add_argument("--resume", action="store_true", help="continue an existing run of this recipe")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run (and exports) of this recipe")
    run.add_argument("--runs-root", help="folder for run directories (default: the recipe's runs_root)")
    run.add_argument("--run", help="run folder name (default: the recipe's run or name)")
    run.add_argument("--no-export", action="store_true", help="skip the recipe's exports")
    run.add_argument("--endpoint", action="append", default=[], help="OpenAI-compatible server URL; repeat for many (enables Ray)")
    run.add_argument("--served-model", help="model name on the endpoints")
    run.add_argument("--ray-address", help="Ray cluster to join ('auto', 'ray://head:10001'); implies Ray")
    run.add_argument("--sample-rows", type=int, default=4, help="dry run: rows each step's preview generates to estimate its time (0: skip)")
    val = sub.add_parser("validate", help="check a recipe file and print it normalised")
    val.add_argument("recipe")
    ex = sub.add_parser("export", help="export a run as a TRL-ready dataset with a card")
    ex.add_argument("run_dir")
    ex.add_argument("--format", required=True, choices=["sft", "dpo", "prompt_completion"])
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--kind", default="parquet", choices=["parquet", "jsonl", "disk"])
    ex.add_argument("--overwrite", action="store_true")
    ex.add_argument("--rubric", help="rubric whose scores to use (runs judged with several)")
    ex.add_argument("--rubric-version", help="rubric version hash (or unique prefix) whose scores to use "
                    "(default: the latest version of each rubric; the card says which)")
    ex.add_argument("--best-of", type=int, help="SFT/prompt-completion: keep the n best-scored answers per prompt")
    ex.add_argument("--min-margin", type=float, default=1.0, help="DPO: smallest chosen-rejected score gap")
    ex.add_argument("--min-score", type=float, help="SFT/prompt-completion: keep answers scored at least this")
    return ap


def _apply_overrides(recipe: object, args: argparse.Namespace) -> object:
    from .recipe import Recipe
    from .scale import ScaleConfig

    assert isinstance(recipe, Recipe)
    update: dict[str, object] = {}
    if args.run:
        update["run"] = args.run
    if args.endpoint or args.ray_address:
        base = recipe.scale.model_dump() if recipe.scale else {}
        if args.endpoint:
            base["endpoints"] = args.endpoint
        if args.served_model:
            base["model"] = args.served_model
        if args.ray_address:
            base["ray_address"] = args.ray_address
        if not base.get("endpoints"):
            raise ValueError("--ray-address needs --endpoint URL (or a `scale.endpoints` list in the recipe)")
        update["scale"] = ScaleConfig.model_validate(base)
    return Recipe.model_validate({**recipe.model_dump(), **update}) if update else recipe


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _print_plan(plan: object, out: TextIO) -> None:
    from .plan import RecipePlan

    assert isinstance(plan, RecipePlan)
    out.write(f"{'step':<22}{'inputs':>8}{'rows':>8}{'max tok':>9}{'token budget':>14}  note\n")
    for s in plan.steps:
        cells = ["?" if v is None else str(v) for v in (s.inputs, s.rows, s.max_tokens, s.token_budget)]
        out.write(f"{s.label:<22}{cells[0]:>8}{cells[1]:>8}{cells[2]:>9}{cells[3]:>14}  {s.note}\n")
    out.write(f"total rows (upper bound): {plan.total_rows if plan.total_rows is not None else '?'}\n")
    if plan.rates is None:
        out.write("estimated time: not measured (--sample-rows 0)\n")
        return
    out.write(f"measured on this machine: {plan.rates.describe()} ({plan.rates.seconds:.1f}s to measure)\n")
    out.write(f"estimate, each step previewed on {plan.sample_rows} rows:\n")
    for s in plan.steps:
        if s.max_tokens == 0:
            continue
        if s.estimate is not None:
            out.write(f"  {s.label}: ≈ {_fmt_s(s.estimate.seconds)} ({s.preview})\n")
            for sub in s.estimate.substeps:
                extra = f" ({sub.note})" if sub.note else ""
                out.write(f"    {sub.stage}: {sub.requests:.0f} requests × {sub.prompt_tokens:.0f} prompt + "
                          f"{sub.completion_tokens:.0f} answer tokens ≈ {_fmt_s(sub.seconds(plan.rates))}{extra}\n")  # fmt: skip
        elif s.bound_seconds is not None:
            out.write(f"  {s.label}: at most {_fmt_s(s.bound_seconds)} ({s.preview})\n")
        else:
            out.write(f"  {s.label}: ? ({s.preview})\n")
    est = plan.estimated_seconds or 0.0
    left = f" (not counting {', '.join(plan.unestimated)}: see above)" if plan.unestimated else ""
    out.write(f"estimated time: ≈ {_fmt_s(est)} in total{left}\n")


def _cmd_run(args: argparse.Namespace) -> int:
    from ..runs import RunExistsError
    from .plan import plan_recipe
    from .recipe import load_recipe
    from .runner import make_backend, run_recipe

    recipe = _apply_overrides(load_recipe(args.recipe), args)
    bar = ProgressBar()
    backend = make_backend(recipe)  # type: ignore[arg-type]
    try:
        if args.dry_run:
            bar.message(f"dry run of {args.recipe}: previewing each step on {args.sample_rows} rows with {backend.name}")
            plan = plan_recipe(recipe, backend=backend, runs_root=args.runs_root, sample_rows=args.sample_rows)  # type: ignore[arg-type]
            _print_plan(plan, sys.stdout)
            return 0

        def work(_report: object, cancel: threading.Event) -> object:
            return run_recipe(
                recipe,  # type: ignore[arg-type]
                backend=backend,
                runs_root=args.runs_root,
                resume=args.resume,
                overwrite=args.overwrite,
                export=not args.no_export,
                on_progress=bar.update,
                cancel=cancel,
            )

        job = Job(work, name="recipe").start()
        # Poll the job's state instead of joining its thread: a join interrupted by Ctrl-C can
        # return early on a later call (a CPython quirk), and the rows in flight must be finished.
        try:
            while job.running:
                time.sleep(0.1)
        except KeyboardInterrupt:
            bar.message("interrupted: stopping after the rows in flight (Ctrl-C again to abort)...")
            job.cancel()
            while job.running:
                time.sleep(0.05)
        if job.state == "failed":
            err = job.error
            if isinstance(err, RunExistsError):
                bar.message(f"error: {err} (CLI: --resume or --overwrite)")
                return 2
            bar.message(f"error: {job.error_text}")
            return 1
        report = job.result
        for s in report.steps:
            bar.message(f"  {s.label}: {s.rows} rows ({s.new_rows} new) in {s.seconds:.1f}s")
        for e in report.exports:
            bar.message(f"  export {e.format} ({e.kind}): {e.rows} rows -> {e.path}")
        if report.cancelled:
            bar.message(f"stopped; rows so far are in {report.store.path}. Continue with: workbench run {args.recipe} --resume")
            return 130
        bar.message(f"done: {report.store.path}")
        return 0
    finally:
        if hasattr(backend, "close"):
            backend.close()


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export import ExportSpec, export_run
    from ..runs import RunStore

    spec = ExportSpec(
        format=args.format, path=args.out, kind=args.kind, overwrite=args.overwrite, rubric=args.rubric,
        rubric_version=args.rubric_version, min_margin=args.min_margin, min_score=args.min_score,
        best_of=args.best_of,
    )  # fmt: skip
    result = export_run(RunStore.open(args.run_dir), spec)
    print(f"{result.rows} rows -> {result.path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `workbench` and `python -m workbench`."""
    from pydantic import ValidationError

    from .recipe import RecipeError, load_recipe

    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            sys.stdout.write(load_recipe(args.recipe).dumps("yaml"))
            return 0
        if args.command == "export":
            return _cmd_export(args)
        return _cmd_run(args)
    except (RecipeError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if not isinstance(exc, FileExistsError) else 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
