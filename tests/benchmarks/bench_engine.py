"""Engine throughput: a plain `Llama.create_completion` loop vs our batched engine, same work, one run.

Workload (the foundation issue's): 64 self-instruct style prompts, 128 new tokens each, temperature 0.9,
top-p 0.95, 2 threads. Also grammar-constrained generation vs unconstrained on our engine, and the engine
in its own engine process (`LlamaCppBackend`, what users get) vs the same engine in-process
(`InProcessLlamaBackend`). Every side loads weights with the buffer setting that is safe on this CPU.
Prints tokens/s of each, the ratios, and peak memory (RSS; the engine process's is counted). Run: `make bench` or
`python tests/benchmarks/bench_engine.py [--prompts 64] [--tokens 128] [--parallel 64]`.
Baseline and engine each run in a fresh subprocess, so neither inherits the other's memory or threads.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from workbench.engine import GenerationRequest, LlamaCppBackend, SamplingParams, default_model_path
from workbench.engine.cpu_safety import choose_policy
from workbench.engine.llama import InProcessLlamaBackend

TOPICS = [
    "a poem about the sea", "a recipe for lentil soup", "three tips for learning a language",
    "an email asking for a deadline extension", "how vaccines work", "a story about a lost robot",
    "the causes of inflation", "a workout plan for beginners", "how to sort a list in Python",
    "a haiku about autumn", "the difference between weather and climate", "a product description for headphones",
    "a summary of the water cycle", "five interview questions for a teacher", "why the sky is blue",
    "a short speech for a wedding",
]


def prompts(n: int) -> list[str]:
    return [
        "Below are tasks and their answers.\n\nTask 1: Give three synonyms for 'happy'.\nAnswer: glad, joyful, "
        f"content.\n\nTask 2: Write {TOPICS[i % len(TOPICS)]} (variant {i}).\nAnswer:"
        for i in range(n)
    ]


def peak_rss_mb() -> float:
    """This process's peak RSS plus that of the largest child it waited for (the engine process)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (own + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run_baseline(path: str, texts: list[str], tokens: int, threads: int) -> tuple[float, int]:
    from workbench.engine.cpu_safety import safe_llama

    # The same CPU-safe buffer setting as the engine (the default one segfaults on AMX CPUs).
    llm = safe_llama(path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False, seed=0)
    t0 = time.perf_counter()
    n = 0
    for i, p in enumerate(texts):
        out = llm.create_completion(p, max_tokens=tokens, temperature=0.9, top_p=0.95, seed=i)
        n += out["usage"]["completion_tokens"]
    dt = time.perf_counter() - t0
    del llm
    return n / dt, n


def run_engine(
    backend: LlamaCppBackend | InProcessLlamaBackend, texts: list[str], params: SamplingParams, resamples: list[int] | None = None
) -> tuple[float, int]:
    reqs = [GenerationRequest(prompt=p, params=params.with_seed(i)) for i, p in enumerate(texts)]
    if resamples is not None:  # count grammar rejections by wrapping the sampler's resample path
        from workbench.engine import llama_sampling

        orig_free = llama_sampling.SequenceSampler.free

        def free(self: llama_sampling.SequenceSampler) -> None:
            resamples.append(self.grammar_resamples)
            orig_free(self)

        llama_sampling.SequenceSampler.free = free  # type: ignore[method-assign]
    t0 = time.perf_counter()
    gens = backend.generate(reqs)
    dt = time.perf_counter() - t0
    n = sum(g.completion_tokens for g in gens)
    bad = [g.error for g in gens if not g.ok]
    if bad:
        raise SystemExit(f"engine rows failed: {bad[:3]}")
    return n / dt, n


# The same amount of work under a grammar: one line of free text that cannot end before max_tokens
# (so every row decodes all its tokens, as in the unconstrained run). Every sampled token is checked;
# the newlines the base model likes are rejected and resampled under the full grammar mask.
GRAMMAR = r"""root ::= [^\n]{2000}
"""


def measure(args: argparse.Namespace) -> dict[str, float]:
    path = str(default_model_path())
    texts = prompts(args.prompts)
    if args.only == "baseline":
        tps, n = run_baseline(path, texts, args.tokens, args.threads)
        return {"tps": tps, "tokens": n, "rss": peak_rss_mb()}
    cls = InProcessLlamaBackend if args.only == "inprocess" else LlamaCppBackend
    backend = cls(path, n_parallel=args.parallel, n_ctx_per_seq=512, n_threads=args.threads)
    # The baseline's create_completion defaults are top-k 40, min-p 0.05, repeat penalty 1.0: match them.
    params = SamplingParams(temperature=0.9, top_p=0.95, top_k=40, min_p=0.05, max_tokens=args.tokens)
    tps, n = run_engine(backend, texts, params)
    if args.only == "inprocess":  # the grammar rejections are counted where the samplers live
        resamples: list[int] = []
        g_tps, g_n = run_engine(backend, texts, params.model_copy(update={"grammar": GRAMMAR}), resamples)
        backend.close()
        return {"tps": tps, "tokens": n, "rss": peak_rss_mb(), "g_tps": g_tps, "g_tokens": g_n,
                "resamples": sum(resamples)}
    backend.close()
    return {"tps": tps, "tokens": n, "rss": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-inprocess", action="store_true")
    ap.add_argument("--only", choices=["baseline", "engine", "inprocess"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        print(json.dumps(measure(args)))
        return
    print(f"model {default_model_path()}\nworkload: {args.prompts} prompts x {args.tokens} new tokens, "
          f"T=0.9 top-p=0.95, {args.threads} threads; each side in its own fresh process, one after the other")
    verdict = choose_policy(default_model_path())
    print(f"buffer policy (all sides): {verdict.policy} — {verdict.reason}")

    def side(name: str) -> dict[str, float]:
        cmd = [sys.executable, __file__, "--only", name, "--prompts", str(args.prompts), "--tokens",
               str(args.tokens), "--parallel", str(args.parallel), "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    base = None if args.skip_baseline else side("baseline")
    if base:
        print(f"baseline  Llama.create_completion loop: {base['tps']:7.1f} tok/s ({base['tokens']:.0f} tokens)  "
              f"peak RSS {base['rss']:.0f} MB")
    eng = side("engine")
    print(f"engine    engine process, {args.parallel} sequences: {eng['tps']:7.1f} tok/s ({eng['tokens']:.0f} tokens)  "
          f"peak RSS {eng['rss']:.0f} MB")
    if base:
        print(f"ratio engine / baseline: {eng['tps'] / base['tps']:.2f}x")
    if not args.skip_inprocess:
        inp = side("inprocess")
        print(f"engine    in-process, {args.parallel} sequences:     {inp['tps']:7.1f} tok/s ({inp['tokens']:.0f} tokens)  "
              f"peak RSS {inp['rss']:.0f} MB")
        print(f"ratio engine process / in-process: {eng['tps'] / inp['tps']:.3f}x")
        print(f"engine    grammar-constrained:        {inp['g_tps']:7.1f} tok/s ({inp['g_tokens']:.0f} tokens, "
              f"{inp['resamples']:.0f} rejected tokens resampled under the full mask)")
        print(f"ratio grammar / unconstrained: {inp['g_tps'] / inp['tps']:.2f}x")


if __name__ == "__main__":
    main()
