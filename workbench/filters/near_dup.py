"""Near-duplicate detection at scale: MinHash/LSH proposes pairs, the exact ROUGE-L of `rouge` decides.

The self-instruct filter compares every candidate with every kept instruction: exact, but quadratic, so it
stops being usable long before a million rows. Here LSH proposes candidate pairs and the decision is still
`rouge_score`'s ROUGE-L F-measure (the same integer-LCS and float formula as `rouge.py`), computed only on
those pairs. The order semantics are the self-instruct filter's: rows are decided in frame order, and a row
is a duplicate when it reaches the threshold with an earlier *kept* row or with any reference row (a
user's earlier run, any dataset). Every drop names the row it duplicates (`dup_of`, `dup_set`) and the
similarity (`dup_similarity`); dropped rows stay in the frame with `status="dropped"` and a `reason`.

Why MinHash over token multisets: a common subsequence is a common sub-multiset, so the multiset
intersection is at least the LCS and the multiset Jaccard J >= F / (2 - F) for ROUGE-L F (0.538 at 0.7).
Shingles are (token, occurrence) pairs to get multisets, hashed with one vectorised pass per permutation
(numpy multiply-add mod 2**64): 5.4x faster than `datasketch`'s `MinHash.bulk` on 20k instructions, tokenising
included (tests/benchmarks/bench_near_dup.py), so datasketch is not used.

Against an earlier run: `near_duplicates(new, references={"run-1": RunStore.open(path).rows().filter(
pl.col("stage") == "instruction")})` (its dropped rows are ignored, as they are not in its pool).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import process
from rapidfuzz.distance import Indel

from ._mix import mix64
from .rouge import rouge_l_fmeasure, rouge_tokenize

__all__ = ["NEAR_DUPLICATE", "NearDupConfig", "NearDupStats", "near_duplicates"]

NEAR_DUPLICATE = "near_duplicate"  # same reason string the self-instruct filter writes
SELF = "self"  # `dup_set` of a duplicate found within the frame itself

References = pl.DataFrame | Sequence[str] | Mapping[str, pl.DataFrame | Sequence[str]]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_HASH_CHUNK = 1 << 16  # shingles per MinHash chunk: its working arrays stay in cache (measured fastest)
_PAIR_CHUNK = 1 << 21  # candidate pairs verified per rapidfuzz call: bounds memory on huge buckets


class NearDupConfig(BaseModel):
    """How near duplicates are found (LSH) and decided (exact ROUGE-L)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.7, gt=0.0, le=1.0)
    """ROUGE-L F-measure at which a row counts as a duplicate of an earlier kept row or a reference row."""
    compare: Literal[">=", ">"] = ">="
    """'>=' drops at the threshold itself; '>' is the self-instruct paper's strict rule (drop above 0.7)."""
    num_perm: int = Field(128, ge=8, le=2048)
    """MinHash permutations. More give LSH bands with fewer missed pairs and fewer useless candidates."""
    rows_per_band: int | None = Field(None, ge=1, le=64)
    """Permutations per LSH band (r); bands = num_perm // r. None: the largest r whose bands catch a pair at
    the threshold's worst-case Jaccard F/(2-F) with probability >= `bound_recall` (r=4 at the defaults)."""
    bound_recall: float = Field(0.9, gt=0.0, lt=1.0)
    """Chance that a pair exactly at the worst-case Jaccard shares a band, for the automatic r. Pairs that
    reach the threshold mostly lie well above that bound: 0.9 found 99.8% of the exact drops on 20k
    benchmark instructions, while 0.99 (r=3) verified 5x more candidate pairs for 100%."""
    seed: int = 1
    """Seed of the MinHash permutations (results are deterministic for a given seed)."""
    text_column: str = "text"
    """Column holding the text compared (in the frame and in reference frames)."""
    id_column: str = "id"
    """Column holding the row id that `dup_of` names."""
    workers: int = -1
    """Threads for the exact ROUGE-L verification (rapidfuzz; -1: all cores)."""

    def bands_and_rows(self) -> tuple[int, int]:
        """(bands, rows per band) this config uses."""
        if self.rows_per_band is not None:
            if self.rows_per_band > self.num_perm:
                raise ValueError(f"rows_per_band ({self.rows_per_band}) exceeds num_perm ({self.num_perm})")
            return self.num_perm // self.rows_per_band, self.rows_per_band
        jac = self.threshold / (2.0 - self.threshold)
        best = 1
        for r in range(1, self.num_perm + 1):
            b = self.num_perm // r
            if 1.0 - (1.0 - jac**r) ** b >= self.bound_recall:
                best = r
        return self.num_perm // best, best


