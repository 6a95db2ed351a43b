"""Small layout helpers every panel shares: readable labels and one-sentence tooltips.

ipywidgets gives every description a fixed 80-100 px column and every button a fixed width, so longer
labels are cut off ("temperat…", "Answer instruc…"). `tip` gives a control its tooltip and lets its
label take the width it needs; the app's tests walk the widget tree and require a tooltip everywhere.
"""

from __future__ import annotations

import html
from typing import TypeVar

import ipywidgets as W

__all__ = ["controls_in", "row", "tip", "tips"]

_Widget = TypeVar("_Widget", bound=W.DOMWidget)


def error_html(message: str) -> str:
    """A message in a panel's error area (red, escaped; class `wb-error` for the browser tests)."""
    return f"<span class='wb-error' style='color:#b00020'>{html.escape(message)}</span>"


def tip(widget: _Widget, tooltip: str) -> _Widget:
    """Set `widget`'s one-sentence tooltip and size its label (or a button) to its text."""
    widget.tooltip = tooltip
    if isinstance(widget, W.Button):
        if widget.layout.width is None:
            widget.layout.width = "auto"
        widget.layout.flex = "0 0 auto"  # a crowded row wraps instead of squeezing the button's text
    elif hasattr(widget, "style") and hasattr(widget.style, "description_width"):
        widget.style.description_width = "initial"
    return widget


def tips(pairs: tuple[tuple[W.DOMWidget, str], ...]) -> None:
    """`tip` for each (control, tooltip) pair: a panel lists its controls' tooltips in one place."""
    for widget, tooltip in pairs:
        tip(widget, tooltip)


def row(children: list[W.Widget], **layout: str) -> W.HBox:
    """A row of controls that wraps onto the next line when the notebook is narrow (never scrolls
    sideways, never squeezes a label)."""
    return W.HBox(children, layout=W.Layout(flex_flow="row wrap", align_items="center", **layout))


def controls_in(root: W.Widget) -> list[W.DOMWidget]:
    """Every control (a value widget or a button) under `root`, depth first."""
    out: list[W.DOMWidget] = []
    stack = [root]
    seen: set[int] = set()
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        if isinstance(w, (W.Button, W.ValueWidget)) and not isinstance(w, (W.HTML, W.Label, W.FloatProgress)):
            out.append(w)
        stack.extend(reversed(list(getattr(w, "children", ()) or ())))
    return out
