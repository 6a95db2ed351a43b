"""Benchmark: the near-duplicate filter on a 5,000-instruction pool, ours vs rouge_score (the reference).

Work: for each of 500 candidate instructions, the max ROUGE-L F1 against all 5,000 pool instructions
(2.5 million pairs), exactly what the self-instruct filter computes. Ours runs the whole job. The
reference (`rouge_score`'s RougeScorer, pure Python, as in the paper's code) would take minutes, so it is
timed on a random sample of pairs and extrapolated linearly to all pairs; the script says so when it
prints. Both sides include tokenization. Run: `.venv/bin/python tests/benchmarks/bench_rouge.py`.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

from rouge_score import rouge_scorer

from workbench.filters import rouge_l_nearest

POOL_SIZE = 5000
N_CANDIDATES = 500
REFERENCE_SAMPLE_PAIRS = 20_000
SHARED = Path(
    os.environ.get(
        "WORKBENCH_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared/data/self-instruct"
    )
)


def _real_instructions() -> list[str]:
    texts: list[str] = []
    for name in ("seed_tasks.jsonl", "user_oriented_instructions.jsonl"):
        path = SHARED / name
        if path.exists():
            texts += [json.loads(line)["instruction"].strip() for line in path.open() if line.strip()]
    if not texts:
        from workbench.generate.seeds import default_seeds

        texts = default_seeds()["instruction"].to_list()
    return texts


def _variant(rng: random.Random, texts: list[str]) -> str:
    """A plausible machine-written instruction: splice two real ones and perturb a few words."""
    a, b = rng.choice(texts).split(), rng.choice(texts).split()
    words = a[: max(1, len(a) // 2)] + b[len(b) // 2 :]
    for _ in range(rng.randint(0, 3)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(["please", "new", "short", "each", "given"]))
    return " ".join(words)


def main() -> int:
    rng = random.Random(0)
    real = _real_instructions()
    pool = (real + [_variant(rng, real) for _ in range(POOL_SIZE)])[:POOL_SIZE]
    candidates = [_variant(rng, real) for _ in range(N_CANDIDATES)]
    n_pairs = len(pool) * len(candidates)

    t0 = time.perf_counter()
    scores, _ = rouge_l_nearest(candidates, pool)
    ours_s = time.perf_counter() - t0

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = [
        (rng.randrange(len(candidates)), rng.randrange(len(pool))) for _ in range(REFERENCE_SAMPLE_PAIRS)
    ]
    # Reference A: scorer.score on raw text (tokenizes both sides for every pair).
    t0 = time.perf_counter()
    for ci, pi in pairs:
        scorer.score(candidates[ci], pool[pi])
    per_pair_a = (time.perf_counter() - t0) / len(pairs)
    # Reference B (faster, the paper's later code): tokenize once, then rouge_scorer._score_lcs per pair.
    t0 = time.perf_counter()
    tok = scorer._tokenizer.tokenize
    pool_tokens = [tok(p) for p in pool]
    cand_tokens = [tok(c) for c in candidates]
    tokenize_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for ci, pi in pairs:
        rouge_scorer._score_lcs(cand_tokens[ci], pool_tokens[pi])
    per_pair_b = (time.perf_counter() - t0) / len(pairs)

    # Spot-check exactness on a few full rows while we are here.
    for ci in range(3):
        best = max(scorer.score(candidates[ci], p)["rougeL"].fmeasure for p in pool)
        assert best == scores[ci], (best, scores[ci])

    ref_a = per_pair_a * n_pairs
    ref_b = tokenize_s + per_pair_b * n_pairs
    print(
        f"pool {len(pool)} instructions x {len(candidates)} candidates = {n_pairs:,} pairs; cpu cores {os.cpu_count()}"
    )
    print(f"reference times are EXTRAPOLATED from {len(pairs):,} randomly sampled pairs timed in this run:")
    print(
        f"  A rouge_score scorer.score per pair (tokenizes each time): {per_pair_a * 1e6:.1f} us/pair -> {ref_a:.1f} s"
    )
    print(
        f"  B pre-tokenized rouge_scorer._score_lcs per pair: {per_pair_b * 1e6:.1f} us/pair "
        f"+ {tokenize_s:.2f} s tokenizing -> {ref_b:.1f} s"
    )
    print(
        f"ours (rapidfuzz Indel LCS + exact F), measured on all pairs: {ours_s:.3f} s ({ours_s / n_pairs * 1e9:.1f} ns/pair)"
    )
    ratio = ref_b / ours_s
    print(
        f"speed-up vs the faster reference B: {ratio:.0f}x (vs A: {ref_a / ours_s:.0f}x); target >= 500x -> "
        f"{'OK' if ratio >= 500 else 'BELOW TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