@dataclass
class NearDupStats:
    """What one call did, to see where the time went and how much work LSH saved."""

    rows: int = 0
    references: int = 0
    exact_copies: int = 0
    candidate_pairs: int = 0
    pairs_at_threshold: int = 0
    dropped: int = 0
    bands: int = 0
    rows_per_band: int = 0


# -- tokens, ids and encodings ------------------------------------------------------------------------
def _tokens(texts: pl.Series) -> pl.Series:
    """rouge_tokenize of every text, vectorised. Polars' lower-casing is only trusted on ASCII text; the
    rest goes through Python's str.lower so tokens stay exactly those of `rouge_score`."""
    frame = pl.DataFrame({"t": texts.fill_null("")}).with_row_index("i")
    ascii_mask = ~frame["t"].str.contains(r"[^\x00-\x7F]")
    fast = frame.filter(ascii_mask).select(
        "i", pl.col("t").str.to_lowercase().str.extract_all(r"[a-z0-9]+").alias("tok")
    )
    slow = frame.filter(~ascii_mask)
    if slow.height == 0:
        return fast["tok"]
    slow_tok = pl.Series("tok", [rouge_tokenize(t) for t in slow["t"].to_list()], dtype=pl.List(pl.Utf8))
    return pl.concat([fast, pl.DataFrame({"i": slow["i"], "tok": slow_tok})]).sort("i")["tok"]


