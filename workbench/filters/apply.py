"""Apply every filter to rows already generated, say which one dropped each row and why, and record it.

`apply_filters` is pure: it takes one stage's rows (instructions or answers) and the thresholds, runs the
cheap filters of this package on them (length and keywords from `text_filters`, the IFD threshold on
scores `ifd.run_ifd` already wrote, ROUGE-L against reference texts from `rouge`, `decontam` against a
benchmark, and `near_dup` last, so its pool is the rows every other filter kept) and returns each row's
decision with the filter, the stable reason string that filter writes, and a one-line detail (the row a
near-duplicate repeats and the similarity, the benchmark item and shared span of a contaminated row).
Rows that were not kept when they were generated are returned unchanged and are not re-filtered.

Rows are never rewritten, so `record_filter_drops` records decisions as rows of their own, like the IFD
step: stage "filter", `parent_id` = the decided row, `status` = the decision on that row (dropped, or kept
again when a later Apply restores it), `reason` = the filter's reason, `text` = the detail and `params`
= the settings. `with_filter_drops` is the derived view: the latest filter row of each row sets its
status and reason (only rows the generator kept), so the Inspector, Export and later steps see the drops
while every generated row stays in the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..runs import RunStore, row_id
from .decontam import Benchmark, DecontamConfig, decontaminate
from .near_dup import NEAR_DUPLICATE, NearDupConfig, near_duplicates
from .rouge import rouge_l_nearest
from .text_filters import DEFAULT_BLACKLIST, TextFilterConfig, blacklisted_word, text_filter_reason

__all__ = [
    "FILTERS",
    "FILTER_STAGE",
    "FilterResult",
    "FilterSettings",
    "apply_filters",
    "filter_decision_rows",
    "record_filter_drops",
    "with_filter_drops",
]

FILTER_STAGE = "filter"
FILTERS = ("length", "keywords", "ifd", "rouge_l", "decontam", "near_dup")
"""The filters in the order they decide: a row is dropped by the first one it fails."""
ROUGE_L_TOO_CLOSE = "rouge_l_to_reference"
_DETAIL_CHARS = 80


class FilterSettings(BaseModel):
    """The thresholds of every filter; None turns a filter off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Literal["instruction", "completion"] = "instruction"
    """Which rows are filtered: the instructions or the answers (completions)."""
    min_words: int | None = Field(4, ge=0)
    """Drop rows with fewer words than this (the self-instruct paper drops 3 words or fewer)."""
    max_words: int | None = Field(150, ge=1)
    """Drop rows with more words than this (the paper's limit for instructions is 150)."""
    blocklist: tuple[str, ...] = DEFAULT_BLACKLIST
    """Whole words or phrases (case-insensitive) whose presence drops a row; empty: keywords off."""
    max_ifd: float | None = Field(None, gt=0)
    """Drop answers whose IFD (scored by the IFD step) is at or above this; rows without a score are kept."""
    rouge_l_max: float | None = Field(None, ge=0, le=1)
    """Drop rows whose ROUGE-L F1 to a reference text (the seed tasks) is above this."""
    near_dup: float | None = Field(0.7, gt=0, le=1)
    """Drop rows reaching this ROUGE-L F1 with an earlier kept row of the same stage (MinHash/LSH + exact)."""
    decontam_n: int = Field(13, ge=1, le=64)
    """Words per n-gram shared with a benchmark item that flags a row (used when a benchmark is given)."""

    @model_validator(mode="after")
    def _limits(self) -> FilterSettings:
        if self.min_words is not None and self.max_words is not None and self.min_words > self.max_words:
            raise ValueError(f"min words ({self.min_words}) must not exceed max words ({self.max_words})")
        return self


@dataclass
class FilterResult:
    """What `apply_filters` decided: the rows with their decisions and the counts per filter."""

    rows: pl.DataFrame
    """The input rows with `status`/`reason` as decided, plus `filter` (which filter dropped the row),
    `detail` (why, in words), `dup_of`/`similarity` (near-dup and ROUGE-L: the row or reference matched)
    and `contaminated_by`/`contamination_span` (decontamination)."""
    counts: pl.DataFrame
    """One row per filter in decision order: `filter`, `setting`, `checked` (rows that reached it) and
    `dropped` (rows it dropped)."""
    settings: FilterSettings
    benchmark: str | None = None
    evaluated: int = 0
    """Rows the filters decided (those the generator had kept)."""
    not_scored: int = 0
    """With an IFD threshold: evaluated rows without an IFD score (kept; run IFD to score them)."""
    skipped: int = 0
    """Rows not re-filtered because they were not kept when generated."""
    decided_ids: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> pl.DataFrame:
        """The rows these filters dropped, in row order."""
        return self.rows.filter(pl.col("filter").is_not_null())

    @property
    def kept(self) -> int:
        return self.evaluated - self.dropped.height


