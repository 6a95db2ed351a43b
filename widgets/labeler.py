"""Keyboard labelling of a calibration set, inside the inspector's card view.

One card per judged row: the instruction above, the answer as the card's item with the judge's
score(s) as chips, and one action per score level (keys 1-9, 0 for 10). Pressing a key saves
`human_score` for the focused row in the run (`store.set_label`); pressing the same score again
clears it. j/k move between rows, n/p turn pages (the inspector's keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W
import polars as pl

from widgets.inspector import InspectorView
from workbench.runs import RunStore

__all__ = ["PREF_ACTIONS", "CalibrationLabeler", "PairwiseLabeler", "label_actions"]

LABEL_KIND = "human_score"
PREF_KIND = "human_pref"
# Card-wide actions: which answer of the pair a person prefers (keys 1, 2 and 0 for a tie).
PREF_ACTIONS = [
    {"name": "pref:A", "label": "A better", "key": "1", "class": "wb-label", "scope": "card"},
    {"name": "pref:B", "label": "B better", "key": "2", "class": "wb-label", "scope": "card"},
    {"name": "pref:tie", "label": "tie", "key": "0", "class": "wb-label", "scope": "card"},
]


def _key(score: int, scale: tuple[int, ...]) -> str | None:
    if 0 <= score <= 9:
        return str(score)
    if score == 10 and 0 not in scale:
        return "0"
    return None


def label_actions(scale: tuple[int, ...]) -> list[dict[str, Any]]:
    """One inspector action per score level (keyboard shortcut where a digit key is free)."""
    return [
        {"name": f"score:{s}", "label": str(s), "key": _key(s, scale), "class": "wb-label", "scope": "item"}
        for s in scale
    ]


class _CardLabeler(W.VBox):
    """What both labellers share: an inspector card view, a summary line, one label kind saved in
    the run, paging, and listeners told after every change."""

    kind = ""

    def __init__(self, store: Callable[[], RunStore], *, page_size: int, css_class: str, **view: Any) -> None:
        self._store = store
        self.view = InspectorView(page_size=page_size, **view)
        self.view.add_class(css_class)
        self.summary = W.HTML()
        self._listeners: list[Callable[[], None]] = []
        self.view.on_action(self._on_action)
        self.view.observe(lambda _c: self._render(), names="page")
        super().__init__([self.summary, self.view])

    def on_change(self, fn: Callable[[], None]) -> None:
        """Call `fn()` after every label change."""
        self._listeners.append(fn)

    @property
    def labels(self) -> dict[str, Any]:
        return self._store().label_values(self.kind)

    def _paginate(self, n: int) -> None:
        self.view.total = n
        self.view.page_count = max(1, -(-n // self.view.page_size))
        if self.view.page >= self.view.page_count:
            self.view.page = 0
        self._render()

    def _save(self, key: str, value: Any) -> None:
        self._store().set_label(key, self.kind, value)
        self._render()
        for fn in list(self._listeners):
            fn()

    def _on_action(self, name: str, card: str, row_id: str | None) -> None:
        raise NotImplementedError

    def _render(self) -> None:
        raise NotImplementedError


class CalibrationLabeler(_CardLabeler):
    """Label judged rows with a human score, keyboard first."""

    kind = LABEL_KIND

    def __init__(self, store: Callable[[], RunStore], *, page_size: int = 10) -> None:
        self.rows = pl.DataFrame()
        self.judgments = pl.DataFrame()
        self.scale: tuple[int, ...] = ()
        super().__init__(store, page_size=page_size, css_class="wb-judge-labeler")

    def show(self, rows: pl.DataFrame, judgments: pl.DataFrame, scale: tuple[int, ...]) -> None:
        """Label `rows` (id, instruction or prompt, text); `judgments` supply the judge's chips."""
        self.rows, self.judgments, self.scale = rows, judgments, tuple(scale)
        self.view.actions = label_actions(self.scale)
        self._paginate(rows.height)

    def set_label(self, row_id: str, score: int | None) -> None:
        """Save (or clear, with None) the human score of one row in the run."""
        if score is not None and score not in self.scale:
            raise ValueError(f"score {score} is not on this rubric's scale {self.scale}")
        self._save(row_id, score)

    def _on_action(self, name: str, _card: str, row_id: str | None) -> None:
        if not name.startswith("score:") or not row_id:
            return
        score = int(name.split(":", 1)[1])
        current = self.labels.get(row_id)
        self.set_label(row_id, None if current == score else score)

    def _judge_chips(self, row_id: str) -> list[list[str]]:
        if self.judgments.height == 0:
            return []
        mine = self.judgments.filter((pl.col("parent_id") == row_id) & (pl.col("judge_kind") == "absolute"))
        chips = []
        for rec in mine.iter_rows(named=True):
            value = str(rec["score"]) if rec["parse_ok"] else "unparsed"
            if rec.get("expected_score") is not None:
                value += f" (E={rec['expected_score']:.2f})"
            chips.append([f"judge {str(rec['rubric_version'])[:6]}", value])
        return chips

    def _render(self) -> None:
        labels = self.labels
        start = self.view.page * self.view.page_size
        page = self.rows.slice(start, self.view.page_size)
        cards = []
        for i, rec in enumerate(page.iter_rows(named=True)):
            rid = str(rec["id"])
            instruction = rec.get("instruction") or rec.get("prompt") or ""
            if rec.get("input"):
                instruction = f"{instruction}\n\n{rec['input']}"
            human = labels.get(rid)
            meta = [*self._judge_chips(rid), ["human", "—" if human is None else str(human)]]
            item = {"id": rid, "title": "answer", "text": rec.get("text") or "", "meta": meta, "status": "kept",
                    "active": [] if human is None else [f"score:{human}"]}  # fmt: skip
            cards.append({"key": rid, "number": start + i + 1, "id": None, "title": instruction[:80].replace("\n", " "),
                          "prompt": instruction, "meta": [], "lineage": [], "active": [], "items": [item]})  # fmt: skip
        self.view.cards = cards
        done = sum(1 for r in self.rows["id"].to_list() if r in labels) if self.rows.height else 0
        self.summary.value = (
            f"<b>{done}</b> of {self.rows.height} rows labelled · keys: "
            + ", ".join(a["key"] for a in label_actions(self.scale) if a["key"])
            + " score · j/k move · n/p page (click the cards first)"
        )
        self.view.message = "" if cards else "Nothing to label yet: run the judge on a sample first."