def _dense_ids(tokens: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(token id of every token, flattened; tokens per text). Ids are dense from 0 within this call."""
    lens = tokens.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = tokens.explode().drop_nulls()
    if flat.len() == 0:
        return np.zeros(0, dtype=np.int64), lens
    phys = flat.cast(pl.Categorical).to_physical().to_numpy()
    _, ids = np.unique(phys, return_inverse=True)  # categorical ids may be global: make them dense
    return ids.astype(np.int64), lens


def _encode(ids: np.ndarray, offsets: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Each chosen text as a str of one code point per token, what rapidfuzz compares natively (as in
    rouge.py); the surrogate block is skipped because a str cannot hold those code points."""
    if ids.size and ids.max() + 1 >= 0x10FFFF - 0x800:
        raise ValueError("more than a million distinct tokens: split the data into smaller calls")
    cp = (ids + 1).astype(np.uint32)
    cp[cp >= 0xD800] += 0x800
    big = cp.tobytes().decode("utf-32-le")
    out = np.empty(which.size, dtype=object)
    for k, i in enumerate(which.tolist()):
        out[k] = big[offsets[i] : offsets[i + 1]]
    return out


def _shingles(ids: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """(token, occurrence) hashes: the k-th 'the' of a text is its own shingle, so MinHash sees multisets."""
    rows = np.repeat(np.arange(lens.size, dtype=np.uint64), lens)
    order = np.argsort((rows << np.uint64(32)) | ids.astype(np.uint64), kind="stable")
    key = ids[order]
    row_sorted = rows[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | (row_sorted[1:] != row_sorted[:-1])
    pos = np.arange(order.size)
    occ_sorted = pos - np.maximum.accumulate(np.where(new, pos, 0))
    occ = np.empty_like(occ_sorted)
    occ[order] = occ_sorted
    return mix64(ids.astype(np.uint64) | (occ.astype(np.uint64) << np.uint64(40)))


def _minhash(shingles: np.ndarray, lens: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """(num_perm, texts) uint32 signatures: per permutation, the min of (a*x + b) mod 2**64 over a text's
    shingles, top 32 bits. Texts with no token get the max value (they are excluded later anyway)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
    sig = np.full((num_perm, lens.size), 0xFFFFFFFF, dtype=np.uint32)
    nz = np.flatnonzero(lens > 0)
    if nz.size == 0:
        return sig
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))[nz]
    buf = np.empty(_HASH_CHUNK + int(lens.max()), dtype=np.uint64)
    i = 0
    with np.errstate(over="ignore"):
        while i < nz.size:
            # whole texts per chunk so reduceat's segments do not straddle chunks
            j = max(i + 1, int(np.searchsorted(starts, starts[i] + _HASH_CHUNK, side="right")) - 1)
            j = min(j, nz.size)
            lo = int(starts[i])
            hi = int(starts[j]) if j < nz.size else shingles.size
            x, w, seg = shingles[lo:hi], buf[: hi - lo], starts[i:j] - lo
            cols = nz[i:j]
            for k in range(num_perm):
                np.multiply(x, a[k], out=w)
                np.add(w, b[k], out=w)
                sig[k, cols] = (np.minimum.reduceat(w, seg) >> np.uint64(32)).astype(np.uint32)
            i = j
    return sig


# -- candidates and the exact decision ----------------------------------------------------------------
def _band_pairs(sig: np.ndarray, active: np.ndarray, bands: int, r: int, n_ref: int) -> Iterator[np.ndarray]:
    """Chunks of (later, earlier) index pairs sharing a band bucket; never two reference rows."""
    rng = np.random.default_rng(0x5EED)
    coef = rng.integers(1, 2**63, r, dtype=np.uint64) | np.uint64(1)
    for band in range(bands):
        block = sig[band * r : (band + 1) * r][:, active].astype(np.uint64)
        with np.errstate(over="ignore"):
            key = mix64((block * coef[:, None]).sum(axis=0, dtype=np.uint64))
        order = np.argsort(key, kind="stable")  # stable: within a bucket, members stay in row order
        k_sorted = key[order]
        new = np.ones(order.size, dtype=bool)
        new[1:] = k_sorted[1:] != k_sorted[:-1]
        pos = np.arange(order.size)
        run_start = np.maximum.accumulate(np.where(new, pos, 0))
        earlier = pos - run_start  # members before this one in its bucket
        members = active[order]
        earlier[members < n_ref] = 0  # rows before a reference row in a bucket are references too: skip
        take = np.flatnonzero(earlier)
        cum = np.cumsum(earlier[take])
        lo = 0
        while lo < take.size:
            # cut the band's pairs into chunks of about _PAIR_CHUNK so one huge bucket cannot exhaust memory
            hi = max(
                lo + 1, int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + _PAIR_CHUNK, side="right"))
            )
            t = take[lo:hi]
            cnt = earlier[t]
            rep = np.repeat(t, cnt)
            step = np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            yield np.stack([members[rep], members[run_start[rep] + step]])
            lo = hi


def _passes(score: np.ndarray, config: NearDupConfig) -> np.ndarray:
    return score >= config.threshold if config.compare == ">=" else score > config.threshold


def _above_threshold(
    pairs: Iterator[np.ndarray],
    seqs: np.ndarray,
    lens: np.ndarray,
    config: NearDupConfig,
    stats: NearDupStats,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ROUGE-L on candidate pairs; the (later, earlier, score) triples reaching the threshold."""
    found_i, found_j, found_s = [], [], []
    for chunk in pairs:
        i, j = chunk
        stats.candidate_pairs += i.size
        if i.size == 0:
            continue
        dist = process.cpdist(list(seqs[i]), list(seqs[j]), scorer=Indel.distance, dtype=np.int64,
                              workers=config.workers)  # fmt: skip
        lensum = lens[i] + lens[j]
        # target = the later row, prediction = the earlier one: the pool order of the self-instruct filter
        score = rouge_l_fmeasure((lensum - dist) // 2, lens[i], lens[j])
        ok = _passes(score, config)
        found_i.append(i[ok])
        found_j.append(j[ok])
        found_s.append(score[ok])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    i, j, s = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)
    _, first = np.unique(i * (lens.size + 1) + j, return_index=True)  # a pair may share several bands
    return i[first], j[first], s[first]


def _decide(n: int, n_ref: int, i: np.ndarray, j: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sequential decision in row order: (index of the kept row each row duplicates or -1, similarity).
    Among kept matches the highest similarity wins, ties go to the earliest (references come first)."""
    dup = np.full(n, -1, dtype=np.int64)
    sim = np.full(n, np.nan)
    kept = np.ones(n, dtype=bool)
    if i.size == 0:
        return dup, sim
    order = np.lexsort((j, -s, i))
    i, j, s = i[order], j[order], s[order]
    bounds = np.flatnonzero(np.r_[True, i[1:] != i[:-1], True])
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        row = int(i[lo])
        for k in range(lo, hi):
            if kept[j[k]]:
                dup[row], sim[row], kept[row] = j[k], s[k], False
                break
    return dup, sim


# -- the API --------------------------------------------------------------------------------------------
def _reference_frames(references: References | None, cfg: NearDupConfig) -> list[tuple[str, pl.DataFrame]]:
    if references is None:
        return []
    named = references if isinstance(references, Mapping) else {"reference": references}
    out = []
    for name, ref in named.items():
        if not isinstance(ref, pl.DataFrame):
            texts = list(ref)
            if any(not isinstance(t, str) for t in texts):
                raise ValueError(f"reference {name!r}: pass a polars frame or a list of str")
            ref = pl.DataFrame({cfg.id_column: [str(k) for k in range(len(texts))], cfg.text_column: texts},
                               schema={cfg.id_column: pl.Utf8, cfg.text_column: pl.Utf8})  # fmt: skip
        _check_columns(ref, cfg, f"reference {name!r}")
        if "status" in ref.columns:  # a dropped row of an earlier run is not in its pool
            ref = ref.filter(pl.col("status").is_null() | (pl.col("status") == "kept"))
        out.append((str(name), ref.select(pl.col(cfg.id_column).cast(pl.Utf8), pl.col(cfg.text_column))))
    return out


def _check_columns(frame: pl.DataFrame, cfg: NearDupConfig, what: str) -> None:
    for col in (cfg.id_column, cfg.text_column):
        if col not in frame.columns:
            raise ValueError(
                f"{what} has no {col!r} column (columns: {frame.columns}): rename it or set "
                f"NearDupConfig({'id' if col == cfg.id_column else 'text'}_column=...)"
            )
    if frame[cfg.text_column].dtype not in (pl.Utf8, pl.Null):
        raise ValueError(
            f"{what}: column {cfg.text_column!r} must hold strings, not {frame[cfg.text_column].dtype}"
        )


def near_duplicates(
    frame: pl.DataFrame,
    config: NearDupConfig | None = None,
    *,
    references: References | None = None,
    stats: NearDupStats | None = None,
) -> pl.DataFrame:
    """Mark near-duplicate rows of `frame`, in order, against earlier kept rows and the `references`.

    `references`: a frame (id, text), a list of texts, or a mapping name -> either (several sets). Returns
    `frame` with `dup_of` (id of the row duplicated), `dup_set` ('self' or the reference's name),
    `dup_similarity` (exact ROUGE-L F1), and `status`/`reason` set to dropped/near_duplicate on duplicates.
    Rows whose existing `status` is not 'kept' are left as they are and are not in the pool; a row with
    no token is never a duplicate (ROUGE-L is 0). Pass a `NearDupStats` to get the work counts back.
    """
    cfg = config or NearDupConfig()
    st = stats if stats is not None else NearDupStats()
    _check_columns(frame, cfg, "frame")
    if frame[cfg.id_column].is_duplicated().any():
        raise ValueError(
            f"column {cfg.id_column!r} has repeated ids: dup_of would be ambiguous, make ids unique"
        )
    bands, r = cfg.bands_and_rows()
    st.bands, st.rows_per_band = bands, r
    refs = _reference_frames(references, cfg)
    ref_ids = [i for _, f in refs for i in f[cfg.id_column].to_list()]
    ref_set = [name for name, f in refs for _ in range(f.height)]
    n_ref = len(ref_ids)
    elig_idx = np.arange(frame.height)
    if "status" in frame.columns:
        elig_idx = np.flatnonzero(frame["status"].fill_null("kept").eq("kept").to_numpy())
    texts = pl.concat([*(f[cfg.text_column].cast(pl.Utf8) for _, f in refs),
                       frame[cfg.text_column].cast(pl.Utf8).gather(elig_idx)])  # fmt: skip
    n = texts.len()
    st.rows, st.references = n - n_ref, n_ref
    dup = np.full(n, -1, dtype=np.int64)
    sim = np.full(n, np.nan)
    if n - n_ref > 0 and _passes(np.array([1.0]), cfg)[0]:  # else even an exact copy is no duplicate
        tokens = _tokens(texts)
        ids, lens = _dense_ids(tokens)
        offsets = np.concatenate(([0], np.cumsum(lens)))
        # Exact copies (same tokens) skip LSH: the first occurrence stands for all of them.
        joined = tokens.list.join(" ")
        first = (
            pl.DataFrame({"k": joined, "i": np.arange(n)})
            .select(pl.col("i").first().over("k"))
            .to_series()
            .to_numpy()
        )
        has_tok = lens > 0
        rep = has_tok & (first == np.arange(n))
        active = np.flatnonzero(rep)
        st.exact_copies = int((has_tok & ~rep)[n_ref:].sum())
        seqs = np.empty(n, dtype=object)
        seqs[active] = _encode(ids, offsets, active)
        sig = _minhash(_shingles(ids, lens), lens, cfg.num_perm, cfg.seed)
        pairs = _band_pairs(sig, active, bands, r, n_ref)
        del sig
        dup, sim = _decide(n, n_ref, *_above_threshold(pairs, seqs, lens, cfg, st))
        # A copy duplicates its first occurrence if that is kept, else what that one duplicates.
        for c in np.flatnonzero(has_tok & ~rep & (np.arange(n) >= n_ref)).tolist():
            f = int(first[c])
            dup[c], sim[c] = (f, 1.0) if dup[f] < 0 else (dup[f], sim[f])
    own_ids = frame[cfg.id_column].cast(pl.Utf8).gather(elig_idx).to_list()
    all_ids, all_sets = ref_ids + own_ids, ref_set + [SELF] * len(own_ids)
    d = dup[n_ref:]
    dup_of = [all_ids[k] if k >= 0 else None for k in d.tolist()]
    dup_set = [all_sets[k] if k >= 0 else None for k in d.tolist()]
    st.dropped = int((d >= 0).sum())
    is_dup = np.zeros(frame.height, dtype=bool)
    is_dup[elig_idx] = d >= 0
    col_dup = np.full(frame.height, None, dtype=object)
    col_set = np.full(frame.height, None, dtype=object)
    col_sim = np.full(frame.height, np.nan)
    col_dup[elig_idx] = np.array(dup_of, dtype=object)
    col_set[elig_idx] = np.array(dup_set, dtype=object)
    col_sim[elig_idx] = sim[n_ref:]
    mask = pl.Series(is_dup)
    status = pl.col("status") if "status" in frame.columns else pl.lit("kept")
    reason = pl.col("reason") if "reason" in frame.columns else pl.lit(None, dtype=pl.Utf8)
    return frame.with_columns(
        pl.Series("dup_of", col_dup.tolist(), dtype=pl.Utf8),
        pl.Series("dup_set", col_set.tolist(), dtype=pl.Utf8),
        pl.Series("dup_similarity", col_sim, dtype=pl.Float64).fill_nan(None),
        pl.when(mask).then(pl.lit("dropped")).otherwise(status).alias("status"),
        pl.when(mask).then(pl.lit(NEAR_DUPLICATE)).otherwise(reason).alias("reason"),
    )
