// Rubric editor (anywidget ESM). The form edits a draft rubric (the `draft` trait), prompt templates
// included; Python validates it, renders the judge prompt into `preview`, and reports ONE plain problem in
// `error`, shown under the field named by `error_field` and nowhere else. `header` says which version the
// form describes. The form is rebuilt only when the draft changes from Python (so typing is never
// interrupted); keys typed here never reach JupyterLab.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text); // never innerHTML
  return node;
}

function field(labelText, input, tooltip) {
  const box = el("label", "wb-re-field");
  box.appendChild(el("span", "wb-re-label", labelText));
  box.appendChild(input);
  if (tooltip) box.title = input.title = tooltip;
  return box;
}

// Where a problem with each field is shown (one slot per field; "rubric" is for the rest).
function errorSlot(name) {
  const slot = el("div", "wb-re-error");
  slot.dataset.field = name;
  slot.style.display = "none";
  return slot;
}

const SIDE = ["preview", "error", "error_field", "header"];

function render({ model, el: host }) {
  const root = el("div", "wb-rubric-editor");
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  const form = el("div", "wb-re-form");
  const side = el("div", "wb-re-side");
  const status = el("div", "wb-re-status");
  const preview = el("pre", "wb-re-preview");
  preview.title = "The exact prompt the judge model reads for the first sample row.";
  side.append(status, el("div", "wb-re-label", "Judge prompt preview (first sample row)"), preview);
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
      template: form.querySelector(".wb-re-template").value,
      pairwise_template: form.querySelector(".wb-re-pairwise-template").value,
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
    score.title = "The whole-number score of this level.";
    const desc = el("input", "wb-re-desc");
    desc.type = "text";
    desc.value = level.description || "";
    desc.placeholder = "what a response at this level looks like";
    desc.title = "What an answer that earns this score looks like.";
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
    add.title = "Add a score level one above the highest.";
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
    const template = el("textarea", "wb-re-template");
    template.rows = 10;
    template.spellcheck = false;
    template.value = d.template || "";
    const pairwise = el("textarea", "wb-re-pairwise-template");
    pairwise.rows = 8;
    pairwise.spellcheck = false;
    pairwise.value = d.pairwise_template || "";
    for (const input of [name, task, criteria, reference, template, pairwise]) input.addEventListener("input", schedule);
    ties.addEventListener("change", push);
    const inline = field("Pairwise ties allowed", ties, "Let the pairwise judge answer that both answers are equally good.");
    inline.classList.add("wb-re-inline");
    const templates = el("details", "wb-re-templates");
    templates.appendChild(el("summary", null, "Prompt templates (Jinja, run in a sandbox)"));
    templates.append(
      field("Absolute grading prompt", template, "The Jinja template of the prompt that grades one answer."),
      errorSlot("template"),
      field("Pairwise prompt", pairwise, "The Jinja template of the prompt that compares two answers."),
      errorSlot("pairwise_template")
    );
    const levelsLabel = el("div", "wb-re-label", "Score levels");
    levelsLabel.title = "One whole-number score per level, consecutive, each with what earns it.";
    form.append(
      errorSlot("rubric"),
      field("Name", name, "A short name that judgments record next to the version."),
      errorSlot("name"),
      field("Task", task, "What the judge is asked to assess, in a sentence or two."),
      field("Criteria", criteria, "The qualities the judge must weigh, one per line."),
      levelsLabel,
      levels,
      errorSlot("levels"),
      add,
      field("Reference answer", reference, "An optional answer that deserves the top score."),
      inline,
      templates
    );
    lastSent = JSON.stringify(d);
    drawSide();
  }

  function drawSide() {
    status.textContent = model.get("header") || "";
    const message = model.get("error") || "";
    const slots = [...form.querySelectorAll(".wb-re-error")];
    const target = slots.find((s) => s.dataset.field === model.get("error_field")) ||
      slots.find((s) => s.dataset.field === "rubric");
    for (const slot of slots) {
      const on = Boolean(message) && slot === target;
      slot.textContent = on ? message : "";
      slot.style.display = on ? "" : "none";
    }
    if (message && target && target.closest("details")) target.closest("details").open = true;
    preview.classList.toggle("wb-re-stale", Boolean(message));
    preview.textContent = message ? "(no preview until the problem above is fixed)" : model.get("preview") || "";
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
  for (const name of SIDE) model.on(`change:${name}`, drawSide);
  buildForm();
  drawSide();
  return () => {
    if (timer) clearTimeout(timer);
    root.removeEventListener("keydown", stopKeys);
    model.off("change:draft", onDraft);
    for (const name of SIDE) model.off(`change:${name}`, drawSide);
  };
}

export default { render };
