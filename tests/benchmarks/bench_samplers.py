"""Samplers' effect on diversity (issue 15.2): self-instruct on the default model, the same budget of
generation requests with and without a topic + persona sampler, measured with `metrics.compare_runs`.

Workload: 6 rounds x 8 prompts = 48 instruction requests per arm (max_tokens 48, the default instruction
sampling), seed 0, no instances. The baseline uses the default template; the sampler arm the same
few-shot list under a header naming a sampled topic and persona. Compared on the same number of rows
(the smaller arm's count) twice: every parsed candidate (what the model wrote, before the pool's
filters) and the kept instructions. Prints distinct-1/2, compression ratio and Vendi (embeddings from
the same model) with jackknife 95% intervals and the with - without differences.
Run: `python tests/benchmarks/bench_samplers.py [--rounds 6] [--per-round 8]`.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import polars as pl

from workbench.engine import load_backend
from workbench.generate.samplers import CategorySampler, PersonaSampler, SamplerSpec
from workbench.generate.seeds import default_seeds
from workbench.generate.selfinstruct import SelfInstructConfig, run_self_instruct
from workbench.metrics.compare import compare_runs
from workbench.runs import RunStore

TOPICS = (
    "cooking", "travel", "personal finance", "gardening", "physics", "music", "health", "history",
    "programming", "sports", "law", "parenting",
)  # fmt: skip
SPEC = SamplerSpec(samplers={"topic": CategorySampler(values=TOPICS), "persona": PersonaSampler()})
TEMPLATE = (
    "Come up with a series of tasks that {{ persona }} might ask about {{ topic }}:\n\n"
    "{% for ex in examples %}Task {{ loop.index }}: {{ ex.instruction }}\n{% endfor %}"
    "Task {{ next_number }}:"
)
METRICS = ("distinct_1", "distinct_2", "compression_ratio", "vendi", "self_bleu")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=8)
    args = ap.parse_args()
    base = {
        "rounds": args.rounds,
        "prompts_per_round": args.per_round,
        "num_instructions": 10_000,  # never stop early: both arms spend the whole budget
        "generate_instances": False,
        "seed": 0,
    }
    arms = {
        "samplers": SelfInstructConfig(**base, samplers=SPEC, template=TEMPLATE),
        "no samplers": SelfInstructConfig(**base),
    }
    backend = load_backend("default", n_parallel=8, n_ctx_per_seq=1024)
    try:
        rows: dict[str, pl.DataFrame] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, cfg in arms.items():
                t0 = time.perf_counter()
                out = run_self_instruct(
                    backend, RunStore.create(tmp, name.replace(" ", "_")), cfg, seeds=default_seeds()
                )
                rows[name] = out.filter(pl.col("stage") == "instruction")
                counts = rows[name]["status"].value_counts().sort("status").rows()
                print(f"{name}: {rows[name].height} candidates {counts} in {time.perf_counter() - t0:.1f}s")
        for label, keep in (
            ("parsed candidates", pl.col("text") != ""),
            ("kept", pl.col("status") == "kept"),
        ):
            a, b = (rows[n].filter(keep).select("text") for n in arms)
            table = compare_runs(a, b, backend=backend, embeddings=True, n_boot=1000)
            print(f"\n== {label}: budget {min(a.height, b.height)} rows per arm ==")
            shown = table.filter(pl.col("metric").is_in(METRICS)).sort("metric", "set")
            for r in shown.iter_rows(named=True):
                lo, hi = r["ci_low"], r["ci_high"]
                ci = f"[{lo:.3f}, {hi:.3f}]" if lo is not None else ""
                print(f"{r['metric']:<18} {r['set']:<26} {r['value']:.3f} {ci}")
    finally:
        getattr(backend, "close", lambda: None)()


if __name__ == "__main__":
    main()
