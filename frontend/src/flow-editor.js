// The flow definition editor: YAML with line numbers and indentation help,
// checked against the flow format as it is typed. Each pause in typing posts
// the text to the server, whose problems show at their lines and in the list
// below the editor; the outline follows the last valid text.

import { yaml } from "@codemirror/lang-yaml";
import { goToLine, lineDiagnostic, replaceTextarea } from "./code-view.js";
import { csrfTokenOf, postJSON, sentence } from "./requests.js";

const LINT_DELAY_MS = 400;
const EDITOR_HEIGHT = "min(34rem, 70vh)";

export function mountFlowEditor(form) {
  const textarea = form.querySelector("#source");
  const problems = document.querySelector("[data-problems]");
  const list = problems.querySelector("[data-problem-list]");
  const status = problems.querySelector("[data-problems-status]");
  const outline = document.querySelector("[data-outline]");
  const dirtyStatus = form.querySelector("[data-dirty-status]");
  const csrf = csrfTokenOf(form);
  const saved = textarea.defaultValue;
  let view = null;

  function showProblems(found) {
    list.replaceChildren(...found.map(problemItem));
    if (found.length) {
      problems.setAttribute("data-has-problems", "");
      status.textContent = found.length === 1 ? "1 problem in the text." : `${found.length} problems in the text.`;
    } else {
      problems.removeAttribute("data-has-problems");
      status.textContent = "No problems.";
    }
  }

  async function check(editor) {
    const text = editor.state.doc.toString();
    let result;
    try {
      result = await postJSON(form.dataset.validateUrl, { text }, csrf);
    } catch (error) {
      status.textContent = `The text could not be checked (${error.message}); Save checks it again.`;
      return [];
    }
    if (editor.state.doc.toString() !== text) return []; // typed on meanwhile
    showProblems(result.problems);
    if (result.valid) {
      outline.innerHTML = result.outline_html;
      outline.removeAttribute("data-stale");
    } else {
      outline.setAttribute("data-stale", "");
    }
    return result.problems.map((problem) =>
      lineDiagnostic(editor, { line: problem.line, message: describe(problem) }),
    );
  }

  function markDirty(editor) {
    const dirty = editor.state.doc.toString() !== saved;
    dirtyStatus.textContent = dirty ? "Unsaved changes" : "";
  }

  view = replaceTextarea(textarea, { language: yaml(), lint: check, lintDelay: LINT_DELAY_MS, onChange: markDirty, height: EDITOR_HEIGHT });

  // The line links of the list, also those the server rendered after a
  // refused save, move the cursor to their line.
  list.addEventListener("click", (event) => {
    const link = event.target.closest("[data-line]");
    if (!link || !view) return;
    event.preventDefault();
    goToLine(view, Number(link.dataset.line));
  });
  return {
    view,
    isDirty: () => view !== null && view.state.doc.toString() !== saved,
  };
}

function describe(problem) {
  const text = sentence(problem.message);
  return problem.path ? `${text} (${problem.path})` : text;
}

function problemItem(problem) {
  const item = document.createElement("li");
  item.className = "problem";
  if (problem.line) {
    const link = document.createElement("a");
    link.className = "problem-line";
    link.href = "#source";
    link.dataset.line = String(problem.line);
    link.textContent = `Line ${problem.line}`;
    item.append(link);
  }
  const message = document.createElement("span");
  message.className = "problem-message";
  message.textContent = sentence(problem.message);
  item.append(message);
  if (problem.path) {
    const path = document.createElement("code");
    path.className = "problem-path";
    path.textContent = problem.path;
    item.append(" ", path);
  }
  return item;
}
