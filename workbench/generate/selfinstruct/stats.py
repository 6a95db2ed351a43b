"""Small aggregates of self-instruct rows for tables and charts (aggregated in polars, so charts stay
far below Altair's 5,000-row limit)."""

from __future__ import annotations

import polars as pl

__all__ = [
    "acceptance_by_round",
    "candidate_table",
    "instruction_rows",
    "similarity_histogram",
    "status_counts",
]


def instruction_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The instruction-stage rows, in decision order."""
    if rows.height == 0 or "stage" not in rows.columns:
        return pl.DataFrame()
    out = rows.filter(pl.col("stage") == "instruction")
    if "decision_order" in out.columns:
        return out.sort("decision_order", nulls_last=True, maintain_order=True)
    return out


def status_counts(rows: pl.DataFrame) -> dict[str, int]:
    """{"kept": n, "dropped": n, "error": n} over instruction rows."""
    inst = instruction_rows(rows)
    counts = {"kept": 0, "dropped": 0, "error": 0}
    if inst.height:
        for status, n in inst.group_by("status").len().iter_rows():
            counts[str(status)] = int(n)
    return counts


def acceptance_by_round(rows: pl.DataFrame, *, by: str | None = None) -> pl.DataFrame:
    """The acceptance rate per round: the one definition both the Generate and Diversity tabs show.

    rate = kept / (kept + dropped) over the round's self-instruct candidates. `candidates` is
    kept + dropped: every instruction the model proposed that the filters decided on. `errors` (the
    engine returned nothing to decide on) are counted apart, not as rejections, so a failing engine
    never looks like a strict filter. Only instruction-stage rows count when the frame has a `stage`
    column: answers and judge outputs carry a `round` and a `kept` status of their own, and counting
    them as accepted candidates is what made the two tabs disagree. `by` adds a grouping column
    (e.g. a comparison set) before the round.
    """
    inst = rows.filter(pl.col("stage") == "instruction") if "stage" in rows.columns else rows
    keys = [*([by] if by else []), "round"]
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **({by: rows.schema[by]} if by and by in rows.columns else {}),
        "round": pl.Int64,
        "candidates": pl.Int64,
        "kept": pl.Int64,
        "dropped": pl.Int64,
        "errors": pl.Int64,
        "rate": pl.Float64,
    }
    if inst.height == 0 or not {"round", "status"} <= set(inst.columns):
        return pl.DataFrame(schema=schema)
    status = pl.col("status")
    return (
        inst.filter(pl.col("round").is_not_null())
        .with_columns(pl.col("round").cast(pl.Int64))
        .group_by(keys)
        .agg(
            kept=(status == "kept").sum().cast(pl.Int64),
            dropped=(status == "dropped").sum().cast(pl.Int64),
            errors=(status == "error").sum().cast(pl.Int64),
        )
        .with_columns(candidates=pl.col("kept") + pl.col("dropped"))
        .with_columns(
            rate=pl.when(pl.col("candidates") > 0).then(pl.col("kept") / pl.col("candidates")).otherwise(None)
        )
        .select(list(schema))
        .sort(keys)
    )


def similarity_histogram(rows: pl.DataFrame, bins: int = 20) -> pl.DataFrame:
    """Counts of nearest-neighbour ROUGE-L scores in `bins` equal bins over [0, 1], split by status."""
    inst = instruction_rows(rows)
    if inst.height == 0 or "nearest_score" not in inst.columns:
        return pl.DataFrame(
            schema={"bin_start": pl.Float64, "bin_end": pl.Float64, "status": pl.Utf8, "count": pl.UInt32}
        )
    scored = inst.filter(pl.col("nearest_score").is_not_null())
    return (
        scored.with_columns(
            (pl.col("nearest_score") * bins).floor().clip(0, bins - 1).cast(pl.Int64).alias("bin")
        )
        .group_by("bin", "status")
        .len("count")
        .with_columns(
            (pl.col("bin") / bins).alias("bin_start"), ((pl.col("bin") + 1) / bins).alias("bin_end")
        )
        .select("bin_start", "bin_end", "status", pl.col("count").cast(pl.UInt32))
        .sort("bin_start", "status")
    )


def candidate_table(rows: pl.DataFrame, limit: int = 50) -> pl.DataFrame:
    """Newest candidates first, with why each was dropped and its nearest neighbour."""
    inst = instruction_rows(rows)
    if inst.height == 0:
        return pl.DataFrame()
    cols = [
        c for c in ("round", "status", "reason", "text", "nearest_score", "nearest_text") if c in inst.columns
    ]
    return inst.reverse().head(limit).select(cols)
