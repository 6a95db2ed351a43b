"""Benchmark: MinHash/LSH near-duplicate detection vs exact all-pairs ROUGE-L, and its cost at scale.

Data: instructions built deterministically from the shipped human instructions (the project's seeds, the
self-instruct paper's 175 seed tasks and its 252 user-oriented instructions): "fresh" rows rewrite half
the words of a base instruction with words of the shipped corpus (distinct rows), and about a third of the
rows are light edits (substitute, delete, insert, swap words; case and punctuation) or exact copies of an
earlier row, so near-duplicates span the 0.7 threshold.

1. Recall on `--recall-rows` (20,000): the rows the exact all-pairs sequential rule drops (every row
   against every earlier kept row, rapidfuzz on all pairs) vs the rows `near_duplicates` drops.
2. Wall time and peak memory (tracemalloc for numpy/Python, and the process's max RSS) at `--rows`
   (1,000,000), plus the MinHash signature time of `datasketch` on a sample, extrapolated, for the
   datasketch-or-numpy decision.

Run: `nice -n 10 .venv/bin/python tests/benchmarks/bench_near_dup.py [--rows 1000000]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from importlib import resources

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Indel

from workbench.filters.near_dup import NearDupConfig, NearDupStats, _decide, near_duplicates
from workbench.filters.rouge import _Vocab, rouge_l_fmeasure
from workbench.generate.seeds import default_seeds, self_instruct_seeds


def base_texts() -> tuple[list[str], list[str]]:
    """(base instructions, corpus vocabulary), all shipped with the package."""
    base = default_seeds()["instruction"].to_list() + self_instruct_seeds()["instruction"].to_list()
    corpus = resources.files("workbench.data").joinpath("collapse_corpus/self_instruct_human_text.jsonl")
    words: set[str] = set()
    for line in corpus.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["field"] == "instruction" and str(rec["task_id"]).startswith("user_oriented"):
            base.append(rec["text"])
        words.update(w.strip(".,;:!?\"'()") for w in rec["text"].split())
    uniq = list(dict.fromkeys(b for b in base if b.strip()))
    return uniq, sorted(w for w in words if w.isalpha())


def _light_edit(words: list[str], vocab: list[str], rng: np.random.Generator) -> list[str]:
    out = list(words)
    for _ in range(int(rng.integers(1, 6))):
        op = int(rng.integers(0, 6))
        k = int(rng.integers(0, max(1, len(out))))
        if op == 0 and out:
            out[k] = vocab[int(rng.integers(len(vocab)))]
        elif op == 1 and len(out) > 2:
            del out[k]
        elif op == 2:
            out.insert(k, vocab[int(rng.integers(len(vocab)))])
        elif op == 3 and len(out) > 1:
            k = min(k, len(out) - 2)
            out[k], out[k + 1] = out[k + 1], out[k]
        elif op == 4 and out:
            out[k] = out[k].upper() if rng.random() < 0.5 else out[k].lower()
        elif out:
            out[k] = out[k] + ","  # punctuation: same tokens
    return out


def build_instructions(n: int, seed: int = 0, dup_share: float = 0.35) -> list[str]:
    """`n` instructions: fresh rewrites of base instructions, ~dup_share light edits / copies of earlier rows."""
    base, vocab = base_texts()
    rng = np.random.default_rng(seed)
    rows: list[list[str]] = []
    for k in range(n):
        if k and rng.random() < dup_share:
            src = rows[int(rng.integers(0, k))]
            rows.append(list(src) if rng.random() < 0.1 else _light_edit(src, vocab, rng))
            continue
        words = base[int(rng.integers(len(base)))].split()
        if rng.random() < 0.3:
            other = base[int(rng.integers(len(base)))].split()
            words = words + other[: max(1, len(other) // 2)]
        swap = rng.random(len(words)) < 0.5
        picks = rng.integers(0, len(vocab), len(words))
        rows.append([vocab[int(p)] if s else w for w, s, p in zip(words, swap, picks, strict=True)])
    return [" ".join(r) for r in rows]


def exact_drops(texts: list[str], threshold: float) -> np.ndarray:
    """Rows the sequential rule drops when every pair is compared (rapidfuzz over the whole matrix)."""
    vocab = _Vocab()
    seqs, lens = vocab.encode_many(texts)
    n = len(texts)
    found_i, found_j, found_s = [], [], []
    for lo in range(0, n, 512):
        hi = min(n, lo + 512)
        dist = process.cdist(seqs[lo:hi], seqs[:hi], scorer=Indel.distance, dtype=np.int64, workers=-1)
        li, lj = lens[lo:hi, None], lens[None, :hi]
        score = rouge_l_fmeasure(
            (li + lj - dist) // 2, np.broadcast_to(li, dist.shape), np.broadcast_to(lj, dist.shape)
        )
        ii, jj = np.nonzero((score >= threshold) & (np.arange(hi)[None, :] < np.arange(lo, hi)[:, None]))
        found_i.append(ii + lo)
        found_j.append(jj)
        found_s.append(score[ii, jj])
    dup, _ = _decide(n, 0, np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s))
    return dup >= 0


def recall(n: int, cfg: NearDupConfig) -> None:
    texts = build_instructions(n, seed=1)
    t0 = time.perf_counter()
    exact = exact_drops(texts, cfg.threshold)
    t_exact = time.perf_counter() - t0
    frame = pl.DataFrame({"id": [f"r{k}" for k in range(n)], "text": texts})
    st = NearDupStats()
    t0 = time.perf_counter()
    out = near_duplicates(frame, cfg, stats=st)
    t_lsh = time.perf_counter() - t0
    lsh = (out["status"] == "dropped").to_numpy()
    found = int((lsh & exact).sum())
    print(f"recall on {n:,} instructions: exact all-pairs drops {int(exact.sum()):,}, LSH drops {int(lsh.sum()):,}, "
          f"found {found:,} = {found / max(1, int(exact.sum())):.4%} (extra LSH drops not in exact: {int((lsh & ~exact).sum())})")  # fmt: skip
    print(
        f"  exact all-pairs {t_exact:.1f} s, LSH {t_lsh:.2f} s; {st.bands} bands x {st.rows_per_band} rows, "
        f"{st.candidate_pairs:,} candidate pairs verified, {st.exact_copies:,} exact copies"
    )


def scale(n: int, cfg: NearDupConfig) -> None:
    texts = build_instructions(n, seed=2)
    frame = pl.DataFrame({"id": [f"r{k}" for k in range(n)], "text": texts})
    del texts
    st = NearDupStats()
    tracemalloc.start()
    t0 = time.perf_counter()
    out = near_duplicates(frame, cfg, stats=st)
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(
        f"scale: {n:,} instructions in {wall:.1f} s ({n / wall:,.0f} rows/s); dropped {st.dropped:,} "
        f"({int((out['dup_set'] == 'self').sum()):,} named); {st.candidate_pairs:,} candidate pairs, "
        f"{st.exact_copies:,} exact copies"
    )
    print(
        f"  peak traced memory {peak / 2**30:.2f} GiB, process max RSS {rss / 1024:.2f} GiB (includes the data)"
    )


def datasketch_time(cfg: NearDupConfig, sample: int = 20_000) -> None:
    try:
        from datasketch import MinHash
    except ImportError:
        print("datasketch not installed: skipped")
        return
    from workbench.filters.near_dup import _dense_ids, _minhash, _shingles, _tokens

    texts = build_instructions(sample, seed=3)
    t0 = time.perf_counter()
    toks = _tokens(pl.Series(texts))
    ids, lens = _dense_ids(toks)
    _minhash(_shingles(ids, lens), lens, cfg.num_perm, cfg.seed)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    MinHash.bulk([[t.encode() for t in row] for row in toks.to_list()], num_perm=cfg.num_perm)
    theirs = time.perf_counter() - t0
    print(
        f"MinHash signatures of {sample:,} rows, {cfg.num_perm} perms: numpy {ours:.2f} s, datasketch.bulk "
        f"{theirs:.2f} s ({theirs / ours:.1f}x slower; 1M rows: ~{theirs * 1e6 / sample / 60:.1f} min)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows for the wall-time/memory run")
    ap.add_argument("--recall-rows", type=int, default=20_000)
    ap.add_argument("--num-perm", type=int, default=NearDupConfig().num_perm)
    ap.add_argument("--rows-per-band", type=int, default=None)
    ap.add_argument("--skip", choices=["recall", "scale", "datasketch"], action="append", default=[])
    args = ap.parse_args()
    cfg = NearDupConfig(num_perm=args.num_perm, rows_per_band=args.rows_per_band)
    print(f"config: {cfg.model_dump()}", file=sys.stderr)
    if "recall" not in args.skip:
        recall(args.recall_rows, cfg)
    if "datasketch" not in args.skip:
        datasketch_time(cfg)
    if "scale" not in args.skip:
        scale(args.rows, cfg)


if __name__ == "__main__":
    main()
