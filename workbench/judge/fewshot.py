"""(d) Few-shot judging: k pairs the user labelled, shown in the prompt before the pair to judge.

`fewshot_rubric(rubric)` is a new rubric version whose pairwise template starts with the examples;
`with_examples(pairs, labelled, k=2)` adds to every pair a `fewshot_examples` column (JSON) of k
labelled pairs, never the pair being judged (nor one sharing its answers or its instruction). The
examples alternate which side won and which slot the winner is shown in, so they do not teach "A"
(a small judge copies the examples' pattern readily). `run_pairwise_judge` passes them to the template.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from .rubric import Rubric

__all__ = ["FEWSHOT_PAIRWISE_TEMPLATE", "fewshot_rubric", "with_examples"]

# The rubric's fixed part (task, criteria, output format) first, so every pair's prompt starts with the same
# tokens; the examples (chosen per pair) and the pair follow.
FEWSHOT_PAIRWISE_TEMPLATE = """\
You are a strict grader comparing two responses. {{ task_description }}
Criteria:
{% for c in criteria %}- {{ c }}
{% endfor %}
Write one short sentence of feedback, then "Winner: " and {% if allow_ties %}A, B or tie{% else %}A or B{% endif %}.

{% for ex in fewshot_examples | default([]) %}Example {{ loop.index }}.
Instruction:
{{ ex.instruction }}

Response A:
{{ ex.response_a }}

Response B:
{{ ex.response_b }}
Feedback: A person preferred response {{ ex.winner }}.
Winner: {{ ex.winner }}

{% endfor %}Now the pair to judge.
Instruction:
{{ instruction }}

Response A:
{{ response_a }}

Response B:
{{ response_b }}"""


def fewshot_rubric(rubric: Rubric) -> Rubric:
    """The few-shot version of `rubric` (same criteria, the examples template; a new version hash)."""
    return rubric.edit(name=f"{rubric.name}+fewshot", pairwise_template=FEWSHOT_PAIRWISE_TEMPLATE)


def _clip(text: str, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def with_examples(
    pairs: pl.DataFrame,
    labelled: pl.DataFrame,
    *,
    k: int = 2,
    seed: int = 0,
    max_chars: int = 300,
) -> pl.DataFrame:
    """`pairs` with a `fewshot_examples` column: k examples from `labelled` (pair_id, instruction,
    a_text, b_text, human_pref 'A'/'B') per pair, excluding that pair itself, pairs with the same
    answers and pairs with the same instruction. Texts are clipped to `max_chars` each."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    need = {"pair_id", "instruction", "a_text", "b_text", "human_pref"}
    missing = need - set(labelled.columns)
    if missing:
        raise ValueError(
            f"labelled pairs lack columns {sorted(missing)} (use load_preference_pairs or your labels)"
        )
    pool = labelled.filter(pl.col("human_pref").is_in(["A", "B"])).to_dicts()
    if len(pool) < k + 1:
        raise ValueError(f"few-shot needs at least {k + 1} labelled pairs with a winner, have {len(pool)}")
    rng = np.random.default_rng(seed)
    out = []
    for rec in pairs.iter_rows(named=True):
        texts = {rec.get("a_text"), rec.get("b_text")}
        allowed = [
            p for p in pool
            if p["pair_id"] != rec["pair_id"] and p["instruction"] != rec.get("instruction")
            and not ({p["a_text"], p["b_text"]} & texts)
        ]  # fmt: skip
        if len(allowed) < k:
            raise ValueError(f"pair {rec['pair_id']}: fewer than {k} labelled pairs other than itself")
        picked = [allowed[i] for i in rng.choice(len(allowed), size=k, replace=False)]
        examples: list[dict[str, Any]] = []
        for j, p in enumerate(picked):
            good, bad = (p["a_text"], p["b_text"]) if p["human_pref"] == "A" else (p["b_text"], p["a_text"])
            winner = "A" if j % 2 == 0 else "B"  # alternate the winner's slot
            first, second = (good, bad) if winner == "A" else (bad, good)
            examples.append({"instruction": _clip(p["instruction"], max_chars), "response_a": _clip(first, max_chars),
                             "response_b": _clip(second, max_chars), "winner": winner})  # fmt: skip
        out.append(json.dumps(examples))
    return pairs.with_columns(pl.Series("fewshot_examples", out, dtype=pl.Utf8))
