"""Inspector paging cost at 1k, 10k and 100k rows: ours (cards grouped and ordered once, pages sliced)
against a baseline that filters, groups and sorts the whole run for every page.

    .venv/bin/python tests/benchmarks/bench_inspector.py

Prints per-page Python time (a jump to a random page, cards built, traits set) for each size, the
ratio to the baseline, and how the cost grows from 1k to 100k rows (flat is the goal: < 50 ms).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from widgets.inspector import InspectorPanel, build_card
from workbench.engine import FakeBackend
from workbench.runs import normalise_rows
from workbench.runs.query import RunQuery
from workbench.session import Session

K = 4  # completions per prompt
PAGE = 10
JUMPS = 40
WORDS = np.array(
    [
        "the",
        "a",
        "rain",
        "sea",
        "model",
        "answer",
        "token",
        "poem",
        "data",
        "code",
        "list",
        "why",
        "how",
        "three",
        "short",
        "long",
    ]
)


def synthetic_run(n_rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(n_rows)
    n_prompts = n_rows // (K + 1)
    prompts = [f"p{i}" for i in range(n_prompts)]
    texts = [" ".join(rng.choice(WORDS, size=int(n))) for n in rng.integers(5, 80, size=n_prompts * (K + 1))]
    seeds = normalise_rows(
        {"id": p, "stage": "evolution", "round": 1, "text": texts[i], "operator": "deepen", "generation": 1}
        for i, p in enumerate(prompts)
    )
    comps = normalise_rows(
        {
            "id": f"{p}-c{j}", "stage": "completion", "parent_id": p, "round": 1,
            "text": texts[n_prompts + i * K + j], "model": "bench", "sample": j, "seed": j,
            "params": '{"temperature": 0.8}', "completion_tokens": 40,
        }
        for i, p in enumerate(prompts)
        for j in range(K)
    )  # fmt: skip
    return pl.concat([seeds, comps], how="diagonal_relaxed")


def baseline_page(frame: pl.DataFrame, page: int, sort_by: str) -> list[dict]:
    """What a naive viewer does per page: filter, group and order the whole run, then take one page."""
    rows = RunQuery().apply(frame)
    card = pl.when(pl.col("stage") == "completion").then(pl.col("parent_id")).otherwise(pl.col("id"))
    rows = rows.with_columns(card.alias("_card"))
    if sort_by == "length":
        order = (
            rows.group_by("_card").agg(pl.col("text").str.len_chars().mean().alias("_k")).sort("_k", "_card")
        )
    else:
        order = rows.group_by("_card", maintain_order=True).len()
    keys = order["_card"].slice(page * PAGE, PAGE).to_list()
    part = rows.filter(pl.col("_card").is_in(keys))
    return [build_card(k, i, part.filter(pl.col("_card") == k).to_dicts()) for i, k in enumerate(keys)]


def measure(n_rows: int, sort_by: str) -> dict[str, float]:
    frame = synthetic_run(n_rows)
    with tempfile.TemporaryDirectory() as tmp:
        session = Session(FakeBackend(), runs_root=tmp, run="bench")
        session.store.append(frame)
        t0 = time.perf_counter()
        panel = InspectorPanel(session, page_size=PAGE)
        panel.sort.value = sort_by
        open_s = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        pages = rng.integers(1, panel.view.page_count, size=JUMPS)
        ours = []
        for p in pages:
            t = time.perf_counter()
            panel.view.page = int(p)
            ours.append(time.perf_counter() - t)
        assert len(panel.view.cards) == PAGE
        base = []
        for p in pages[:10]:
            t = time.perf_counter()
            baseline_page(frame, int(p), sort_by)
            base.append(time.perf_counter() - t)
    return {
        "open": open_s,
        "ours": statistics.median(ours),
        "worst": max(ours),
        "base": statistics.median(base),
    }


def main() -> None:
    sizes = (1_000, 10_000, 100_000)
    for sort_by in ("none", "length"):
        print(f"\nsort_by={sort_by!r}  page={PAGE} cards x {K} completions")
        print(
            f"{'rows':>8} {'open/filter':>12} {'ours/page':>10} {'worst':>8} {'baseline':>10} {'speedup':>8}"
        )
        results = {}
        for n in sizes:
            r = measure(n, sort_by)
            results[n] = r
            print(
                f"{n:>8} {r['open'] * 1e3:>10.1f}ms {r['ours'] * 1e3:>8.2f}ms {r['worst'] * 1e3:>6.2f}ms "
                f"{r['base'] * 1e3:>8.1f}ms {r['base'] / r['ours']:>7.0f}x"
            )
        growth = results[sizes[-1]]["ours"] / results[sizes[0]]["ours"]
        verdict = "OK" if results[sizes[-1]]["worst"] < 0.05 else "OVER 50 ms"
        print(f"per-page cost 100k/1k: {growth:.2f}x (flat is 1x) · worst page at 100k {verdict}")


if __name__ == "__main__":
    main()
