"""Engine throughput: a plain `Llama.create_completion` loop vs our batched engine, same work, one run.

Workload (the foundation issue's): 64 self-instruct style prompts, 128 new tokens each, temperature 0.9,
top-p 0.95, 2 threads. Also grammar-constrained generation vs unconstrained on our engine.
Prints tokens/s of each, the ratios, and peak memory (RSS). Run: `make bench` or
`python tests/benchmarks/bench_engine.py [--prompts 64] [--tokens 128] [--parallel 64]`.
"""

from __future__ import annotations

import argparse
import resource
import time

from workbench.engine import GenerationRequest, SamplingParams, default_model_path
from workbench.engine.llama import LlamaCppBackend

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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_baseline(path: str, texts: list[str], tokens: int, threads: int) -> tuple[float, int]:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False, seed=0)
    t0 = time.perf_counter()
    n = 0
    for i, p in enumerate(texts):
        out = llm.create_completion(p, max_tokens=tokens, temperature=0.9, top_p=0.95, seed=i)
        n += out["usage"]["completion_tokens"]
    dt = time.perf_counter() - t0
    del llm
    return n / dt, n


def run_engine(backend: LlamaCppBackend, texts: list[str], params: SamplingParams) -> tuple[float, int]:
    reqs = [GenerationRequest(prompt=p, params=params.with_seed(i)) for i, p in enumerate(texts)]
    t0 = time.perf_counter()
    gens = backend.generate(reqs)
    dt = time.perf_counter() - t0
    n = sum(g.completion_tokens for g in gens)
    bad = [g.error for g in gens if not g.ok]
    if bad:
        raise SystemExit(f"engine rows failed: {bad[:3]}")
    return n / dt, n


# A judge-style grammar: free reasoning on one line, then a bounded score. Most tokens pass the
# check after sampling; newlines inside the reasoning are rejected and resampled.
GRAMMAR = r"""root ::= " " [^\n]+ "\nScore: " [1-5]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    path = str(default_model_path())
    texts = prompts(args.prompts)
    print(f"model {path}\nworkload: {args.prompts} prompts x {args.tokens} new tokens, T=0.9 top-p=0.95, "
          f"{args.threads} threads")
    if not args.skip_baseline:
        base_tps, base_n = run_baseline(path, texts, args.tokens, args.threads)
        print(f"baseline  Llama.create_completion loop: {base_tps:7.1f} tok/s ({base_n} tokens)  peak RSS {peak_rss_mb():.0f} MB")
    backend = LlamaCppBackend(path, n_parallel=args.parallel, n_ctx_per_seq=512, n_threads=args.threads)
    # min_p and top_k off: the same sampling as the baseline's (create_completion's defaults add top-k 40,
    # min-p 0.05 and repeat penalty 1.0; we match them explicitly).
    params = SamplingParams(temperature=0.9, top_p=0.95, top_k=40, min_p=0.05, max_tokens=args.tokens)
    eng_tps, eng_n = run_engine(backend, texts, params)
    print(f"engine    batched, {args.parallel} sequences:    {eng_tps:7.1f} tok/s ({eng_n} tokens)  peak RSS {peak_rss_mb():.0f} MB")
    if not args.skip_baseline:
        print(f"ratio engine / baseline: {eng_tps / base_tps:.2f}x")
    g_tps, g_n = run_engine(backend, texts, params.model_copy(update={"grammar": GRAMMAR}))
    print(f"engine    grammar-constrained:        {g_tps:7.1f} tok/s ({g_n} tokens)")
    print(f"ratio grammar / unconstrained: {g_tps / eng_tps:.2f}x")
    backend.close()


if __name__ == "__main__":
    main()
