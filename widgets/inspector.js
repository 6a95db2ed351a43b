// Inspector card view (anywidget ESM). Shows ONE page of generic cards sent by Python and handles the
// keyboard inside the view; every key it handles stops here (stopPropagation) so JupyterLab's own
// shortcuts (j/k move cells, f find, a/b insert...) never fire while the inspector has focus.
//
// Keys: j / ↓ next card · k / ↑ previous card · → / l next item · ← / h previous item
//       n / PageDown next page · p / PageUp previous page · f flag (or an action's own key)
//       g jump to a card number · ? show or hide the list of keys (also the "? keys" button) · Esc hides it

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text); // never innerHTML: texts are model output
  return node;
}

function chips(meta) {
  const box = el("span", "wb-chips");
  for (const [label, value] of meta || []) {
    const chip = el("span", "wb-chip");
    chip.appendChild(el("b", null, label));
    if (value !== "" && value !== null && value !== undefined) chip.appendChild(document.createTextNode(" " + value));
    box.appendChild(chip);
  }
  return box;
}

// A conversation as chat bubbles: user on the right, assistant on the left, system centred; hovering a
// bubble shows which step, model and seed wrote that turn (its provenance line, set as text).
const ROLES = ["user", "assistant", "system"];
function chat(messages) {
  const box = el("div", "wb-chat");
  for (const message of messages) {
    const role = ROLES.includes(message.role) ? message.role : "other";
    const bubble = el("div", "wb-bubble wb-bubble-" + role);
    bubble.title = `${message.role}: ${message.source || ""}`;
    bubble.append(el("div", "wb-bubble-role", message.role), el("div", "wb-bubble-text", message.content));
    box.appendChild(bubble);
  }
  return box;
}

