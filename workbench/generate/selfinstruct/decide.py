"""Keep/drop decisions for candidate instructions, and re-applying a new similarity threshold to them.

The paper's filter is sequential: a candidate is compared with every instruction already in the pool,
which includes the machine instructions accepted before it. `PoolFilter` makes those decisions one at a
time as candidates arrive; `apply_similarity_threshold` replays them for a different threshold from the
stored rows alone (no model call), which is what the widget's slider does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from ...filters.rouge import RougeLIndex, rouge_l_matrix
from ...filters.text_filters import TextFilterConfig, text_filter_reason

__all__ = ["NEAR_DUPLICATE", "PoolFilter", "apply_similarity_threshold"]

NEAR_DUPLICATE = "near_duplicate"


class PoolFilter:
    """The instruction pool (seeds + accepted machine instructions) and the filters guarding it."""

    def __init__(
        self,
        seed_texts: Sequence[str],
        seed_ids: Sequence[str],
        *,
        threshold: float = 0.7,
        text_config: TextFilterConfig | None = None,
    ) -> None:
        self.threshold = threshold
        self.text_config = text_config or TextFilterConfig()
        self._seeds = RougeLIndex(seed_texts)
        self._pool = RougeLIndex(seed_texts)
        self.pool_ids: list[str] = list(seed_ids)
        self.n_seeds = len(seed_ids)

    def accept(self, text: str, row_id: str) -> None:
        """Add an instruction to the pool (a kept candidate, or a kept row replayed from a resumed run)."""
        self._pool.add([text])
        self.pool_ids.append(row_id)

    @property
    def accepted(self) -> int:
        return len(self.pool_ids) - self.n_seeds

    def nearest_fields(self, text: str) -> dict[str, Any]:
        """Nearest pool instruction (and nearest seed) with scores, as row columns."""
        if not text:
            keys = (
                "nearest_score",
                "nearest_id",
                "nearest_text",
                "seed_score",
                "seed_nearest_id",
                "seed_nearest_text",
            )
            return dict.fromkeys(keys)
        score, idx = self._pool.nearest([text])
        s_score, s_idx = self._seeds.nearest([text])
        i, si = int(idx[0]), int(s_idx[0])
        return {
            "nearest_score": float(score[0]),
            "nearest_id": self.pool_ids[i] if i >= 0 else None,
            "nearest_text": self._pool.texts[i] if i >= 0 else None,
            "seed_score": float(s_score[0]),
            "seed_nearest_id": self.pool_ids[si] if si >= 0 else None,
            "seed_nearest_text": self._seeds.texts[si] if si >= 0 else None,
        }

    def decide(self, text: str, prior_reason: str | None = None, row_id: str = "") -> dict[str, Any]:
        """Status, reason and nearest-neighbour columns for one candidate; a kept one joins the pool.

        `prior_reason` is a parse failure (empty, truncated) found before the filters ran."""
        fields = self.nearest_fields(text)
        filter_reason = prior_reason or text_filter_reason(text, self.text_config)
        fields["filter_reason"] = filter_reason
        if filter_reason is not None:
            fields.update(status="dropped", reason=filter_reason)
        elif fields["nearest_score"] is not None and fields["nearest_score"] > self.threshold:
            fields.update(status="dropped", reason=NEAR_DUPLICATE)
        else:
            fields.update(status="kept", reason=None)
            self.accept(text, row_id)
        return fields


def apply_similarity_threshold(rows: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Recompute kept/dropped of already generated instruction rows for a new threshold. Pure, no model.

    How the sequential dependence is handled: rows are replayed in their original decision order
    (`decision_order`), each candidate pool (`pool_id`: one generator, model, run seed and seed set) on
    its own. Each candidate that passed the text filters is compared with the seeds (its stored
    `seed_score`, which no decision changes) and with the earlier candidates of its pool that are kept
    *under the new threshold* (recomputed exactly from the texts); it is kept when the larger of those
    scores is not strictly above `threshold`. At the run's own threshold this reproduces the run's
    decisions exactly. What it cannot know is what the model would have written had different
    instructions been accepted earlier (they feed later prompts as machine examples) — only a new run
    can show that.

    Rows of other stages, error rows and rows dropped by a text filter are returned unchanged.
    """
    needed = {
        "id",
        "stage",
        "status",
        "text",
        "decision_order",
        "filter_reason",
        "seed_score",
        "seed_nearest_id",
    }
    missing = needed - set(rows.columns)
    if missing:
        raise ValueError(f"rows lack columns {sorted(missing)}: pass rows produced by run_self_instruct")
    inst = rows.filter(pl.col("stage") == "instruction").sort(
        "decision_order", nulls_last=True, maintain_order=True
    )
    eligible_mask = (inst["status"] != "error") & inst["filter_reason"].is_null()
    elig = inst.filter(eligible_mask)
    if elig.height == 0:
        return rows
    pools = elig["pool_id"] if "pool_id" in elig.columns else pl.Series([None] * elig.height, dtype=pl.Utf8)
    updated = [
        _replay_pool(elig.filter(pools.fill_null("") == key), threshold)
        for key in pools.fill_null("").unique(maintain_order=True).to_list()
    ]
    out = pl.concat([*updated, inst.filter(~eligible_mask), rows.filter(pl.col("stage") != "instruction")],
                    how="diagonal_relaxed")  # fmt: skip
    # Give rows back in the caller's order.
    order = {rid: k for k, rid in enumerate(rows["id"].to_list())}
    return (
        out.with_columns(pl.col("id").replace_strict(order, default=None).alias("__pos"))
        .sort("__pos")
        .drop("__pos")
        .select(rows.columns)
    )


def _replay_pool(elig: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """The sequential threshold decision over one pool's eligible candidates (in decision order)."""
    n = elig.height
    texts = elig["text"].to_list()
    ids = elig["id"].to_list()
    seed_score = elig["seed_score"].fill_null(0.0).to_numpy()
    sim = rouge_l_matrix(texts, texts)
    kept = np.zeros(n, dtype=bool)
    status, reason, n_score, n_id, n_text = [], [], [], [], []
    seed_ids = elig["seed_nearest_id"].to_list()
    seed_texts = elig["seed_nearest_text"].to_list() if "seed_nearest_text" in elig.columns else [None] * n
    for i in range(n):
        prev = np.flatnonzero(kept[:i])
        best_m, j = (
            (float(sim[i, prev].max()), int(prev[np.argmax(sim[i, prev])])) if prev.size else (0.0, -1)
        )
        # Pool order is seeds first, so a tie goes to the seed (argmax's first index in the reference).
        if seed_score[i] >= best_m:
            score, nid, ntext = float(seed_score[i]), seed_ids[i], seed_texts[i]
        else:
            score, nid, ntext = best_m, ids[j], texts[j]
        keep = score <= threshold
        kept[i] = keep
        status.append("kept" if keep else "dropped")
        reason.append(None if keep else NEAR_DUPLICATE)
        n_score.append(score)
        n_id.append(nid)
        n_text.append(ntext)
    return elig.with_columns(
        pl.Series("status", status, dtype=pl.Utf8),
        pl.Series("reason", reason, dtype=pl.Utf8),
        pl.Series("nearest_score", n_score, dtype=pl.Float64),
        pl.Series("nearest_id", n_id, dtype=pl.Utf8),
        pl.Series("nearest_text", n_text, dtype=pl.Utf8),
    )
