// The Flow Settings form: its tabs, the Input Schema editor with its checks
// and the preview of the launch form, and the schedule's next fire times.
// Save stays disabled while the schema is not valid JSON or not a valid JSON
// Schema; the server checks everything again when the form is saved.

import { json } from "@codemirror/lang-json";
import { lineDiagnostic, replaceTextarea } from "./code-view.js";
import { csrfTokenOf, debounce, postJSON, sentence } from "./requests.js";
import { setUpTabs } from "./tabs.js";

const SCHEDULE_DELAY_MS = 300;

export function enhanceSettingsForm(form) {
  const tabs = setUpTabs(form);
  const save = form.querySelector("[data-settings-save]");
  const csrf = csrfTokenOf(form);
  const schema = schemaChecks(form, csrf, (valid) => {
    save.disabled = !valid;
  });

  form.addEventListener("submit", (event) => {
    if (!schema.valid()) event.preventDefault();
  });
  scheduleChecks(form, csrf);
  return { tabs, schema };
}

function schemaChecks(form, csrf, onValidity) {
  const textarea = form.querySelector("#settings-input-schema");
  const status = form.querySelector("[data-schema-check]");
  const preview = form.querySelector("[data-schema-preview]");
  const previewBox = preview.closest(".schema-preview");
  const host = form.querySelector('[data-code-editor="settings-input-schema"]');
  const note = form.querySelector("[data-preview-note]");
  const currentNote = note.textContent;
  let valid = true;

  function markPreview(stale) {
    previewBox.toggleAttribute("data-stale", stale);
    note.textContent = stale
      ? "This is the form of the last valid schema; it follows again once the schema is valid."
      : currentNote;
  }

  function show(problems) {
    valid = problems.length === 0;
    onValidity(valid);
    status.replaceChildren();
    status.dataset.state = valid ? "valid" : "invalid";
    if (valid) {
      status.textContent = "The schema is valid.";
      host.removeAttribute("data-invalid");
      return;
    }
    host.setAttribute("data-invalid", "");
    const intro = document.createElement("p");
    intro.textContent = problems.length === 1 ? "The schema has a problem:" : `The schema has ${problems.length} problems:`;
    const list = document.createElement("ul");
    for (const problem of problems) {
      const item = document.createElement("li");
      item.textContent = `${where(problem)}${sentence(problem.message)}`;
      list.append(item);
    }
    status.append(intro, list);
  }

  async function check(view) {
    const text = view.state.doc.toString();
    // JSON syntax is known here at once, so Save goes off without waiting;
    // the server's answer says where the error is and checks the schema.
    const syntax = jsonSyntaxProblem(text);
    if (syntax) {
      onValidity(false);
      markPreview(true);
    }

    let result;
    try {
      result = await postJSON(form.dataset.previewUrl, { text }, csrf);
    } catch (error) {
      if (syntax) {
        show([syntax]);
        return [lineDiagnostic(view, { ...syntax, message: sentence(syntax.message) })];
      }
      status.dataset.state = "";
      status.textContent = `The schema could not be checked (${error.message}); Save checks it again.`;
      return [];
    }
    if (view.state.doc.toString() !== text) return []; // typed on meanwhile
    show(result.problems);
    if (result.valid) preview.innerHTML = result.preview_html;
    markPreview(!result.valid);
    return result.problems.map((problem) =>
      lineDiagnostic(view, { ...problem, message: sentence(problem.message) }),
    );
  }

  const view = replaceTextarea(textarea, { language: json(), lint: check, lintDelay: 300, height: "19rem" });
  return { view, valid: () => valid };
}

function where(problem) {
  // Messages about JSON syntax name their line and column already.
  if (!problem.line || /\bline \d+/.test(problem.message)) return "";
  return problem.column ? `Line ${problem.line}, column ${problem.column}: ` : `Line ${problem.line}: `;
}

// The JSON syntax error of `text`, or null; blank text stands for `true`, a
// flow without input, as on the server. Browsers do not always say where the
// error is, so the line is known only when the message gives a position.
export function jsonSyntaxProblem(text) {
  if (!text.trim()) return null;
  try {
    JSON.parse(text);
    return null;
  } catch (error) {
    const position = /position (\d+)/.exec(error.message);
    if (!position) return { message: `the text is not valid JSON: ${error.message}`, line: null };
    const before = text.slice(0, Number(position[1])).split("\n");
    const line = before.length;
    const column = before[before.length - 1].length + 1;
    const reason = error.message.replace(/\s*(in JSON )?at position \d+.*$/s, "");
    return {
      message: `the text is not valid JSON: ${reason} at line ${line}, column ${column}`,
      line,
      column,
    };
  }
}

function scheduleChecks(form, csrf) {
  const cron = form.querySelector("[data-schedule-cron]");
  const timezone = form.querySelector("[data-schedule-timezone]");
  const output = form.querySelector("[data-fire-times]");
  if (!cron || !timezone || !output) return;

  const refresh = debounce(async () => {
    const asked = { cron: cron.value, timezone: timezone.value };
    let result;
    try {
      result = await postJSON(form.dataset.scheduleUrl, asked, csrf);
    } catch (error) {
      output.replaceChildren(paragraph(`The fire times could not be computed (${error.message}).`, "field-error"));
      return;
    }
    if (cron.value !== asked.cron || timezone.value !== asked.timezone) return;
    if (result.problem) {
      output.replaceChildren(paragraph(result.problem, "field-error"));
    } else if (result.times.length === 0) {
      output.replaceChildren(paragraph("No schedule: the flow runs only when someone starts it.", "muted"));
    } else {
      const list = document.createElement("ol");
      list.className = "fire-time-list";
      for (const time of result.times) {
        const item = document.createElement("li");
        const stamp = document.createElement("time");
        stamp.dateTime = time.iso;
        stamp.textContent = time.text;
        item.append(stamp);
        list.append(item);
      }
      output.replaceChildren(list);
    }
  }, SCHEDULE_DELAY_MS);

  cron.addEventListener("input", refresh);
  timezone.addEventListener("input", refresh);
  form.addEventListener("reset", () => setTimeout(refresh));
}

function paragraph(text, className) {
  const element = document.createElement("p");
  element.className = className;
  element.textContent = text;
  return element;
}