def _short(text: str | None) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= _DETAIL_CHARS else t[: _DETAIL_CHARS - 1] + "…"


def _setting(settings: FilterSettings, name: str, benchmark: Benchmark | None) -> str:
    s = settings
    if name == "length":
        if s.min_words is None and s.max_words is None:
            return "off"
        return f"{s.min_words if s.min_words is not None else 0}–{s.max_words if s.max_words is not None else '∞'} words"
    if name == "keywords":
        return f"{len(s.blocklist)} blocked words" if s.blocklist else "off"
    if name == "ifd":
        return "off" if s.max_ifd is None else f"IFD < {s.max_ifd:g}"
    if name == "rouge_l":
        return "off" if s.rouge_l_max is None else f"ROUGE-L to references ≤ {s.rouge_l_max:g}"
    if name == "decontam":
        return "off" if benchmark is None else f"{s.decontam_n}-grams vs {benchmark.name}"
    return "off" if s.near_dup is None else f"ROUGE-L < {s.near_dup:g}"


def apply_filters(
    rows: pl.DataFrame,
    settings: FilterSettings | None = None,
    *,
    references: pl.DataFrame | Sequence[str] | None = None,
    benchmark: Benchmark | None = None,
) -> FilterResult:
    """Decide every kept row of `rows` (columns `id`, `text`; `ifd` and `status` used when present).

    `references`: texts (or a frame with `id`, `text`) the ROUGE-L filter compares with, e.g. the seed
    tasks. `benchmark`: test items for decontamination (`load_benchmark`); None turns it off. Pure: no
    model call and nothing written (see `record_filter_drops`)."""
    s = settings or FilterSettings()
    for col in ("id", "text"):
        if col not in rows.columns:
            raise ValueError(f"rows need an {col!r} column to be filtered (columns: {rows.columns})")
    if rows["id"].is_duplicated().any():
        raise ValueError("rows repeat ids: filter one stage's rows of one run (each id once)")
    status = (
        rows["status"].fill_null("kept") if "status" in rows.columns else pl.Series(["kept"] * rows.height, dtype=pl.Utf8)
    )
    eligible = (status == "kept").to_list()
    ids = rows["id"].cast(pl.Utf8).to_list()
    texts = rows["text"].cast(pl.Utf8).fill_null("").to_list()
    n = rows.height
    filt: list[str | None] = [None] * n
    reason: list[str | None] = [None] * n
    detail: list[str | None] = [None] * n
    dup_of: list[str | None] = [None] * n
    sim: list[float | None] = [None] * n
    by: list[str | None] = [None] * n
    span: list[str | None] = [None] * n

    def drop(k: int, name: str, why: str, words: str) -> None:
        filt[k], reason[k], detail[k] = name, why, words

    alive = [k for k in range(n) if eligible[k]]
    checked = dict.fromkeys(FILTERS, 0)
    not_scored = 0
    if s.min_words is not None or s.max_words is not None:
        cfg = TextFilterConfig(min_words=s.min_words or 0, max_words=s.max_words or 10**9, blacklist=(),
                               banned_prefixes=(), reject_punctuation_start=False, reject_non_ascii_start=False)  # fmt: skip
        checked["length"] = len(alive)
        for k in alive:
            why = text_filter_reason(texts[k], cfg)
            if why is not None:
                words = len(texts[k].split())
                drop(k, "length", why, f"{words} words" if why != "empty" else "empty text")
        alive = [k for k in alive if filt[k] is None]
    if s.blocklist:
        checked["keywords"] = len(alive)
        for k in alive:
            word = blacklisted_word(texts[k], s.blocklist)
            if word is not None:
                drop(k, "keywords", f"blacklist:{word}", f"contains the blocked word {word!r}")
        alive = [k for k in alive if filt[k] is None]
    if s.max_ifd is not None:
        checked["ifd"] = len(alive)
        scores = rows["ifd"].to_list() if "ifd" in rows.columns else [None] * n
        for k in alive:
            v = scores[k]
            if v is None or v != v:  # no score yet (or NaN): the threshold cannot judge it, so it stays
                not_scored += 1
            elif v >= s.max_ifd:
                drop(
                    k,
                    "ifd",
                    f"ifd >= {s.max_ifd:g}",
                    f"IFD {v:.3g}: the instruction does not help predict it",
                )
        alive = [k for k in alive if filt[k] is None]
    if s.rouge_l_max is not None and alive:
        ref_ids, ref_texts = _references(references)
        checked["rouge_l"] = len(alive)
        if ref_texts:
            score, idx = rouge_l_nearest([texts[k] for k in alive], ref_texts)
            for k, sc, j in zip(alive, score.tolist(), idx.tolist(), strict=True):
                if j >= 0 and sc > s.rouge_l_max:
                    drop(k, "rouge_l", ROUGE_L_TOO_CLOSE,
                         f"ROUGE-L {sc:.2f} with reference {ref_ids[j]}: {_short(ref_texts[j])!r}")  # fmt: skip
                    dup_of[k], sim[k] = ref_ids[j], float(sc)
        alive = [k for k in alive if filt[k] is None]
    if benchmark is not None and alive:
        checked["decontam"] = len(alive)
        frame = pl.DataFrame({"text": [texts[k] for k in alive]}, schema={"text": pl.Utf8})
        flagged = decontaminate(frame, benchmark, DecontamConfig(n=s.decontam_n))
        for k, item, sp, name, st in zip(alive, *(flagged[c].to_list() for c in (
                "contaminated_by", "contamination_span", "contamination_benchmark", "status")), strict=True):  # fmt: skip
            if st == "dropped":
                drop(k, "decontam", f"contamination:{name}", f"shares {_short(sp)!r} with {name} item {item}")
                by[k], span[k] = item, sp
        alive = [k for k in alive if filt[k] is None]
    if s.near_dup is not None and alive:
        checked["near_dup"] = len(alive)
        frame = pl.DataFrame({"id": [ids[k] for k in alive], "text": [texts[k] for k in alive]},
                             schema={"id": pl.Utf8, "text": pl.Utf8})  # fmt: skip
        marked = near_duplicates(frame, NearDupConfig(threshold=s.near_dup))
        text_of = dict(zip(ids, texts, strict=True))
        for k, d, v in zip(
            alive, marked["dup_of"].to_list(), marked["dup_similarity"].to_list(), strict=True
        ):
            if d is not None:
                drop(k, "near_dup", NEAR_DUPLICATE, f"ROUGE-L {v:.2f} with row {d}: {_short(text_of[d])!r}")
                dup_of[k], sim[k] = d, float(v)
    is_drop = pl.Series([f is not None for f in filt], dtype=pl.Boolean)  # typed: a stage with no rows yet
    old_reason = rows["reason"] if "reason" in rows.columns else pl.Series([None] * n, dtype=pl.Utf8)
    out = rows.with_columns(
        pl.when(is_drop).then(pl.lit("dropped")).otherwise(status).alias("status"),
        pl.when(is_drop).then(pl.Series(reason, dtype=pl.Utf8)).otherwise(old_reason).alias("reason"),
        pl.Series("filter", filt, dtype=pl.Utf8),
        pl.Series("detail", detail, dtype=pl.Utf8),
        pl.Series("dup_of", dup_of, dtype=pl.Utf8),
        pl.Series("similarity", sim, dtype=pl.Float64),
        pl.Series("contaminated_by", by, dtype=pl.Utf8),
        pl.Series("contamination_span", span, dtype=pl.Utf8),
    )
    dropped_by = {name: filt.count(name) for name in FILTERS}
    counts = pl.DataFrame(
        {"filter": list(FILTERS), "setting": [_setting(s, f, benchmark) for f in FILTERS],
         "checked": [checked[f] for f in FILTERS], "dropped": [dropped_by[f] for f in FILTERS]},
        schema={"filter": pl.Utf8, "setting": pl.Utf8, "checked": pl.Int64, "dropped": pl.Int64},
    )  # fmt: skip
    n_elig = sum(eligible)
    return FilterResult(rows=out, counts=counts, settings=s, benchmark=benchmark.name if benchmark else None,
                        evaluated=n_elig, not_scored=not_scored, skipped=n - n_elig,
                        decided_ids=[ids[k] for k in range(n) if eligible[k]])  # fmt: skip


