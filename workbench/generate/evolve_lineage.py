"""Lineage views of an evolution run: every evolved prompt with the chain of prompts and operators that
made it, and the drops with their reasons, as polars frames (what the Evolve panel shows).

`evolve.LineageIndex` follows one row's parent links; this module reads a whole run's evolution rows at
once. Only evolution rows are indexed, so a chain's root is the prompt the first round rewrote, taken from
the child's recorded `parent_text` (a seed or instruction with its input), never some other stage's row.
"""

from __future__ import annotations

import polars as pl

from .evolve import LineageIndex

__all__ = ["LINEAGE_SCHEMA", "drop_reasons", "evolution_rows", "lineage_frame"]

LINEAGE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id": pl.Utf8,
    "root_id": pl.Utf8,
    "parent_id": pl.Utf8,
    "generation": pl.Int64,
    "operator": pl.Utf8,
    "status": pl.Utf8,
    "reason": pl.Utf8,
    "text": pl.Utf8,
    "chain_texts": pl.List(pl.Utf8),
    "chain_operators": pl.List(pl.Utf8),
}
"""Columns of `lineage_frame`: the row's own fields, then its ancestors root first (`chain_texts`) and
the operator that made each step after the root (`chain_operators`, the row's own operator last)."""


def evolution_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The run's evolution rows, each id once (a resumed run may list a row twice), in run order."""
    if rows.height == 0 or "stage" not in rows.columns:
        return pl.DataFrame(schema={"id": pl.Utf8, "stage": pl.Utf8})
    return rows.filter(pl.col("stage") == "evolution").unique("id", keep="first", maintain_order=True)


def lineage_frame(rows: pl.DataFrame, *, status: str | None = None) -> pl.DataFrame:
    """One row per evolution row of `rows` (a run's rows, any stages), ordered by generation then run
    order: its text, status and reason, and the prompts it descends from with the operators between
    them. `status` keeps only rows of that status ('kept', 'dropped', 'error')."""
    evo = evolution_rows(rows)
    if evo.height == 0:
        return pl.DataFrame(schema=LINEAGE_SCHEMA)
    index = LineageIndex(evo)
    out: list[dict[str, object]] = []
    for r in evo.iter_rows(named=True):
        if status is not None and r.get("status") != status:
            continue
        chain = index.chain(r["id"])
        out.append({
            "id": r["id"], "root_id": r.get("root_id"), "parent_id": r.get("parent_id"),
            "generation": r.get("generation"), "operator": r.get("operator"), "status": r.get("status"),
            "reason": r.get("reason"), "text": r.get("text"),
            "chain_texts": [c["text"] for c in chain[:-1]],
            "chain_operators": [c["operator"] for c in chain if c["operator"] is not None],
        })  # fmt: skip
    frame = pl.DataFrame(out, schema=LINEAGE_SCHEMA)
    return frame.with_row_index("_order").sort("generation", "_order").drop("_order")


def drop_reasons(rows: pl.DataFrame) -> pl.DataFrame:
    """How many evolutions the eliminator dropped (or the engine failed) for each reason, most first
    (columns status, reason, count)."""
    evo = evolution_rows(rows)
    schema = {"status": pl.Utf8, "reason": pl.Utf8, "count": pl.UInt32}
    if evo.height == 0 or "status" not in evo.columns:
        return pl.DataFrame(schema=schema)
    failed = evo.filter(pl.col("status") != "kept")
    if failed.height == 0:
        return pl.DataFrame(schema=schema)
    return (
        failed.with_columns(pl.col("reason").fill_null("(no reason recorded)"))
        .group_by("status", "reason")
        .agg(pl.len().alias("count"))
        .sort(["count", "reason"], descending=[True, False])
        .select(pl.col("status"), pl.col("reason"), pl.col("count").cast(pl.UInt32))
    )
