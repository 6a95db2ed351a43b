"""Benchmark: 13-gram decontamination of 1M rows against 100k benchmark items, by hashing.

Data (deterministic): rows and benchmark items are word sequences drawn from the vocabulary of the shipped
self-instruct human text (rows 20-100 words, like an instruction with its answer; items 15-80 words).
`--planted` of the rows (1%) get a 13-20 word span of a random benchmark item pasted in with changed case
and punctuation, so the run also checks that every planted row is flagged with its item, and nothing else.

Prints the wall time of `decontaminate` (hashing the benchmark and the rows, lookups, checks), rows/s,
peak memory (tracemalloc and max RSS), and planted-row recall and false flags.
Run: `nice -n 10 .venv/bin/python tests/benchmarks/bench_decontam.py [--rows 1000000 --items 100000]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from importlib import resources

import numpy as np
import polars as pl

from workbench.filters.decontam import DecontamConfig, decontaminate, load_benchmark


def vocabulary() -> np.ndarray:
    corpus = resources.files("workbench.data").joinpath("collapse_corpus/self_instruct_human_text.jsonl")
    words: set[str] = set()
    for line in corpus.read_text(encoding="utf-8").splitlines():
        words.update(w.strip(".,;:!?\"'()").lower() for w in json.loads(line)["text"].split())
    return np.array(sorted(w for w in words if w.isalpha()), dtype=object)


def random_texts(vocab: np.ndarray, n: int, lo: int, hi: int, rng: np.random.Generator) -> list[str]:
    lens = rng.integers(lo, hi + 1, n)
    flat = vocab[rng.integers(0, vocab.size, int(lens.sum()))]
    ends = np.cumsum(lens)
    return [" ".join(flat[e - k : e]) for e, k in zip(ends.tolist(), lens.tolist(), strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--planted", type=float, default=0.01, help="share of rows given a benchmark span")
    ap.add_argument("--n", type=int, default=13)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vocab = vocabulary()
    items = random_texts(vocab, args.items, 15, 80, rng)
    rows = random_texts(vocab, args.rows, 20, 100, rng)
    planted = np.flatnonzero(rng.random(args.rows) < args.planted)
    source = rng.integers(0, args.items, planted.size)
    for r, it in zip(planted.tolist(), source.tolist(), strict=True):
        words = items[it].split()
        k = int(rng.integers(args.n, min(len(words), args.n + 7) + 1)) if len(words) >= args.n else len(words)
        s = int(rng.integers(0, len(words) - k + 1))
        span = " ".join(w.upper() if i % 3 == 0 else w + "," for i, w in enumerate(words[s : s + k]))
        host = rows[r].split()
        cut = int(rng.integers(0, len(host) + 1))
        rows[r] = " ".join([*host[:cut], span, *host[cut:]])
    frame = pl.DataFrame({"id": [f"r{k}" for k in range(args.rows)], "text": rows})
    del rows
    bench = load_benchmark(pl.DataFrame({"qid": [f"q{k}" for k in range(args.items)], "question": items}),
                           text_column="question", id_column="qid", name="synthetic-test")  # fmt: skip
    tracemalloc.start()
    t0 = time.perf_counter()
    out = decontaminate(frame, bench, DecontamConfig(n=args.n))
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB
    flagged = out["status"].to_numpy() == "dropped"
    expect = np.zeros(args.rows, dtype=bool)
    expect[planted] = True
    named = out["contaminated_by"].to_numpy()[planted] == np.array([f"q{s}" for s in source.tolist()])
    tokens_rows = frame["text"].str.count_matches(r"\S+").sum()
    print(f"decontaminate: {args.rows:,} rows ({tokens_rows:,} words) vs {args.items:,} items, {args.n}-grams: "
          f"{wall:.1f} s ({args.rows / wall:,.0f} rows/s)")  # fmt: skip
    print(f"  planted {planted.size:,}: flagged {int((flagged & expect).sum()):,}, named the planted item "
          f"{int(named.sum()):,}; false flags {int((flagged & ~expect).sum())}")  # fmt: skip
    print(f"  peak traced memory {peak / 2**30:.2f} GiB, process max RSS {rss:.2f} GiB (includes the data)")


if __name__ == "__main__":
    main()