def _references(refs: pl.DataFrame | Sequence[str] | None) -> tuple[list[str], list[str]]:
    if refs is None:
        return [], []
    if isinstance(refs, pl.DataFrame):
        if "text" not in refs.columns:
            raise ValueError(f"reference frame needs a 'text' column (columns: {refs.columns})")
        texts = refs["text"].cast(pl.Utf8).fill_null("").to_list()
        ids = (
            refs["id"].cast(pl.Utf8).to_list()
            if "id" in refs.columns
            else [str(k) for k in range(len(texts))]
        )
        return ids, texts
    texts = [str(t) for t in refs]
    return [str(k) for k in range(len(texts))], texts


# -- recording ------------------------------------------------------------------------------------------
def _latest_decisions(rows: pl.DataFrame) -> pl.DataFrame:
    """parent id -> (status, reason, text, how many filter rows it has) of its latest filter row."""
    if rows.height == 0 or "stage" not in rows.columns:
        schema = {"parent_id": pl.Utf8, "status": pl.Utf8, "reason": pl.Utf8, "text": pl.Utf8, "n": pl.UInt32}
        return pl.DataFrame(schema=schema)
    fr = rows.filter((pl.col("stage") == FILTER_STAGE) & pl.col("parent_id").is_not_null())
    text = pl.col("text").last() if "text" in fr.columns else pl.lit(None, dtype=pl.Utf8).alias("text")
    return fr.group_by("parent_id", maintain_order=True).agg(
        pl.col("status").last(), pl.col("reason").last(), text, pl.len().alias("n")
    )


