"""The inspector shows a conversation as chat bubbles, user and assistant told apart, provenance on hover."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.widgets.test_inspector import CHROMIUM, FAKE_MODEL, WIDGETS, run_in_fresh_thread
from widgets.inspector import FLAG_ACTION, InspectorPanel
from widgets.inspector_cards import build_card, conversation_bubbles
from workbench.engine import FakeBackend
from workbench.generate import ConversationConfig, extend_conversations
from workbench.session import Session

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PARENTS = pl.DataFrame(
    {"id": ["c0"], "stage": ["completion"], "status": ["kept"], "instruction": ["Name a fruit."], "input": [""],
     "text": ["An apple."], "model": ["teacher"], "seed": [9]}
)  # fmt: skip


@pytest.fixture
def session(tmp_path) -> Session:
    s = Session(FakeBackend(chat_template=CHATML), runs_root=tmp_path, run="chats")
    extend_conversations(s.backend, PARENTS, ConversationConfig(turns=1, seed=2), store=s.store)
    return s


def test_a_conversation_card_carries_its_turns_with_provenance(session):
    row = session.store.rows().filter(pl.col("stage") == "conversation").row(0, named=True)
    card = build_card(row["id"], 1, [row])
    assert [m["role"] for m in card["messages"]] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in card["messages"]] == [m["content"] for m in row["messages"]]
    sources = [m["source"] for m in card["messages"]]
    assert sources[0] == "prompt · from row c0"
    assert sources[1] == "completion · teacher · seed 9 · from row c0"
    new = row["turn_sources"][2]
    assert sources[2] == f"user_simulator · fake · seed {new['seed']} · prompt {new['prompt_hash']}"
    assert sources[3].startswith("assistant · fake · seed ")
    assert ["turns", "2"] in card["meta"] and card["title"] == "Name a fruit."
    plain = build_card("c0", 1, [PARENTS.row(0, named=True)])
    assert "messages" not in plain  # other cards keep their shape


def test_the_panel_sends_conversation_cards(session):
    panel = InspectorPanel(session, page_size=5)
    chats = [c for c in panel.view.cards if c.get("messages")]
    assert len(chats) == 1 and len(chats[0]["messages"]) == 4
    assert conversation_bubbles({"messages": [{"role": "user", "content": "x"}]})[0]["source"] == "source unknown"


def test_bubble_styles_exist():
    css = (WIDGETS / "inspector.css").read_text()
    js = (WIDGETS / "inspector.js").read_text()
    for cls in ("wb-chat", "wb-bubble", "wb-bubble-user", "wb-bubble-assistant", "wb-bubble-system"):
        assert f".{cls}" in css
    assert "bubble.title" in js and "innerHTML" not in js.replace("never innerHTML", "")


@pytest.mark.e2e
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no system chromium at /usr/bin/chromium")
def test_bubbles_in_a_real_browser(session):
    playwright = pytest.importorskip("playwright.sync_api")
    row = session.store.rows().filter(pl.col("stage") == "conversation").row(0, named=True)
    card = build_card(row["id"], 1, [row])
    card["messages"][0]["content"] = "<b>not bold</b>"
    state = {"cards": [card], "actions": [FLAG_ACTION], "page": 0, "page_count": 1, "page_size": 5, "total": 1,
             "cursor": 0, "item_cursor": 0, "message": ""}  # fmt: skip
    js = (WIDGETS / "inspector.js").read_text().replace("export default { render };", "window.renderInspector = render;")

    def in_browser() -> None:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_content("<html><body><div id='host'></div></body></html>")
            page.add_style_tag(content=(WIDGETS / "inspector.css").read_text())
            page.add_script_tag(content=FAKE_MODEL % json.dumps(state))
            page.add_script_tag(content=js)
            page.evaluate("window.cleanup = window.renderInspector({model: window.model, el: document.getElementById('host')}); 1")
            bubbles = page.locator(".wb-card .wb-chat .wb-bubble")
            assert bubbles.count() == 4 and page.locator(".wb-card .wb-prompt").count() == 0
            classes = [bubbles.nth(i).get_attribute("class") for i in range(4)]
            assert classes == ["wb-bubble wb-bubble-user", "wb-bubble wb-bubble-assistant"] * 2
            assert bubbles.nth(1).get_attribute("title") == "assistant: completion · teacher · seed 9 · from row c0"
            assert page.locator(".wb-bubble b", has_text="not bold").count() == 0  # text, never HTML
            # user bubbles sit right, assistant bubbles left
            user_box, bot_box = bubbles.nth(0).bounding_box(), bubbles.nth(1).bounding_box()
            assert user_box is not None and bot_box is not None and user_box["x"] > bot_box["x"]
            assert errors == []
            browser.close()

    run_in_fresh_thread(in_browser)
