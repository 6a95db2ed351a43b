"""What every app browser test does first: a one-cell notebook that builds the app, opened in JupyterLab,
run, and the app's tabs on screen (used with the `lab_server` and `browser` fixtures of conftest.py)."""

from __future__ import annotations

import json
from typing import Any

WAIT = 120_000  # ms: a widget round trip under a loaded 2-core machine


def one_cell_notebook(source: str) -> str:
    """A notebook (JSON text) whose only cell is `source`, on the python3 kernel."""
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}
    return json.dumps({"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
                       "nbformat": 4, "nbformat_minor": 5})  # fmt: skip


def open_app(lab_server: Any, browser: Any, name: str, source: str, *, width: int = 1280, height: int = 1800) -> Any:
    """Write `source` as notebook `name`, open it, run its cell and wait for the app's tabs (or the cell's
    traceback, which fails at once with the cell's output). Returns (context, page); the context is closed
    here if opening fails, by the caller otherwise."""
    (lab_server.root / name).write_text(one_cell_notebook(source))
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(lab_server.page_url(f"/lab/tree/{name}?reset"))
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=WAIT)
        page.wait_for_selector(".jp-StatusBar-Widget:has-text('Python 3 (ipykernel) | Idle')", timeout=WAIT)
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_selector(".wb-app .wb-tabs, .jp-OutputArea-output:has-text('Traceback')", timeout=WAIT)
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        assert not any("Traceback" in text for text in outputs), outputs
    except BaseException:
        context.close()
        raise
    return context, page


def open_tab(page: Any, title: str) -> None:
    """Click the app's top-level tab `title`."""
    page.locator(".wb-app > .wb-tabs > .lm-TabBar .lm-TabBar-tab", has_text=title).first.click()
