"""Human-labelled pairs to measure judges on: chosen/rejected preference data as judge-ready pairs.

A preference dataset says which of two replies a person preferred (`chosen`, `rejected`). To judge it,
each record becomes a pair (pair_id, instruction, a_id, a_text, b_id, b_text) plus its `human_pref`
('A' or 'B'). Which reply is shown as `a` is drawn with a seeded coin per pair: with `chosen` always
first, "always pick the first" would be a perfect judge and every position-biased judge would look good.

Shipped sets (inside the package, so notebooks and tests need nothing else):
- "hh-rlhf": 500 harmless-base pairs from Anthropic's hh-rlhf (MIT), dialogues that share every turn
  but the last assistant reply (`workbench/data/hh_rlhf/`).
- `load_answer_pairs()`: text-davinci-003 vs davinci-self-instruct answers to 38 user-oriented
  instructions (Apache-2.0, `workbench/data/self_instruct_answers/`): a clear-cut sanity set.
"""

from __future__ import annotations

import gzip
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .pairwise import pair_id

__all__ = [
    "PAIR_SCHEMA",
    "load_answer_pairs",
    "load_preference_pairs",
    "preference_pairs",
    "split_dialogue",
    "split_pairs",
]

PAIR_SCHEMA = {
    "pair_id": pl.Utf8,
    "instruction": pl.Utf8,
    "a_id": pl.Utf8,
    "a_text": pl.Utf8,
    "b_id": pl.Utf8,
    "b_text": pl.Utf8,
    "human_pref": pl.Utf8,
}
_ASSISTANT = "\n\nAssistant:"
_SHIPPED = {"hh-rlhf": ("hh_rlhf", "harmless_calibration.jsonl.gz")}


def _data_file(*parts: str) -> Path:
    return Path(str(resources.files("workbench").joinpath("data", *parts)))


def split_dialogue(text: str) -> tuple[str, str]:
    """(conversation before the last assistant turn, the last assistant reply) of an hh-rlhf dialogue.
    A text without an "Assistant:" turn is all reply (empty conversation)."""
    cut = text.rfind(_ASSISTANT)
    if cut < 0:
        return "", text.strip()
    return text[:cut].strip(), text[cut + len(_ASSISTANT) :].strip()


def preference_pairs(
    data: pl.DataFrame | list[dict[str, Any]],
    *,
    chosen: str = "chosen",
    rejected: str = "rejected",
    prompt: str | None = None,
    id_prefix: str = "pref",
    seed: int = 0,
) -> pl.DataFrame:
    """Judge-ready pairs with `human_pref` from a chosen/rejected preference dataset.

    With `prompt` (a column holding the prompt), chosen/rejected are the replies. Without it they are
    whole dialogues (hh-rlhf style) split into the shared conversation and the two last replies; a
    record whose two dialogues do not share that conversation is an error naming it.
    """
    frame = data if isinstance(data, pl.DataFrame) else pl.DataFrame(data)
    need = {chosen, rejected} | ({prompt} if prompt else set())
    missing = need - set(frame.columns)
    if missing:
        raise ValueError(
            f"preference data lacks columns {sorted(missing)} (has {frame.columns}); "
            "pass chosen=, rejected= (and prompt=) naming yours"
        )
    rng = np.random.default_rng(seed)
    flips = rng.random(frame.height) < 0.5
    recs = []
    for i, (rec, flip) in enumerate(zip(frame.iter_rows(named=True), flips, strict=True)):
        good, bad = str(rec[chosen] or ""), str(rec[rejected] or "")
        if prompt:
            instruction = str(rec[prompt] or "")
        else:
            instruction, good = split_dialogue(good)
            other, bad = split_dialogue(bad)
            if other != instruction:
                raise ValueError(
                    f"record {i}: chosen and rejected do not share the conversation before the last "
                    "assistant reply; pass prompt= if the replies are in their own columns"
                )
        ids = (f"{id_prefix}/{i}/chosen", f"{id_prefix}/{i}/rejected")
        texts = (good, bad)
        a, b = (1, 0) if flip else (0, 1)
        recs.append(
            {
                "pair_id": pair_id(ids[a], ids[b]),
                "instruction": instruction,
                "a_id": ids[a],
                "a_text": texts[a],
                "b_id": ids[b],
                "b_text": texts[b],
                "human_pref": "B" if flip else "A",
            }
        )
    return pl.DataFrame(recs, schema=PAIR_SCHEMA)