function render({ model, el: host }) {
  const root = el("div", "wb-inspector");
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true"); // Lumino skips shortcut matching inside
  const bar = el("div", "wb-bar");
  const status = el("span", "wb-status");
  const keysButton = el("button", "wb-keys-button", "? keys");
  keysButton.type = "button";
  keysButton.title = "Show the keyboard keys of this view.";
  const help = el("div", "wb-help");
  help.setAttribute("role", "dialog");
  help.setAttribute("aria-label", "keyboard keys");
  const jumpBox = el("input", "wb-jump");
  jumpBox.type = "number";
  jumpBox.min = "1";
  jumpBox.placeholder = "card #";
  jumpBox.style.display = "none";
  bar.append(status, jumpBox, keysButton);
  const message = el("div", "wb-message");
  const list = el("div", "wb-cards");
  root.append(bar, help, message, list);
  host.appendChild(root);

  const get = (name) => model.get(name);
  const cards = () => get("cards") || [];

  function send(action, card, itemId) {
    model.send({ type: "action", name: action.name, card: card.key, item: itemId });
  }

  function setCursor(cursor, itemCursor = 0) {
    model.set("cursor", cursor);
    model.set("item_cursor", itemCursor);
    model.save_changes();
  }

  function turnPage(page, cursor) {
    if (page < 0 || page >= get("page_count")) return;
    model.set("page", page);
    model.set("cursor", cursor);
    model.set("item_cursor", 0);
    model.save_changes();
  }

  function actionButton(action, card, itemId, activeList) {
    const button = el("button", "wb-action " + (action.class || ""), action.label || action.name);
    button.type = "button";
    button.title = action.key ? `${action.name} (${action.key})` : action.name;
    if ((activeList || []).includes(action.name)) button.classList.add("wb-active");
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      send(action, card, itemId);
      root.focus();
    });
    return button;
  }

  const BASE_KEYS = [
    ["j / ↓", "next card"],
    ["k / ↑", "previous card"],
    ["l / →", "next answer in the card"],
    ["h / ←", "previous answer in the card"],
    ["n / PageDown", "next page"],
    ["p / PageUp", "previous page"],
    ["g", "jump to a card number"],
    ["?", "show or hide this list"],
    ["Esc", "hide this list"],
  ];

  function drawKeys() {
    const rows = [...BASE_KEYS];
    for (const action of get("actions") || []) {
      if (action.key) rows.splice(rows.length - 2, 0, [action.key, action.label || action.name]);
    }
    help.replaceChildren(el("div", "wb-help-title", "Keys (click a card first)"));
    const table = el("table");
    for (const [key, what] of rows) {
      const tr = el("tr");
      const kbd = el("td");
      kbd.appendChild(el("kbd", null, key));
      tr.append(kbd, el("td", null, what));
      table.appendChild(tr);
    }
    help.appendChild(table);
  }

  function toggleKeys(show) {
    const open = show === undefined ? !help.classList.contains("wb-help-open") : show;
    if (open) drawKeys();
    help.classList.toggle("wb-help-open", open);
    keysButton.classList.toggle("wb-active", open);
  }

  keysButton.addEventListener("click", (event) => {
    event.stopPropagation();
    toggleKeys();
    root.focus();
  });

  function draw() {
    const all = cards();
    const cursor = Math.min(get("cursor"), Math.max(0, all.length - 1));
    const itemCursor = get("item_cursor");
    const actions = get("actions") || [];
    status.textContent = all.length
      ? `card ${all[cursor].number} of ${get("total")} · page ${get("page") + 1}/${get("page_count")}`
      : `0 cards`;
    message.textContent = get("message") || "";
    list.replaceChildren();
    all.forEach((card, index) => {
      const node = el("div", "wb-card");
      node.dataset.key = card.key;
      if (index === cursor) node.classList.add("wb-selected");
      node.addEventListener("click", () => {
        if (index !== get("cursor")) setCursor(index);
        root.focus();
      });
      const head = el("div", "wb-card-head");
      head.append(el("span", "wb-num", `#${card.number}`), el("span", "wb-title", card.title), chips(card.meta));
      const items = card.items || [];
      for (const action of actions) {
        if (action.scope === "card" || (!items.length && card.id)) {
          head.appendChild(actionButton(action, card, card.id || null, card.active));
        }
      }
      node.appendChild(head);
      if (card.messages && card.messages.length) node.appendChild(chat(card.messages));
      else node.appendChild(el("div", "wb-prompt", card.prompt));
      if (card.lineage && card.lineage.length) {
        const details = el("details", "wb-lineage");
        details.appendChild(el("summary", null, `lineage (${card.lineage.length} earlier)`));
        const ol = el("ol");
        for (const link of card.lineage) {
          const li = el("li");
          li.append(el("b", null, link.label + ": "), document.createTextNode(link.text));
          ol.appendChild(li);
        }
        details.appendChild(ol);
        node.appendChild(details);
      }
      if (items.length) {
        const grid = el("div", "wb-items");
        items.forEach((item, j) => {
          const box = el("div", "wb-item wb-status-" + (item.status || "kept"));
          if (index === cursor && j === Math.min(itemCursor, items.length - 1)) box.classList.add("wb-focused");
          box.addEventListener("click", (event) => {
            event.stopPropagation();
            setCursor(index, j);
            root.focus();
          });
          const ihead = el("div", "wb-item-head");
          ihead.append(el("span", "wb-item-title", item.title), chips(item.meta));
          for (const action of actions) {
            if (action.scope !== "card") ihead.appendChild(actionButton(action, card, item.id, item.active));
          }
          box.append(ihead, el("div", "wb-text", item.text));
          grid.appendChild(box);
        });
        node.appendChild(grid);
      }
      list.appendChild(node);
    });
    const selected = list.children[cursor];
    if (selected && root.contains(document.activeElement)) selected.scrollIntoView({ block: "nearest" });
  }

  function focusedTarget() {
    const all = cards();
    const card = all[Math.min(get("cursor"), all.length - 1)];
    if (!card) return [null, null];
    const items = card.items || [];
    if (!items.length) return [card, card.id || null];
    return [card, items[Math.min(get("item_cursor"), items.length - 1)].id];
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return; // leave Ctrl+S etc. to JupyterLab
    if (event.target === jumpBox) {
      event.stopPropagation();
      if (event.key === "Enter") {
        const number = parseInt(jumpBox.value, 10);
        if (number > 0) model.send({ type: "jump", number });
        jumpBox.style.display = "none";
        root.focus();
      } else if (event.key === "Escape") {
        jumpBox.style.display = "none";
        root.focus();
      }
      return;
    }
    const all = cards();
    const cursor = get("cursor");
    const page = get("page");
    const nItems = ((all[cursor] || {}).items || []).length;
    let handled = true;
    switch (event.key) {
      case "j":
      case "ArrowDown":
        if (cursor + 1 < all.length) setCursor(cursor + 1);
        else turnPage(page + 1, 0);
        break;
      case "k":
      case "ArrowUp":
        if (cursor > 0) setCursor(cursor - 1);
        else turnPage(page - 1, get("page_size") - 1); // every earlier page is full
        break;
      case "l":
      case "ArrowRight":
        setCursor(cursor, Math.min(get("item_cursor") + 1, Math.max(0, nItems - 1)));
        break;
      case "h":
      case "ArrowLeft":
        setCursor(cursor, Math.max(0, get("item_cursor") - 1));
        break;
      case "n":
      case "PageDown":
        turnPage(page + 1, 0);
        break;
      case "p":
      case "PageUp":
        turnPage(page - 1, 0);
        break;
      case "g":
        jumpBox.style.display = "";
        jumpBox.value = "";
        jumpBox.focus();
        break;
      case "?":
        toggleKeys();
        break;
      case "Escape":
        if (help.classList.contains("wb-help-open")) toggleKeys(false);
        else handled = false;
        break;
      default: {
        const action = (get("actions") || []).find((a) => a.key && a.key === event.key);
        if (action) {
          const [card, id] = focusedTarget();
          if (card) send(action, card, action.scope === "card" ? card.id || null : id);
        } else {
          handled = false;
        }
      }
    }
    // Every plain key pressed inside the view stays inside it, handled or not, so a stray "a", "b",
    // "x" or "d" never edits the notebook behind the inspector.
    event.stopPropagation();
    if (handled) event.preventDefault();
  }

  root.addEventListener("keydown", onKey);
  const names = ["cards", "cursor", "item_cursor", "page", "page_count", "total", "message", "actions"];
  for (const name of names) model.on(`change:${name}`, draw);
  draw();
  return () => {
    root.removeEventListener("keydown", onKey);
    for (const name of names) model.off(`change:${name}`, draw);
  };
}

export default { render };
