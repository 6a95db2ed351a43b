"""How close the Preview's time estimate is to the real run (issue 14.2), on the default model.

For each workload — the notebooks' kinds of runs — it previews (a few rows in a scratch run), prints the
estimate, then runs the full step in a fresh run and prints the real time and estimate / real:
  1. self-instruct, 3 rounds x 8 prompts, stop at 16 kept, with an instance per kept instruction
     (notebook 01's shape, smaller);
  2. answers: 32 instructions (the shipped self-instruct seeds) x 1 answer, max 64 tokens (notebook 02);
  3. an absolute judge over those 32 answers (notebook 03).
The machine's rates are measured once (the first preview) and reused, as in the app.
Run: `python tests/benchmarks/bench_estimator.py`.
"""

from __future__ import annotations

import tempfile
import time

import polars as pl

from workbench.engine import load_backend
from workbench.generate.completions import CompletionConfig, run_completions
from workbench.generate.seeds import default_seeds, self_instruct_seeds
from workbench.generate.selfinstruct import SelfInstructConfig, run_self_instruct
from workbench.judge import JudgeConfig, likert_rubric, run_absolute_judge
from workbench.pipeline.preview import preview_completions, preview_judge, preview_self_instruct
from workbench.runs import RunStore

RUBRIC = likert_rubric(
    "helpfulness", "Grade how well the response answers the instruction.",
    ("Does what the instruction asks", "Is correct", "Is clear"),
    {1: "Wrong or off-task", 2: "Mostly wrong", 3: "Partly right", 4: "Right with small issues", 5: "Fully right"},
)  # fmt: skip


def main() -> None:
    backend = load_backend("default")
    results: list[tuple[str, float, float]] = []

    def done(name: str, estimate: float, t0: float) -> None:
        real = time.perf_counter() - t0
        results.append((name, estimate, real))
        print(f"{name}: estimate {estimate:.1f} s, real {real:.1f} s, estimate / real {estimate / real:.2f}", flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = SelfInstructConfig(rounds=3, prompts_per_round=8, num_instructions=16, generate_instances=True)
            p = preview_self_instruct(backend, cfg, default_seeds())
            print(p.describe(), flush=True)
            t0 = time.perf_counter()
            run_self_instruct(backend, RunStore.create(tmp, "si"), cfg, seeds=default_seeds())
            done("self-instruct + instances", p.estimate.seconds, t0)

            prompts = self_instruct_seeds().head(32).select("id", "instruction")
            ccfg = CompletionConfig(k=1, params=CompletionConfig().params.model_copy(update={"max_tokens": 64}))
            p = preview_completions(backend, prompts, ccfg, rates=p.estimate.rates)
            print(p.describe(), flush=True)
            store = RunStore.create(tmp, "answers")
            t0 = time.perf_counter()
            answers = run_completions(backend, store, prompts, ccfg)
            done("answers", p.estimate.seconds, t0)

            rows = answers.join(prompts, left_on="parent_id", right_on="id", how="left", suffix="_p")
            if "instruction" not in rows.columns:
                rows = rows.with_columns(pl.col("instruction_p").alias("instruction"))
            jcfg = JudgeConfig()
            p = preview_judge(backend, rows, RUBRIC, jcfg, rates=p.estimate.rates)
            print(p.describe(), flush=True)
            t0 = time.perf_counter()
            run_absolute_judge(backend, RunStore.create(tmp, "judge"), rows, RUBRIC, jcfg)
            done("absolute judge", p.estimate.seconds, t0)
    finally:
        getattr(backend, "close", lambda: None)()
    print("\n| workload | estimate (s) | real (s) | estimate / real |\n| --- | --- | --- | --- |")
    for name, est, real in results:
        print(f"| {name} | {est:.1f} | {real:.1f} | {est / real:.2f} |")


if __name__ == "__main__":
    main()