def filter_decision_rows(result: FilterResult, run_rows: pl.DataFrame) -> list[dict[str, object]]:
    """The filter rows that make the run's recorded decisions equal `result`: a drop row for each row
    it drops whose latest recorded decision differs, a kept row for each row an earlier Apply dropped
    that it keeps. Nothing for rows whose recorded decision already matches (applying twice adds none)."""
    latest = {r["parent_id"]: r for r in _latest_decisions(run_rows).iter_rows(named=True)}
    params = json.dumps({"settings": result.settings.model_dump(mode="json"), "benchmark": result.benchmark},
                        sort_keys=True)  # fmt: skip
    decided = set(result.decided_ids)
    out: list[dict[str, object]] = []
    for r in result.rows.iter_rows(named=True):
        if r["id"] not in decided:
            continue
        cur = latest.get(r["id"])
        if r["filter"] is not None:
            if cur is not None and (cur["status"], cur["reason"], cur["text"]) == (
                "dropped",
                r["reason"],
                r["detail"],
            ):
                continue
            status, why, text = "dropped", r["reason"], r["detail"]
        else:
            if cur is None or cur["status"] != "dropped":
                continue
            status, why, text = "kept", None, "kept: the filters as applied now keep this row"
        k = 0 if cur is None else int(cur["n"])  # the k-th decision on this row: ids never repeat
        dropped = status == "dropped"  # typed columns say what matched (`text` says it in words)
        out.append({
            "id": row_id(FILTER_STAGE, r["id"], f"{k}\x1f{status}\x1f{why}\x1f{text}", params),
            "stage": FILTER_STAGE, "parent_id": r["id"], "round": r.get("round"), "text": text,
            "status": status, "reason": why, "params": params,
            "filter_name": r["filter"] if dropped else None,
            "matched_id": (r["dup_of"] or r["contaminated_by"]) if dropped else None,
            "matched_score": r["similarity"] if dropped else None,
            "matched_span": r["contamination_span"] if dropped else None,
        })  # fmt: skip
    return out


def record_filter_drops(store: RunStore, result: FilterResult) -> int:
    """Append the filter rows of `filter_decision_rows` to the run; returns how many were written.
    No row is rewritten or deleted: the drops are rows of their own that `with_filter_drops` reads."""
    new = filter_decision_rows(result, store.rows())
    return store.append(new) if new else 0


def with_filter_drops(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` where each row the generator kept takes the status and reason of its latest filter row
    (an Apply of the Filters view). Rows without filter rows, and rows the generator already dropped,
    are unchanged; a frame without filter rows comes back as it is, so this is cheap on any run."""
    if frame.height == 0 or not {"stage", "parent_id", "status", "reason", "id"} <= set(frame.columns):
        return frame
    latest = _latest_decisions(frame)
    if latest.height == 0:
        return frame
    dec = latest.select(
        pl.col("parent_id").alias("id"), pl.col("status").alias("__fs"), pl.col("reason").alias("__fr")
    )
    joined = frame.join(dec, on="id", how="left", maintain_order="left")
    kept = pl.col("status").fill_null("kept") == "kept"  # a null status is kept, as in every filter here
    hit = (pl.col("stage") != FILTER_STAGE) & pl.col("__fs").is_not_null() & kept
    return joined.with_columns(
        pl.when(hit).then(pl.col("__fs")).otherwise(pl.col("status")).alias("status"),
        pl.when(hit).then(pl.col("__fr")).otherwise(pl.col("reason")).alias("reason"),
    ).drop("__fs", "__fr")
