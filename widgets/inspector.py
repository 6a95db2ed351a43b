"""The inspector: read a run one prompt at a time, its k completions side by side.

`InspectorView` is a generic anywidget card view (ESM in inspector.js): it shows the `cards` of ONE
page, handles keyboard navigation inside the browser (never letting keys reach JupyterLab), and sends
actions (flag, or any extra button) back to Python. `InspectorPanel` wraps it with ipywidgets
controls bound to `workbench.runs.query` (filter, sort, search, paging) and saves flags into the run.

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

import html
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as W
import polars as pl
import traitlets as T

from widgets.inspector_cards import build_card
from widgets.ui import row, tip
from workbench.generate.evolve import LineageIndex
from workbench.runs.query import CardPages, RunQuery, facet_values
from workbench.session import Session

__all__ = ["FLAG_ACTION", "InspectorPanel", "InspectorView", "build_card"]

_HERE = Path(__file__).parent
FLAG_ACTION = {"name": "flag", "label": "⚑ flag", "key": "f", "class": "wb-flag", "scope": "item"}
_ALL = "(all)"
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
        def dd() -> dict[str, W.Layout]:  # one Layout per control: hiding one filter must not hide the others
            return {"layout": W.Layout(width="auto")}

        self.stage = tip(W.Dropdown(description="stage", options=[_ALL], **dd()),
                         "Show only rows of this pipeline stage (seeds, instructions, answers, judgments).")  # fmt: skip
        self.status = tip(W.Dropdown(description="status", options=[_ALL], **dd()),
                          "Show only rows the filters kept, dropped, or that failed.")  # fmt: skip
        self.model = tip(W.Dropdown(description="model", options=[_ALL], **dd()),
                         "Show only rows written by this model.")  # fmt: skip
        self.operator = tip(W.Dropdown(description="operator", options=[_ALL], **dd()),
                            "Show only prompts made by this Evol-Instruct rewrite.")  # fmt: skip
        self.search = tip(W.Text(placeholder="search text…", continuous_update=False, layout=W.Layout(width="220px")),
                          "Show only rows whose text contains this (press Enter).")  # fmt: skip
        self.regex = tip(W.Checkbox(description="regex", indent=False, layout=W.Layout(width="auto")),
                         "Read the search text as a regular expression.")  # fmt: skip
        self.flagged_only = tip(W.Checkbox(description="flagged only", indent=False, layout=W.Layout(width="auto")),
                                "Show only rows you flagged with f.")  # fmt: skip
        self.sort = tip(W.Dropdown(description="sort", options=_SORTS, value="none", **dd()),
                        "Order the answers inside each card by this column.")  # fmt: skip
        self.descending = tip(W.Checkbox(description="descending", indent=False, layout=W.Layout(width="auto")),
                              "Sort from the largest value down.")  # fmt: skip
        self.prev_button = tip(W.Button(description="◀ prev"), "Show the previous page of cards (key p).")
        self.next_button = tip(W.Button(description="next ▶"), "Show the next page of cards (key n).")
        self.page_label = W.HTML()
        self.page_label.add_class("wb-inspector-pages")
        self.jump = tip(W.BoundedIntText(value=1, min=1, max=1, description="go to card", layout=W.Layout(width="170px")),
                        "The number of a card to jump to (key g in the cards).")  # fmt: skip
        self.jump_button = tip(W.Button(description="go"), "Jump to the card number on the left.")
        self.page_size = tip(W.Dropdown(options=[5, 10, 20, 50], value=page_size, description="per page", **dd()),
                             "How many cards one page shows.")  # fmt: skip
        self.refresh_button = tip(W.Button(description="refresh", icon="refresh"),
                                  "Re-read the run's rows and flags (a chart filter stays until you clear it).")  # fmt: skip
        self.chart_filter_label = W.HTML()
        self.clear_ids_button = tip(W.Button(description="Show all rows", icon="times"),
                                    "Clear the chart selection's filter and show every row again.")  # fmt: skip
        self.clear_ids_button.add_class("wb-inspector-clear-ids")
        self.chart_filter = W.HBox([self.chart_filter_label, self.clear_ids_button],
                                   layout=W.Layout(display="none", align_items="center"))  # fmt: skip
        self.chart_filter.add_class("wb-inspector-chart-filter")
        self._ids_source = ""
        self._clear_handlers: list[Callable[[], None]] = []
        self.clear_ids_button.on_click(lambda _b: self.clear_ids())
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
        filters = row([self.stage, self.status, self.model, self.operator])
        finder = row([self.search, self.regex, self.flagged_only, self.sort, self.descending])
        pager = row([self.prev_button, self.next_button, self.page_label, self.jump, self.jump_button,
                        self.page_size, self.refresh_button])  # fmt: skip
        super().__init__([filters, finder, pager, self.chart_filter, self.error, self.view])
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

    def show_ids(self, ids: Iterable[str] | None, source: str = "") -> None:
        """Show only these rows (e.g. a chart selection, described by `source`); None shows everything
        again. While a filter is on, a note above the cards says so and offers to clear it."""
        self._ids = None if ids is None else list(ids)
        self._ids_source = source if ids is not None else ""
        self._apply()

    def clear_ids(self) -> None:
        """Drop the chart filter (the "Show all rows" button) and tell `on_clear_ids` listeners."""
        self.show_ids(None)
        for fn in list(self._clear_handlers):
            fn()

    def on_clear_ids(self, fn: Callable[[], None]) -> None:
        """Call `fn()` when a person clears the chart filter here (the dashboard forgets its selection)."""
        self._clear_handlers.append(fn)

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
            + (" · <b>filtered by chart</b>" if self._ids is not None else "")
        )
        self._show_chart_filter(pages.rows.height)
        self.prev_button.disabled = number == 0
        self.next_button.disabled = number >= pages.n_pages - 1
        self.last_render_s = time.perf_counter() - t0

    def _show_chart_filter(self, shown: int) -> None:
        if self._ids is None:
            self.chart_filter.layout.display = "none"
            self.chart_filter_label.value = ""
            return
        source = f" ({html.escape(self._ids_source)})" if self._ids_source else ""
        self.chart_filter_label.value = (
            f"<span class='wb-chart-filter-note'>⚠ <b>filtered by a chart selection</b>{source}: "
            f"showing {shown} of {self._frame.height} rows; other filters apply on top.</span>"
        )
        self.chart_filter.layout.display = "flex"

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
