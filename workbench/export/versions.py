"""Which rubric version an export uses: one version per rubric, never a silent mix.

A judge lab edits a rubric and judges again under the same name, so a run holds several versions of
it. Scores of different versions are different measurements; an export picks one: the version asked
for (`rubric_version`), else the latest — the version of the most recently written judgment of that
rubric. The choice is stated in the dataset card.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

__all__ = ["RubricChoice", "choose_rubric_versions", "rubric_versions"]

_VERSIONS_SCHEMA = {
    "rubric": pl.Utf8,
    "rubric_version": pl.Utf8,
    "parent_version": pl.Utf8,
    "judgments": pl.UInt32,
    "absolute": pl.UInt32,
    "pairwise": pl.UInt32,
    "latest": pl.Boolean,
}


def _judgments(rows: pl.DataFrame) -> pl.DataFrame:
    if rows.height == 0 or "rubric_version" not in rows.columns:
        return pl.DataFrame(schema={"rubric": pl.Utf8, "rubric_version": pl.Utf8, "judge_kind": pl.Utf8})
    out = rows.filter((pl.col("stage") == "judgment") & pl.col("rubric_version").is_not_null())
    if "judge_kind" not in out.columns:
        out = out.with_columns(pl.lit("absolute").alias("judge_kind"))
    return out


def rubric_versions(rows: pl.DataFrame, recorded: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """One row per (rubric, version) judged in `rows`: its parent version (from the rubric texts the run
    recorded, `store.manifest["rubrics"]`), how many judgments it has (absolute, pairwise), and whether
    it is the latest of its rubric. Rubrics by name, versions oldest first."""
    j = _judgments(rows).with_row_index("__pos")
    if j.height == 0:
        return pl.DataFrame(schema=_VERSIONS_SCHEMA)
    recorded = recorded or {}
    table = (
        j.group_by("rubric", "rubric_version")
        .agg(
            pl.len().alias("judgments"),
            (pl.col("judge_kind") == "absolute").sum().alias("absolute"),
            (pl.col("judge_kind") == "pairwise").sum().alias("pairwise"),
            pl.col("__pos").min().alias("__first"),
            pl.col("__pos").max().alias("__last"),
        )
        .with_columns(
            (pl.col("__last") == pl.col("__last").max().over("rubric")).alias("latest"),
            pl.col("rubric_version")
            .replace_strict(
                {v: (r or {}).get("parent_version") for v, r in recorded.items()},
                default=None,
                return_dtype=pl.Utf8,
            )
            .alias("parent_version"),
        )
        .sort("rubric", "__first")
    )
    return table.select(list(_VERSIONS_SCHEMA)).cast(_VERSIONS_SCHEMA)  # type: ignore[arg-type]


@dataclass
class RubricChoice:
    """The rubric versions an export uses, and why (for the dataset card)."""

    versions: dict[str, str] = field(default_factory=dict)
    """rubric name → the version used."""
    notes: list[str] = field(default_factory=list)
    """One sentence per rubric, e.g. "rubric `helpful` version `abc…` (the latest of 2 versions)"."""

    def apply(self, rows: pl.DataFrame) -> pl.DataFrame:
        """`rows` without the judgments of versions not chosen (other rows untouched)."""
        if not self.versions or "rubric_version" not in rows.columns:
            return rows
        chosen = pl.lit(False)
        for name, version in self.versions.items():
            chosen = chosen | ((pl.col("rubric") == name) & (pl.col("rubric_version") == version))
        return rows.filter((pl.col("stage") != "judgment") | pl.col("rubric_version").is_null() | chosen)


def choose_rubric_versions(
    rows: pl.DataFrame, *, rubric: str | None = None, rubric_version: str | None = None
) -> RubricChoice:
    """The version of each rubric to use: `rubric_version` (which also picks its rubric), else the latest
    version of `rubric`, else the latest version of every rubric. Unknown names are errors that list
    what the run has."""
    table = rubric_versions(rows)
    choice = RubricChoice()
    if table.height == 0:
        if rubric_version is not None:
            raise ValueError(f"rubric_version {rubric_version!r} was asked for, but the run has no judgments")
        return choice
    known = {(r["rubric"], r["rubric_version"]): r for r in table.iter_rows(named=True)}
    listing = ", ".join(f"{n} {v} ({r['judgments']} judgments)" for (n, v), r in known.items())
    if rubric_version is not None:
        match = [k for k in known if k[1] == rubric_version or k[1].startswith(rubric_version)]
        if rubric is not None:
            match = [k for k in match if k[0] == rubric]
        if len(match) != 1:
            what = "matches no" if not match else "matches several"
            raise ValueError(
                f"rubric_version {rubric_version!r} {what} judged version in this run: {listing}"
            )
        name, version = match[0]
        choice.versions[name] = version
        n = int(table.filter(pl.col("rubric") == name).height)
        latest = " (the latest)" if known[match[0]]["latest"] else " (not the latest)"
        choice.notes.append(
            f"rubric `{name}` version `{version}`{latest}, as asked, of {n} version(s) judged"
        )
        return choice
    names = table["rubric"].unique(maintain_order=True).to_list()
    if rubric is not None:
        if rubric not in names:
            raise ValueError(f"the run has no judgments from rubric {rubric!r}; it has: {listing}")
        names = [rubric]
    for name in names:
        versions = table.filter(pl.col("rubric") == name)
        latest = versions.filter(pl.col("latest"))["rubric_version"][0]
        choice.versions[name] = latest
        others = [v for v in versions["rubric_version"].to_list() if v != latest]
        tail = f"; not used: {', '.join(f'`{v}`' for v in others)}" if others else ""
        choice.notes.append(
            f"rubric `{name}` version `{latest}` (the latest of {versions.height} version(s) judged{tail})"
        )
    return choice
