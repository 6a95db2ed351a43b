"""Card JSON for the inspector's view: one card per prompt, its completions side by side.

The shape is documented in `widgets.inspector`; `build_card` is pure (rows in, a dict out), so other
views (the labellers) and the benchmark reuse it. A conversation row's card also carries
`"messages": [{"role", "content", "source"}]` (source: one line saying which step, model and seed wrote
the turn, shown on hover), which the view draws as chat bubbles instead of the prompt box.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.generate.evolve import LineageIndex

__all__ = ["MAX_TEXT", "build_card", "conversation_bubbles"]

MAX_TEXT = 20_000  # characters per text sent to the browser; the run keeps the whole text


def _short(value: Any, n: int = 10) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= n else text[:n] + "…"


def _item_meta(row: dict[str, Any]) -> list[list[str]]:
    meta: list[list[str]] = []
    if row.get("sample") is not None:
        meta.append(["sample", str(row["sample"])])
    if row.get("seed") is not None:
        meta.append(["seed", str(row["seed"])])
    if row.get("params"):
        try:
            temp = json.loads(row["params"]).get("temperature")
            if temp is not None:
                meta.append(["T", f"{temp:g}"])
        except (ValueError, AttributeError):
            pass
    if row.get("completion_tokens") is not None:
        meta.append(["tokens", str(row["completion_tokens"])])
    for col in ("score", "ifd"):
        if isinstance(row.get(col), (int, float)):
            meta.append([col, f"{row[col]:.3g}"])
    if row.get("status") and row["status"] != "kept":
        meta.append([row["status"], row.get("reason") or ""])
    return meta


def _source_line(source: dict[str, Any] | None) -> str:
    """Who wrote a turn, in one line: 'user_simulator · SmolLM2 · seed 12 · stop'."""
    if not source:
        return "source unknown"
    parts = [str(source.get("step") or "?")]
    if source.get("model"):
        parts.append(str(source["model"]))
    if source.get("seed") is not None:
        parts.append(f"seed {source['seed']}")
    if source.get("finish_reason") and source["finish_reason"] != "stop":
        parts.append(str(source["finish_reason"]))
    if source.get("source_id"):
        parts.append(f"from row {_short(source['source_id'])}")
    if source.get("prompt_hash"):
        parts.append(f"prompt {source['prompt_hash']}")
    return " · ".join(parts)


def conversation_bubbles(row: dict[str, Any]) -> list[dict[str, str]]:
    """A conversation row's messages as bubbles: role, content (capped), and its provenance line."""
    messages = row.get("messages") or []
    sources = row.get("turn_sources") or []
    out = []
    for i, message in enumerate(messages):
        source = sources[i] if i < len(sources) else None
        out.append({
            "role": str(message.get("role") or ""),
            "content": str(message.get("content") or "")[:MAX_TEXT],
            "source": _source_line(source),
        })  # fmt: skip
    return out


def _lineage_json(chain: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for link in chain:
        label = f"gen {link.get('generation') or 0}"
        if link.get("operator"):
            label += f" · {link['operator']}"
        if link.get("status") == "dropped":
            label += f" · dropped: {link.get('reason')}"
        out.append({"label": label, "text": (link.get("text") or "")[:MAX_TEXT]})
    return out


def build_card(
    key: str,
    number: int,
    rows: list[dict[str, Any]],
    *,
    flags: set[str] | frozenset[str] = frozenset(),
    parents: LineageIndex | None = None,
) -> dict[str, Any]:
    """The card JSON for one prompt: completions become side-by-side items; a single non-completion
    row (a seed, an evolved prompt) is the card's own prompt."""
    first = rows[0]
    children = [r for r in rows if r.get("stage") == "completion" and r.get("parent_id") == key]
    chain: list[dict[str, Any]] = []
    if parents is not None:
        try:
            chain = parents.chain(key if children else first["id"])
        except KeyError:
            chain = []
    if children:
        own = chain[-1] if chain and chain[-1].get("id") == key else None
        instruction = first.get("instruction") or ""
        inp = first.get("input") or ""
        prompt = (
            (own or {}).get("text")
            or (f"{instruction}\n\n{inp}" if inp else instruction)
            or first.get("prompt")
            or ""
        )
        card_id = None
    else:
        prompt, card_id = first.get("text") or "", first["id"]
    bubbles = conversation_bubbles(first) if not children and first.get("messages") else []
    models = sorted({r["model"] for r in children if r.get("model")})
    meta = [["prompt", _short(key)]]
    for col in ("stage", "round", "operator", "status"):
        if not children and first.get(col) is not None:
            meta.append([col, str(first[col])])
    if not children and first.get("reason"):
        meta.append(["reason", str(first["reason"])])
    if bubbles:
        meta.append(["turns", str(sum(b["role"] == "user" for b in bubbles))])
    if children:
        meta.append(["completions", str(len(children))])
    if models:
        meta.append(["models", ", ".join(models)])
    items = [
        {
            "id": r["id"],
            "title": r.get("model") or r.get("stage") or "",
            "text": (r.get("text") or "")[:MAX_TEXT],
            "meta": _item_meta(r),
            "status": r.get("status") or "kept",
            "active": ["flag"] if r["id"] in flags else [],
        }
        for r in children
    ]
    card: dict[str, Any] = {
        "key": key,
        "number": number,
        "id": card_id,
        "title": _short(first.get("instruction") or prompt, 80).replace("\n", " "),
        "prompt": prompt[:MAX_TEXT],
        "meta": meta,
        "lineage": _lineage_json(chain[:-1]),  # ancestors; the card's own prompt is shown above
        "active": ["flag"] if card_id is not None and card_id in flags else [],
        "items": items,
    }
    if bubbles:
        card["messages"] = bubbles
    return card