class PairwiseLabeler(_CardLabeler):
    """Label pairs of answers with a human preference (A, B or tie), keyboard first.

    One card per pair (`pair_id`, instruction, `a_id`/`a_text`, `b_id`/`b_text`, as made by
    `workbench.judge.make_pairs`), the two answers side by side. Keys 1 / 2 / 0 save `human_pref`
    for the focused pair in the run, keyed by pair_id (what `preference_agreement` reads); pressing
    the same key again clears it.
    """

    kind = PREF_KIND

    def __init__(self, store: Callable[[], RunStore], *, page_size: int = 10) -> None:
        self.pairs = pl.DataFrame()
        super().__init__(store, page_size=page_size, css_class="wb-judge-pair-labeler", actions=PREF_ACTIONS)

    def show(self, pairs: pl.DataFrame) -> None:
        missing = {"pair_id", "a_id", "a_text", "b_id", "b_text"} - set(pairs.columns)
        if pairs.height and missing:
            raise ValueError(f"pairs need columns {sorted(missing)} (build them with make_pairs)")
        self.pairs = pairs
        self._paginate(pairs.height)

    def set_preference(self, pair_id: str, preference: str | None) -> None:
        """Save (or clear, with None) which answer of a pair a person prefers: 'A', 'B' or 'tie'."""
        if preference not in (None, "A", "B", "tie"):
            raise ValueError(f"preference must be 'A', 'B' or 'tie', got {preference!r}")
        self._save(pair_id, preference)

    def _on_action(self, name: str, card: str, _row_id: str | None) -> None:
        if not name.startswith("pref:") or not card:
            return
        choice = name.split(":", 1)[1]
        self.set_preference(card, None if self.labels.get(card) == choice else choice)

    def _render(self) -> None:
        labels = self.labels
        start = self.view.page * self.view.page_size
        cards = []
        for i, rec in enumerate(self.pairs.slice(start, self.view.page_size).iter_rows(named=True)):
            pid = str(rec["pair_id"])
            prompt = str(rec.get("instruction") or rec.get("prompt") or "")
            human = labels.get(pid)
            items: list[dict[str, Any]] = [
                {"id": str(rec[f"{side.lower()}_id"]), "title": f"answer {side}", "text": rec[f"{side.lower()}_text"] or "",
                 "meta": [], "status": "kept", "active": []}
                for side in ("A", "B")
            ]  # fmt: skip
            cards.append({"key": pid, "number": start + i + 1, "id": None, "title": prompt[:80].replace("\n", " "),
                          "prompt": prompt, "meta": [["human", "—" if human is None else str(human)]],
                          "lineage": [], "active": [] if human is None else [f"pref:{human}"], "items": items})  # fmt: skip
        self.view.cards = cards
        done = sum(1 for p in self.pairs["pair_id"].to_list() if p in labels) if self.pairs.height else 0
        self.summary.value = (
            f"<b>{done}</b> of {self.pairs.height} pairs labelled · keys: 1 = A better, 2 = B better, 0 = tie · "
            "j/k move · n/p page (click the cards first)"
        )
        self.view.message = "" if cards else "No pairs yet: pick a sample with two answers per prompt."
