"""The dataset card: what made the data (recipe, models, parameters, rubrics), how much, how diverse."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import yaml

__all__ = ["dataset_card", "diversity_table", "simple_diversity"]

_USAGE = {
    "sft": "SFTTrainer (conversational `messages`)",
    "prompt_completion": "SFTTrainer (prompt-completion)",
    "dpo": "DPOTrainer (`prompt` / `chosen` / `rejected`)",
}


def simple_diversity(texts: list[str]) -> dict[str, float | None]:
    """Fallback diversity when `workbench.metrics` is unavailable: mean words and distinct-1/2
    (|unique n-grams| / |n-grams|, n-grams taken within each text)."""
    out: dict[str, float | None] = {}
    words = [t.lower().split() for t in texts]
    out["mean_words"] = sum(map(len, words)) / len(words) if words else None
    for n in (1, 2):
        grams = [tuple(w[i : i + n]) for w in words for i in range(len(w) - n + 1)]
        out[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else None
    return out


def diversity_table(texts: list[str]) -> list[tuple[str, float | None, int | None]]:
    """(metric, value, sample size) rows: the metrics package's lexical summary when it is installed
    (mean words, distinct-1/2/3, self-BLEU, nearest-neighbour ROUGE-L), else `simple_diversity`."""
    if not texts:
        return []
    frame = pl.DataFrame({"text": texts})
    try:
        from ..metrics import lexical_summary
    except ImportError:  # pragma: no cover - the metrics package ships with the workbench
        return [(k, v, None) for k, v in simple_diversity(texts).items()]
    summary = lexical_summary(frame, "text", sample=500, seed=0)
    return [(r["metric"], r["value"], r["sample_size"]) for r in summary.iter_rows(named=True)]


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def dataset_card(
    *,
    title: str,
    fmt: str,
    dataset: pl.DataFrame,
    source_rows: pl.DataFrame | None = None,
    recipe: dict[str, Any] | None = None,
    diversity_texts: list[str] | None = None,
    description: str = "",
    rubric_notes: list[str] | None = None,
) -> str:
    """The card's markdown body: summary, recipe, counts, provenance, diversity, and how to load it."""
    parts = [f"# {title}", "", description or "Synthetic data made with the Synthetic Data Workbench.", ""]
    parts += [f"Format: **{fmt}**, for TRL's {_USAGE.get(fmt, fmt)}. Rows: **{dataset.height}**.", ""]
    parts += ["## Counts", ""]
    count_rows: list[tuple[Any, ...]] = [("exported rows", dataset.height)]
    if source_rows is not None and source_rows.height:
        by = source_rows.group_by(["stage", "status"]).len().sort(["stage", "status"])
        count_rows += [(f"run rows: {r['stage']} / {r['status']}", r["len"]) for r in by.iter_rows(named=True)]
    parts += [_table(("what", "count"), count_rows), ""]
    parts += ["## Provenance", ""]
    prov: list[tuple[Any, ...]] = []
    for col in ("model_sha", "chosen_model_sha", "rubric", "rubric_version"):
        if col in dataset.columns:
            values = sorted(str(v) for v in dataset[col].drop_nulls().unique().to_list())
            prov.append((col, ", ".join(values) or "–"))
    for col in ("params", "chosen_params"):
        if col in dataset.columns and dataset[col].drop_nulls().len():
            distinct = dataset[col].drop_nulls().unique().to_list()
            sample = json.loads(distinct[0])
            shown = {k: sample[k] for k in ("temperature", "top_p", "top_k", "min_p", "max_tokens") if k in sample}
            prov.append((f"{col} ({len(distinct)} distinct; first)", json.dumps(shown)))
    for col in ("score", "chosen_score", "rejected_score"):
        if col in dataset.columns and dataset[col].drop_nulls().len():
            prov.append((f"mean {col}", dataset[col].mean()))
    parts += [_table(("field", "value"), prov) if prov else "No provenance columns.", ""]
    if rubric_notes:
        parts += ["## Rubric versions", "", "Scores come from one version per rubric, never a mix:", ""]
        parts += [f"- {note}" for note in rubric_notes] + [""]
    if diversity_texts:
        parts += ["## Diversity", "", f"Computed on the {len(diversity_texts)} exported responses.", ""]
        parts += [_table(("metric", "value", "sample size"), list(diversity_table(diversity_texts))), ""]
    if recipe:
        parts += ["## Recipe", "", "The recipe that made this data (`workbench run` can re-run it):", ""]
        parts += ["```yaml", yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).rstrip(), "```", ""]
    parts += [
        "## Loading",
        "",
        "```python",
        "from workbench.export import load_export",
        "ds = load_export('<this folder>')  # or datasets.load_dataset('<hub repo>') once pushed",
        "```",
        "",
    ]
    return "\n".join(parts)
