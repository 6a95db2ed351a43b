"""The inspector: read a run one prompt at a time, its k completions side by side.

`InspectorView` is a generic anywidget card view (ESM in inspector.js): it shows the `cards` of ONE
page, handles keyboard navigation inside the browser (never letting keys reach JupyterLab), and sends
actions (flag, or any extra button) back to Python. `InspectorPanel` wraps it with ipywidgets
controls bound to `workbench.query` (filter, sort, search, paging) and saves flags into the run.

Card JSON (what `InspectorView.cards` holds; reusable by other views, e.g. a labelling view):
    {"key": str, "number": int (1-based), "id": row id or None, "title": str, "prompt": str,
     "meta": [[label, value], ...], "lineage": [{"label": str, "text": str}, ...],
     "active": [action names on for the card's own row],
     "items": [{"id": str, "title": str, "text": str, "meta": [[label, value], ...],
                "status": str, "active": [action names on]}]}
`InspectorView.actions`: [{"name", "label", "key" (keyboard shortcut), "class" (CSS class), "scope":
"item"|"card"}]; a press calls every `on_action(fn)` handler with (name, card_key, row_id).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as W
import polars as pl
import traitlets as T

from workbench.evolve import LineageIndex
from workbench.query import CardPages, RunQuery, facet_values
from workbench.session import Session

__all__ = ["FLAG_ACTION", "InspectorPanel", "InspectorView", "build_card"]

_HERE = Path(__file__).parent
FLAG_ACTION = {"name": "flag", "label": "⚑ flag", "key": "f", "class": "wb-flag", "scope": "item"}
_ALL = "(all)"
_MAX_TEXT = 20_000  # characters per text sent to the browser; the run keeps the whole text
ActionHandler = Callable[[str, str, str | None], None]


class InspectorView(anywidget.AnyWidget):
    """One page of cards; keyboard and clicks in the browser, state in traits."""

    _esm = _HERE / "inspector.js"
    _css = _HERE / "inspector.css"

    cards = T.List(T.Dict()).tag(sync=True)
    actions = T.List(T.Dict(), default_value=[FLAG_ACTION]).tag(sync=True)
    page = T.Int(0).tag(sync=True)
    page_count = T.Int(1).tag(sync=True)
    page_size = T.Int(10).tag(sync=True)
    total = T.Int(0).tag(sync=True)
    cursor = T.Int(0).tag(sync=True)
    item_cursor = T.Int(0).tag(sync=True)
    message = T.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._action_handlers: list[ActionHandler] = []
        self._jump_handlers: list[Callable[[int], None]] = []
        self.on_msg(self._on_custom_msg)

    def on_action(self, fn: ActionHandler) -> None:
        """Call `fn(action_name, card_key, row_id)` when the user presses an action."""
        self._action_handlers.append(fn)

    def on_jump(self, fn: Callable[[int], None]) -> None:
        """Call `fn(card_number)` (1-based) when the user jumps with `g`."""
        self._jump_handlers.append(fn)

    def handle_message(self, content: dict[str, Any]) -> None:
        """Dispatch a message from the browser (also what headless tests call)."""
        kind = content.get("type")
        if kind == "action":
            for fn in list(self._action_handlers):
                fn(str(content.get("name")), str(content.get("card")), content.get("item"))
        elif kind == "jump":
            for jump in list(self._jump_handlers):
                jump(int(content.get("number", 1)))

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict):
            self.handle_message(content)


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


def _lineage_json(chain: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for link in chain:
        label = f"gen {link.get('generation') or 0}"
        if link.get("operator"):
            label += f" · {link['operator']}"
        if link.get("status") == "dropped":
            label += f" · dropped: {link.get('reason')}"
        out.append({"label": label, "text": (link.get("text") or "")[:_MAX_TEXT]})
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
    models = sorted({r["model"] for r in children if r.get("model")})
    meta = [["prompt", _short(key)]]
    for col in ("stage", "round", "operator", "status"):
        if not children and first.get(col) is not None:
            meta.append([col, str(first[col])])
    if not children and first.get("reason"):
        meta.append(["reason", str(first["reason"])])
    if children:
        meta.append(["completions", str(len(children))])
    if models:
        meta.append(["models", ", ".join(models)])
    items = [
        {
            "id": r["id"],
            "title": r.get("model") or r.get("stage") or "",
            "text": (r.get("text") or "")[:_MAX_TEXT],
            "meta": _item_meta(r),
            "status": r.get("status") or "kept",
            "active": ["flag"] if r["id"] in flags else [],
        }
        for r in children
    ]
    return {
        "key": key,
        "number": number,
        "id": card_id,
        "title": _short(first.get("instruction") or prompt, 80).replace("\n", " "),
        "prompt": prompt[:_MAX_TEXT],
        "meta": meta,
        "lineage": _lineage_json(chain[:-1]),  # ancestors; the card's own prompt is shown above
        "active": ["flag"] if card_id is not None and card_id in flags else [],
        "items": items,
    }


_SORTS = [
    ("run order", "none"),
    ("length", "length"),
    ("round", "round"),
    ("score", "score"),
    ("ifd", "ifd"),
    ("model", "model"),
    ("operator", "operator"),
]


class InspectorPanel(W.VBox):
    """Filter/sort/search controls and page controls around an `InspectorView` of the session's run."""

    def __init__(self, session: Session, *, page_size: int = 10) -> None:
        self.session = session
        self.view = InspectorView(page_size=page_size)
        self._frame = pl.DataFrame()
        self._pages: CardPages | None = None
        self._parents: LineageIndex | None = None
        self._flags: set[str] = set()
        self._ids: list[str] | None = None
        self._busy = False
        self.last_render_s = 0.0
        dd = {"layout": W.Layout(width="170px")}
        self.stage = W.Dropdown(description="stage", options=[_ALL], **dd)
        self.status = W.Dropdown(description="status", options=[_ALL], **dd)
        self.model = W.Dropdown(description="model", options=[_ALL], **dd)
        self.operator = W.Dropdown(description="operator", options=[_ALL], **dd)
        self.search = W.Text(
            placeholder="search text…", continuous_update=False, layout=W.Layout(width="220px")
        )
        self.regex = W.Checkbox(description="regex", indent=False, layout=W.Layout(width="70px"))
        self.flagged_only = W.Checkbox(
            description="flagged only", indent=False, layout=W.Layout(width="110px")
        )
        self.sort = W.Dropdown(description="sort", options=_SORTS, value="none", **dd)
        self.descending = W.Checkbox(description="desc", indent=False, layout=W.Layout(width="60px"))
        self.prev_button = W.Button(description="◀ prev", layout=W.Layout(width="80px"))
        self.next_button = W.Button(description="next ▶", layout=W.Layout(width="80px"))
        self.page_label = W.HTML()
        self.jump = W.BoundedIntText(
            value=1, min=1, max=1, description="card", layout=W.Layout(width="150px")
        )
        self.jump_button = W.Button(description="go", layout=W.Layout(width="50px"))
        self.page_size = W.Dropdown(options=[5, 10, 20, 50], value=page_size, description="per page", **dd)
        self.refresh_button = W.Button(description="refresh", icon="refresh", layout=W.Layout(width="90px"))
        self.error = W.HTML()
        for w in (self.stage, self.status, self.model, self.operator, self.search, self.regex,
                  self.flagged_only, self.sort, self.descending):  # fmt: skip
            w.observe(lambda _c: self._apply(), names="value")
        self.page_size.observe(self._on_page_size, names="value")
        self.prev_button.on_click(lambda _b: self.go_page(self.view.page - 1))
        self.next_button.on_click(lambda _b: self.go_page(self.view.page + 1))
        self.jump_button.on_click(lambda _b: self.jump_to(self.jump.value))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.view.observe(lambda _c: self._render(), names="page")
        self.view.on_action(self._on_action)
        self.view.on_jump(self.jump_to)
        session.subscribe(self._on_session)
        filters = W.HBox([self.stage, self.status, self.model, self.operator])
        finder = W.HBox([self.search, self.regex, self.flagged_only, self.sort, self.descending])
        pager = W.HBox([self.prev_button, self.next_button, self.page_label, self.jump, self.jump_button,
                        self.page_size, self.refresh_button])  # fmt: skip
        super().__init__([filters, finder, pager, self.error, self.view])
        self.add_class("wb-inspector-panel")
        self.refresh()

    # -- public API ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the run (rows and flags) and redraw, keeping the current page when it still exists."""
        store = self.session.store
        rows = store.rows()
        self._flags = {k for k, v in store.label_values("flag").items() if v}
        self._frame = rows
        has_stage = "stage" in rows.columns and rows.height
        prompts = rows.filter(pl.col("stage") != "completion") if has_stage else rows
        self._parents = LineageIndex(prompts)
        self._busy = True
        try:
            for control, column in ((self.stage, "stage"), (self.status, "status"), (self.model, "model"),
                                    (self.operator, "operator")):  # fmt: skip
                options = [_ALL, *map(str, facet_values(rows, column))]
                keep = control.value if control.value in options else _ALL
                control.options = options
                control.value = keep
                control.layout.display = None if len(options) > 1 else "none"
        finally:
            self._busy = False
        self._apply(keep_page=True)

    def show_ids(self, ids: Iterable[str] | None) -> None:
        """Show only these rows (e.g. a chart selection); None shows everything again."""
        self._ids = None if ids is None else list(ids)
        self._apply()

    def go_page(self, number: int) -> None:
        """Show 0-based page `number` (clamped to the pages there are)."""
        pages = self._pages.n_pages if self._pages is not None else 1
        self.view.cursor = 0
        self.view.page = max(0, min(number, pages - 1))

    def jump_to(self, card_number: int) -> None:
        """Select 1-based card `card_number`, turning to its page."""
        if self._pages is None or self._pages.n_cards == 0:
            return
        index = max(0, min(int(card_number), self._pages.n_cards) - 1)
        self.view.page = index // self.view.page_size
        self.view.cursor = index % self.view.page_size

    def jump_to_row(self, row_id: str) -> bool:
        """Select the card holding `row_id`; False when the current filter hides it."""
        index = self._pages.card_number(row_id) if self._pages is not None else None
        if index is None:
            return False
        self.jump_to(index + 1)
        return True

    @property
    def query(self) -> RunQuery:
        """The RunQuery the controls describe (sorting is applied per card by CardPages)."""

        def pick(w: W.Dropdown) -> str | None:
            return None if w.value == _ALL else w.value

        return RunQuery(
            stage=pick(self.stage), status=pick(self.status), model=pick(self.model),
            operator=pick(self.operator), search=self.search.value.strip(), regex=self.regex.value,
            ids=None if self._ids is None else tuple(self._ids), flagged=True if self.flagged_only.value else None,
        )  # fmt: skip

    # -- internals -------------------------------------------------------------------------------
    def _apply(self, keep_page: bool = False) -> None:
        if self._busy:
            return
        self.error.value = ""
        try:
            frame = self._frame
            if self.flagged_only.value:  # flags change between refreshes: read them from the live set
                frame = frame.with_columns(pl.col("id").is_in(list(self._flags)).alias("flagged"))
            frame = self.query.apply(frame) if frame.height else frame
            self._pages = CardPages(
                frame, size=self.view.page_size, sort_by=self.sort.value, descending=self.descending.value
            )
        except ValueError as exc:
            self.error.value = f"<span style='color:#b00'>{exc}</span>"
            return
        target = min(self.view.page if keep_page else 0, self._pages.n_pages - 1)
        self.view.total = self._pages.n_cards
        self.view.page_count = self._pages.n_pages
        self.jump.max = max(1, self._pages.n_cards)
        if not keep_page:
            self.view.cursor = 0
        if self.view.page == target:
            self._render()
        else:
            self.view.page = target  # the page observer renders

    def _render(self) -> None:
        t0 = time.perf_counter()
        pages = self._pages
        if pages is None:
            return
        number = self.view.page
        cards = [
            build_card(
                key, number * pages.size + i + 1, part.to_dicts(), flags=self._flags, parents=self._parents
            )
            for i, (key, part) in enumerate(pages.page(number))
        ]
        self.view.cursor = min(self.view.cursor, max(0, len(cards) - 1))
        self.view.cards = cards
        self.view.message = "" if cards else "No rows match: loosen the filters or clear the search."
        self.page_label.value = (
            f"page {number + 1}/{pages.n_pages} · {pages.n_cards} cards · {pages.rows.height} rows"
        )
        self.prev_button.disabled = number == 0
        self.next_button.disabled = number >= pages.n_pages - 1
        self.last_render_s = time.perf_counter() - t0

    def _on_page_size(self, change: dict[str, Any]) -> None:
        self.view.page_size = int(change["new"])
        self._apply()

    def _on_action(self, name: str, card_key: str, row_id: str | None) -> None:
        if name != "flag" or not row_id:
            return
        on = row_id not in self._flags
        self.session.store.set_label(
            row_id, "flag", True if on else None
        )  # saved in the run, not the browser
        (self._flags.add if on else self._flags.discard)(row_id)
        self._render()

    def _on_session(self, what: str) -> None:
        if what in ("rows", "run"):
            self.refresh()
