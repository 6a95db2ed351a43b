"""The inspector, headless: set traits, click buttons, send the messages the browser would send."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import polars as pl
import pytest

from widgets.inspector import FLAG_ACTION, InspectorPanel, InspectorView
from workbench.engine import FakeBackend
from workbench.generate.evolve import EvolveConfig, run_evolution
from workbench.runs.query import load_predictions
from workbench.session import Session

WIDGETS = Path(__file__).resolve().parents[2] / "widgets"
MODELS = ["davinci-self-instruct", "davinci-t0-ft", "text-davinci-001", "text-davinci-003"]


@pytest.fixture
def session(tmp_path, shared_data) -> Session:
    s = Session(FakeBackend(), runs_root=tmp_path, run="predictions")
    load_predictions(shared_data, store=s.store)
    return s


def test_opens_on_one_page_of_cards_with_all_models_side_by_side(session):
    panel = InspectorPanel(session, page_size=10)
    view = panel.view
    assert view.total == 252 and view.page_count == 26
    assert len(view.cards) == 10  # only one page goes to the browser
    card = view.cards[0]
    assert [c["number"] for c in view.cards] == list(range(1, 11))
    assert sorted(i["title"] for i in card["items"]) == MODELS
    first = session.store.rows().row(0, named=True)
    assert card["prompt"].startswith(first["instruction"])
    assert len(json.dumps(view.cards)) < 200_000  # a page, not the run


def test_page_buttons_jump_and_page_size(session):
    panel = InspectorPanel(session)
    view = panel.view
    assert panel.prev_button.disabled
    panel.next_button.click()
    assert view.page == 1 and view.cards[0]["number"] == 11
    view.handle_message({"type": "jump", "number": 250})  # what `g 250 Enter` sends
    assert view.page == 24 and view.cards[view.cursor]["number"] == 250
    panel.next_button.click()
    assert view.page == 25 and len(view.cards) == 2 and panel.next_button.disabled
    panel.next_button.click()
    assert view.page == 25
    view.page = 3  # the browser turning pages (j past the last card) sets the trait
    assert view.cards[0]["number"] == 31
    panel.page_size.value = 50
    assert view.page_count == 6 and len(view.cards) == 50 and view.page == 0


def test_filters_search_and_sort_are_bound_to_the_query_api(session):
    panel = InspectorPanel(session)
    view = panel.view
    assert list(panel.model.options) == ["(all)", *MODELS]
    panel.model.value = "davinci-t0-ft"
    assert view.total == 252 and all(len(c["items"]) == 1 for c in view.cards)
    panel.status.value = "dropped"  # t0-ft's empty answers
    assert 0 < view.total < 252
    assert all(c["items"][0]["text"] == "" for c in view.cards)
    panel.status.value = "(all)"
    panel.model.value = "(all)"
    panel.search.value = "RECIPE"
    hits = view.total
    assert 0 < hits < 252
    assert all("recipe" in json.dumps(c).lower() for c in view.cards)
    panel.search.value = "recip[ae]"
    assert view.total == 0  # literal by default
    panel.regex.value = True
    assert view.total == hits
    panel.search.value = "(("
    assert "regular expression" in panel.error.value
    panel.search.value = ""
    panel.regex.value = False
    assert panel.error.value == "" and view.total == 252
    panel.sort.value = "length"
    panel.descending.value = True
    lengths = [sum(len(i["text"]) for i in c["items"]) for c in view.cards]
    assert lengths == sorted(lengths, reverse=True)


def test_flags_are_saved_into_the_run(session):
    panel = InspectorPanel(session)
    view = panel.view
    card = view.cards[2]
    item = card["items"][1]
    view.handle_message({"type": "action", "name": "flag", "card": card["key"], "item": item["id"]})
    assert session.store.label_values("flag") == {item["id"]: True}
    assert view.cards[2]["items"][1]["active"] == ["flag"]
    panel.flagged_only.value = True
    assert view.total == 1 and view.cards[0]["key"] == card["key"]
    # a fresh panel (or a restarted kernel) sees the flag: it lives in the run, not the browser
    again = InspectorPanel(Session(FakeBackend(), runs_root=session.runs_root, run="predictions"))
    flagged = [i for c in again.view.cards for i in c["items"] if i["active"]]
    assert [i["id"] for i in flagged] == [item["id"]]
    view.handle_message({"type": "action", "name": "flag", "card": card["key"], "item": item["id"]})
    assert session.store.label_values("flag") == {}


def test_show_ids_restricts_and_clears(session):
    panel = InspectorPanel(session)
    ids = session.store.rows().filter(pl.col("model") == "text-davinci-003")["id"].to_list()[5:8]
    panel.show_ids(ids)
    assert panel.view.total == 3
    assert {i["id"] for c in panel.view.cards for i in c["items"]} == set(ids)
    assert panel.jump_to_row(ids[2]) and panel.view.cards[panel.view.cursor]["items"][0]["id"] == ids[2]
    panel.show_ids(None)
    assert panel.view.total == 252


def test_a_chart_filter_is_shown_and_can_be_cleared(session):
    """Issue 18.3: after a click on a Diversity bar the inspector showed "3 cards · 3 rows" with no
    word about a chart filter and no way to clear it; its own refresh kept the filter silently."""
    panel = InspectorPanel(session)
    cleared: list[bool] = []
    panel.on_clear_ids(lambda: cleared.append(True))
    assert panel.chart_filter.layout.display == "none"  # nothing to show without a filter
    ids = session.store.rows().filter(pl.col("model") == "text-davinci-003")["id"].to_list()[:3]
    panel.show_ids(ids, source="shape chart: verb=write")
    assert panel.view.total == 3
    assert panel.chart_filter.layout.display != "none"
    note = panel.chart_filter_label.value
    assert "filtered by a chart selection" in note and "verb=write" in note and "3 of 1008 rows" in note
    assert "filtered by chart" in panel.page_label.value
    panel.refresh()  # the inspector's own refresh keeps the filter, and keeps saying so
    assert panel.view.total == 3 and "verb=write" in panel.chart_filter_label.value
    panel.clear_ids_button.click()
    assert panel.view.total == 252 and panel.chart_filter.layout.display == "none"
    assert "filtered" not in panel.page_label.value
    assert cleared == [True]  # the dashboard is told, so its "rows selected" note goes too


def test_refreshes_when_the_session_says_rows_changed(tmp_path):
    session = Session(FakeBackend(), runs_root=tmp_path, run="evo")
    panel = InspectorPanel(session)
    assert panel.view.total == 0 and "No rows" in panel.view.message
    seeds = pl.DataFrame({"id": ["s1"], "instruction": ["Write a poem about the sea."]})
    responder = lambda req: "Write a poem about the sea at night, in exactly four lines."  # noqa: E731
    run_evolution(
        FakeBackend(responder=responder),
        session.store,
        seeds,
        EvolveConfig(operators=("deepen",), generations=2),
    )
    session.notify_rows_changed()
    view = panel.view
    assert view.total == 2 and view.message == ""
    second = view.cards[1]
    assert second["id"] is not None and second["items"] == []
    assert [link["label"] for link in second["lineage"]] == ["gen 0", "gen 1 · deepen"]
    assert second["lineage"][0]["text"] == "Write a poem about the sea."
    assert list(panel.operator.options) == ["(all)", "deepen"]
    # a card with no completions is flagged as a whole
    view.handle_message({"type": "action", "name": "flag", "card": second["key"], "item": second["id"]})
    assert view.cards[1]["active"] == ["flag"]


def test_view_is_reusable_with_extra_actions():
    view = InspectorView(actions=[{"name": "prefer", "label": "A is better", "key": "1", "scope": "card"}])
    got = []
    view.on_action(lambda name, card, item: got.append((name, card, item)))
    view.cards = [
        {
            "key": "k1",
            "number": 1,
            "id": None,
            "title": "t",
            "prompt": "p",
            "meta": [],
            "lineage": [],
            "active": [],
            "items": [],
        }
    ]
    view.handle_message({"type": "action", "name": "prefer", "card": "k1", "item": None})
    assert got == [("prefer", "k1", None)]


def test_browser_contract_classes_and_keyboard_isolation():
    js = (WIDGETS / "inspector.js").read_text()
    css = (WIDGETS / "inspector.css").read_text()
    for cls in ("wb-inspector", "wb-card", "wb-flag"):
        assert f".{cls}" in css
    assert FLAG_ACTION["class"] == "wb-flag" and "action.class" in js  # flag buttons carry the class
    assert 'el("div", "wb-inspector")' in js and 'el("div", "wb-card")' in js
    assert "stopPropagation" in js and "data-lm-suppress-shortcuts" in js
    assert "innerHTML" not in js.replace("never innerHTML", "")  # model output is set as text only


CHROMIUM = Path("/usr/bin/chromium")
FAKE_MODEL = """
window.sent = []; window.leaked = [];
document.addEventListener("keydown", (e) => window.leaked.push(e.key));  // stands in for JupyterLab
const listeners = {};
window.state = %s;
window.model = {
  get: (k) => window.state[k],
  set: (k, v) => { window.state[k] = v; },
  save_changes: () => { for (const k of Object.keys(window.state)) (listeners["change:" + k] || []).forEach((f) => f()); },
  send: (m) => window.sent.push(m),
  on: (e, f) => { (listeners[e] = listeners[e] || []).push(f); },
  off: () => {},
};
"""


@pytest.mark.e2e
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no system chromium at /usr/bin/chromium")
def test_keyboard_in_a_real_browser_stays_inside_the_view():
    """Runs inspector.js in Chromium against a stand-in model: navigation, flagging, and no key leaks."""
    playwright = pytest.importorskip("playwright.sync_api")
    items = [
        {
            "id": f"c{i}",
            "title": f"model{i}",
            "text": "<b>not bold</b>",
            "meta": [["seed", str(i)]],
            "status": "kept",
            "active": [],
        }
        for i in range(2)
    ]
    cards = [
        {"key": f"p{n}", "number": n + 1, "id": None, "title": f"prompt {n}", "prompt": "Say hi", "meta": [],
         "lineage": [{"label": "gen 0", "text": "root"}], "active": [], "items": items}
        for n in range(3)
    ]  # fmt: skip
    state = {"cards": cards, "actions": [FLAG_ACTION], "page": 0, "page_count": 2, "page_size": 3, "total": 5,
             "cursor": 0, "item_cursor": 0, "message": ""}  # fmt: skip
    js = (
        (WIDGETS / "inspector.js")
        .read_text()
        .replace("export default { render };", "window.renderInspector = render;")
    )
    def in_browser() -> None:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_content("<html><body><div id='host'></div></body></html>")
            page.add_script_tag(content=FAKE_MODEL % json.dumps(state))
            page.add_script_tag(content=js)
            # keep the cleanup function: Playwright would call a function that evaluate() returns
            page.evaluate(
                "window.cleanup = window.renderInspector({model: window.model, el: document.getElementById('host')}); 1"
            )
            assert page.locator(".wb-inspector .wb-card").count() == 3
            assert page.locator(".wb-card b", has_text="not bold").count() == 0  # model text is never HTML
            page.locator(".wb-inspector").focus()
            page.keyboard.press("j")
            assert page.evaluate("window.state.cursor") == 1
            page.keyboard.press("ArrowDown")
            page.keyboard.press("j")  # past the last card: next page
            assert page.evaluate("[window.state.page, window.state.cursor]") == [1, 0]
            page.keyboard.press("k")  # before the first card: previous page, its last card
            assert page.evaluate("[window.state.page, window.state.cursor]") == [0, 2]
            page.keyboard.press("ArrowRight")
            page.keyboard.press("f")
            assert page.evaluate("window.sent") == [
                {"type": "action", "name": "flag", "card": "p2", "item": "c1"}
            ]
            page.keyboard.press("a")  # JupyterLab's "insert cell above" must not see it
            page.keyboard.press("g")
            page.keyboard.type("4")
            page.keyboard.press("Enter")
            assert page.evaluate("window.sent[1]") == {"type": "jump", "number": 4}
            assert page.evaluate("window.leaked") == []
            page.keyboard.press("Control+s")  # modifier shortcuts still reach JupyterLab
            assert page.evaluate("window.leaked") == ["Control", "s"]
            page.locator(".wb-card").nth(0).locator(".wb-flag").nth(0).click()
            assert page.evaluate("window.sent[2]") == {
                "type": "action",
                "name": "flag",
                "card": "p0",
                "item": "c0",
            }
            assert errors == []
            browser.close()

    # Playwright's sync API refuses to start where an asyncio loop is marked running (executing the
    # notebooks with nbclient leaves one in the main thread); a fresh thread has none.
    run_in_fresh_thread(in_browser)


@pytest.mark.e2e
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no system chromium at /usr/bin/chromium")
def test_question_mark_shows_the_keys_in_a_real_browser():
    """Issue 18.7: "?" in the inspector showed nothing. It (and a "? keys" button) shows every key,
    the view's own action keys included; "?" again or Esc hides the list."""
    playwright = pytest.importorskip("playwright.sync_api")
    card = {"key": "p0", "number": 1, "id": None, "title": "t", "prompt": "Say hi", "meta": [], "lineage": [],
            "active": [], "items": [{"id": "c0", "title": "m", "text": "hi", "meta": [], "status": "kept", "active": []}]}  # fmt: skip
    state = {"cards": [card], "actions": [FLAG_ACTION], "page": 0, "page_count": 1, "page_size": 10, "total": 1,
             "cursor": 0, "item_cursor": 0, "message": ""}  # fmt: skip
    js = (WIDGETS / "inspector.js").read_text().replace("export default { render };", "window.renderInspector = render;")

    def in_browser() -> None:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_content("<html><body><div id='host'></div></body></html>")
            page.add_script_tag(content=FAKE_MODEL % json.dumps(state))
            page.add_style_tag(content=(WIDGETS / "inspector.css").read_text())  # what anywidget loads with it
            page.add_script_tag(content=js)
            page.evaluate("window.cleanup = window.renderInspector({model: window.model, el: document.getElementById('host')}); 1")
            keys = page.locator(".wb-inspector .wb-help")
            assert not keys.is_visible()
            page.locator(".wb-inspector .wb-card .wb-prompt").click()
            page.keyboard.press("?")
            keys.wait_for(state="visible", timeout=5000)
            text = keys.inner_text()
            for expected in ("next card", "previous page", "jump to a card number", "⚑ flag"):
                assert expected in text, text
            page.keyboard.press("Escape")
            keys.wait_for(state="hidden", timeout=5000)
            page.locator(".wb-inspector .wb-keys-button").click()
            keys.wait_for(state="visible", timeout=5000)
            page.keyboard.press("?")
            keys.wait_for(state="hidden", timeout=5000)
            assert [k for k in page.evaluate("window.leaked") if k != "Shift"] == []
            assert errors == []
            browser.close()

    run_in_fresh_thread(in_browser)


def run_in_fresh_thread(fn, timeout_s: float = 300.0) -> None:
    """Run `fn` in a new thread and re-raise what it raised."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)

    worker = threading.Thread(target=target, name="playwright-sync")
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"browser check did not finish within {timeout_s}s"
    if failure:
        raise failure[0]


def test_hiding_an_unused_filter_hides_only_that_filter(session):
    """The stage, status, model and operator filters, sort and page size shared one Layout, so hiding the
    operator filter (no evolved rows) hid every dropdown of the panel (seen in the real app's Inspect tab)."""
    panel = InspectorPanel(session)
    assert panel.operator.layout.display == "none"  # no Evol-Instruct rows in this run
    assert panel.model.layout.display != "none"  # four models: a filter worth showing
    assert panel.sort.layout.display != "none" and panel.page_size.layout.display != "none"