def load_preference_pairs(
    source: str | os.PathLike[str] = "hh-rlhf", *, limit: int | None = None, seed: int = 0, **columns: Any
) -> pl.DataFrame:
    """Pairs with `human_pref` from a shipped set ("hh-rlhf") or a .jsonl / .jsonl.gz / .parquet file
    of chosen/rejected records (`columns`: chosen=, rejected=, prompt= as in `preference_pairs`)."""
    name = str(source)
    if name in _SHIPPED:
        path, prefix = _data_file(*_SHIPPED[name]), name
    else:
        path, prefix = Path(name).expanduser(), Path(name).stem.split(".")[0]
        if not path.exists():
            raise FileNotFoundError(
                f"no preference file at {path}; give a .jsonl(.gz) or .parquet of chosen/rejected "
                f"records, or one of the shipped sets: {sorted(_SHIPPED)}"
            )
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
    else:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            records = []
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        frame = pl.DataFrame(records)
    if limit is not None:
        frame = frame.head(limit)
    return preference_pairs(frame, id_prefix=prefix, seed=seed, **columns)


def split_pairs(
    pairs: pl.DataFrame, *, tune: int, held_out: int, seed: int = 0, max_chars: int | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(tuning slice, held-out slice): disjoint seeded samples of `tune` and `held_out` pairs. With
    `max_chars`, only pairs whose instruction and both replies fit in that many characters are drawn
    (short prompts keep CPU judging affordable; say so when reporting)."""
    pool = pairs
    if max_chars is not None:
        total = (
            pl.col("instruction").str.len_chars()
            + pl.col("a_text").str.len_chars()
            + pl.col("b_text").str.len_chars()
        )
        pool = pool.filter(total <= max_chars)
    if tune + held_out > pool.height:
        raise ValueError(f"asked for {tune} + {held_out} pairs but only {pool.height} are eligible")
    shuffled = pool.sample(fraction=1.0, shuffle=True, seed=seed)
    return shuffled.head(tune), shuffled.slice(tune, held_out)


def load_answer_pairs(
    strong: str = "text-davinci-003", weak: str = "davinci-self-instruct", *, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(answers, pairs) of the shipped self-instruct sanity set. `answers` has one row per answer
    (id, parent_id, instruction, input, text, model_id); `pairs` pairs the two models' answers to each
    instruction in a seeded random order, with `human_pref` naming the strong model's answer (the
    paper's raters preferred text-davinci-003 by a wide margin: a label by construction, not per row)."""
    path = _data_file("self_instruct_answers", "user_oriented_answers.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    models = {r["model"] for r in rows}
    for m in (strong, weak):
        if m not in models:
            raise ValueError(f"no answers of {m!r} in the shipped set (models: {sorted(models)})")
    answers = pl.DataFrame(
        [
            {
                "id": f"{r['model']}/{r['index']}",
                "parent_id": f"task-{r['index']}",
                "instruction": r["instruction"],
                "input": r["input"],
                "text": r["response"],
                "model_id": r["model"],
            }
            for r in rows
            if r["model"] in (strong, weak)
        ]
    )
    good = answers.filter(pl.col("model_id") == strong)
    bad = answers.filter(pl.col("model_id") == weak).select("parent_id", pl.col("text").alias("bad"))
    joined = good.join(bad, on="parent_id", maintain_order="left").with_columns(
        pl.when(pl.col("input").str.strip_chars() != "")
        .then(pl.col("instruction") + "\n\n" + pl.col("input"))
        .otherwise(pl.col("instruction"))
        .alias("prompt")
    )
    pairs = preference_pairs(
        joined.select("prompt", pl.col("text").alias("chosen"), pl.col("bad").alias("rejected")),
        prompt="prompt",
        id_prefix="self-instruct",
        seed=seed,
    )
    # Name each side by the answer row it is, so pairwise judgments line up with `answers`.
    ids = dict(zip(joined["parent_id"].to_list(), range(joined.height), strict=True))
    strong_ids = {f"self-instruct/{i}/chosen": f"{strong}/{p.split('-', 1)[1]}" for p, i in ids.items()}
    weak_ids = {f"self-instruct/{i}/rejected": f"{weak}/{p.split('-', 1)[1]}" for p, i in ids.items()}
    rename = {**strong_ids, **weak_ids}
    pairs = pairs.with_columns(pl.col("a_id").replace_strict(rename), pl.col("b_id").replace_strict(rename))
    fresh = [pair_id(a, b) for a, b in zip(pairs["a_id"], pairs["b_id"], strict=True)]
    pairs = pairs.with_columns(pl.Series("pair_id", fresh, dtype=pl.Utf8))
    return answers, pairs
