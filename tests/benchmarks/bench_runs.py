"""Reading a growing run: `RunStore.rows()` after each new part, ours (each part read and typed once, then
cached) against the baseline a reader without the cache pays (every part read again and concatenated
with `diagonal_relaxed`, as before the row contract), on the same run directory.

    .venv/bin/python tests/benchmarks/bench_runs.py [parts] [rows_per_part]

Prints the time of the first full read and of a read after one more part, for both, and their ratios.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from workbench.runs import RunStore


def _rows(part: int, n: int) -> list[dict]:
    stage = ("completion", "judgment", "instruction", "ifd")[part % 4]
    out = []
    for i in range(n):
        row = {"id": f"{part}-{i}", "stage": stage, "text": f"text {part} {i} " * 5, "prompt": "p", "model": "m",
               "model_sha": "s", "params": "{}", "seed": i}  # fmt: skip
        if stage == "judgment":
            row.update(score=1 + i % 5, rubric="h", rubric_version="v", pair_order="AB" if i % 2 else None)
        elif stage == "instruction":
            row.update(decision_order=part * n + i, nearest_score=0.1, example_ids=["a", "b"])
        elif stage == "ifd":
            row.update(ifd=0.5, ppl_conditioned=2.0, ppl_response=4.0, parent_id=f"{part - 1}-{i}")
        out.append(row)
    return out


def baseline_rows(store: RunStore) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in store.parts()], how="diagonal_relaxed")


def main() -> None:
    parts = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(tmp, "bench")
        for p in range(parts):
            store.append(_rows(p, per))
        t0 = time.perf_counter()
        baseline_rows(store)
        base_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = RunStore.open(store.path)
        ours.rows()
        ours_first = time.perf_counter() - t0
        store.append(_rows(parts, per))
        t0 = time.perf_counter()
        baseline_rows(store)
        base_next = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = ours.rows().height
        ours_next = time.perf_counter() - t0
    print(f"run of {parts + 1} parts x {per} rows ({n} rows, 4 stages)")
    print(f"first read:            ours {ours_first * 1e3:8.1f} ms   baseline {base_first * 1e3:8.1f} ms   "
          f"ratio {base_first / ours_first:5.2f}x")  # fmt: skip
    print(f"read after a new part: ours {ours_next * 1e3:8.1f} ms   baseline {base_next * 1e3:8.1f} ms   "
          f"ratio {base_next / ours_next:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
