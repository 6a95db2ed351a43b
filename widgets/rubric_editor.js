// Rubric editor (anywidget ESM). The form edits a draft rubric (the `draft` trait); Python validates it,
// renders the judge prompt into `preview` and reports problems in `error`. The form is rebuilt only when
// the draft changes from Python (so typing is never interrupted); keys typed here never reach JupyterLab.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text); // never innerHTML
  return node;
}

function field(labelText, input) {
  const box = el("label", "wb-re-field");
  box.appendChild(el("span", "wb-re-label", labelText));
  box.appendChild(input);
  return box;
}

function render({ model, el: host }) {
  const root = el("div", "wb-rubric-editor");
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  const form = el("div", "wb-re-form");
  const side = el("div", "wb-re-side");
  const status = el("div", "wb-re-status");
  const error = el("div", "wb-re-error");
  const preview = el("pre", "wb-re-preview");
  side.append(status, error, el("div", "wb-re-label", "Judge prompt preview (first sample row)"), preview);
  root.append(form, side);
  host.appendChild(root);

  let lastSent = "";
  let timer = null;

  function readForm() {
    const levels = [];
    for (const row of form.querySelectorAll(".wb-re-level")) {
      levels.push({
        score: parseInt(row.querySelector(".wb-re-score").value, 10),
        description: row.querySelector(".wb-re-desc").value,
      });
    }
    const reference = form.querySelector(".wb-re-reference").value;
    return {
      name: form.querySelector(".wb-re-name").value,
      task_description: form.querySelector(".wb-re-task").value,
      criteria: form
        .querySelector(".wb-re-criteria")
        .value.split("\n")
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
      levels,
      reference_answer: reference.trim() ? reference : null,
      allow_ties: form.querySelector(".wb-re-ties").checked,
    };
  }

  function push() {
    const draft = readForm();
    lastSent = JSON.stringify(draft);
    model.set("draft", draft);
    model.save_changes();
  }

  function schedule() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(push, 250);
  }

  function levelRow(level) {
    const row = el("div", "wb-re-level");
    const score = el("input", "wb-re-score");
    score.type = "number";
    score.value = level.score;
    const desc = el("input", "wb-re-desc");
    desc.type = "text";
    desc.value = level.description || "";
    desc.placeholder = "what a response at this level looks like";
    const remove = el("button", "wb-re-remove", "−");
    remove.type = "button";
    remove.title = "remove this level";
    remove.addEventListener("click", () => {
      row.remove();
      push();
    });
    score.addEventListener("input", schedule);
    desc.addEventListener("input", schedule);
    row.append(score, desc, remove);
    return row;
  }

  function buildForm() {
    const d = model.get("draft") || {};
    form.replaceChildren();
    const name = el("input", "wb-re-name");
    name.value = d.name || "";
    const task = el("textarea", "wb-re-task");
    task.rows = 2;
    task.value = d.task_description || "";
    const criteria = el("textarea", "wb-re-criteria");
    criteria.rows = 3;
    criteria.value = (d.criteria || []).join("\n");
    criteria.placeholder = "one criterion per line";
    const levels = el("div", "wb-re-levels");
    for (const level of d.levels || []) levels.appendChild(levelRow(level));
    const add = el("button", "wb-re-add", "+ level");
    add.type = "button";
    add.addEventListener("click", () => {
      const rows = levels.querySelectorAll(".wb-re-score");
      const top = rows.length ? Math.max(...[...rows].map((r) => parseInt(r.value, 10) || 0)) : 0;
      levels.appendChild(levelRow({ score: top + 1, description: "" }));
      push();
    });
    const reference = el("textarea", "wb-re-reference");
    reference.rows = 2;
    reference.value = d.reference_answer || "";
    reference.placeholder = "optional: an answer that deserves the top score";
    const ties = el("input", "wb-re-ties");
    ties.type = "checkbox";
    ties.checked = d.allow_ties !== false;
    for (const input of [name, task, criteria, reference]) input.addEventListener("input", schedule);
    ties.addEventListener("change", push);
    const inline = field("Pairwise ties allowed", ties);
    inline.classList.add("wb-re-inline");
    form.append(
      field("Name", name),
      field("Task", task),
      field("Criteria", criteria),
      el("div", "wb-re-label", "Score levels"),
      levels,
      add,
      field("Reference answer", reference),
      inline
    );
    lastSent = JSON.stringify(d);
  }

  function drawSide() {
    const version = model.get("version");
    const parent = model.get("parent_version");
    status.textContent = version ? `draft version ${version}` + (parent ? ` · edited from ${parent}` : "") : "";
    error.textContent = model.get("error") || "";
    error.style.display = model.get("error") ? "" : "none";
    preview.textContent = model.get("preview") || "";
  }

  function onDraft() {
    if (JSON.stringify(model.get("draft")) !== lastSent) buildForm();
  }

  // Keys typed in the form must not trigger notebook shortcuts (a, b, d d, j, k...).
  const stopKeys = (event) => {
    if (!(event.ctrlKey || event.metaKey)) event.stopPropagation();
  };
  root.addEventListener("keydown", stopKeys);
  model.on("change:draft", onDraft);
  for (const name of ["preview", "error", "version", "parent_version"]) model.on(`change:${name}`, drawSide);
  buildForm();
  drawSide();
  return () => {
    if (timer) clearTimeout(timer);
    root.removeEventListener("keydown", stopKeys);
    model.off("change:draft", onDraft);
    for (const name of ["preview", "error", "version", "parent_version"]) model.off(`change:${name}`, drawSide);
  };
}

export default { render };
