// A CodeMirror editor that takes the place of a <textarea>: the text area
// stays in the form (hidden) and always holds the editor's text, so the form
// posts as it would without the script.
//
// The editor lives in a shadow root. CodeMirror styles itself with a <style>
// element in a document, which the pages' CSP (style-src 'self') blocks, but
// with a constructed style sheet in a shadow root, which it allows. IDs do not
// reach into a shadow root, so the label and hint are copied in as text.

import { basicSetup } from "codemirror";
import { indentWithTab } from "@codemirror/commands";
import { indentUnit } from "@codemirror/language";
import { lintGutter, linter } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";

const LEAVE_HINT = " In the editor, Tab indents; press Esc, then Tab, to move on.";
const MONOSPACE = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';

function theme(height) {
  return EditorView.theme({
    "&": { height, fontSize: "0.9rem", backgroundColor: "#fff", color: "#1d2330" },
    "&.cm-focused": { outline: "none" },
    ".cm-scroller": { fontFamily: MONOSPACE, lineHeight: "1.5" },
    ".cm-gutters": { backgroundColor: "#f6f7f9", color: "#8a94a6", borderRight: "1px solid #d8dce3" },
    ".cm-activeLine": { backgroundColor: "#f3f6fc" },
    ".cm-activeLineGutter": { backgroundColor: "#e8edf7" },
    ".cm-tooltip-lint": { fontFamily: "system-ui, sans-serif", maxWidth: "36rem" },
    ".cm-diagnostic-error": { borderLeftColor: "#b42318" },
  });
}

export function replaceTextarea(textarea, { language, lint, lintDelay = 400, onChange, height = "20rem" }) {
  const host = document.querySelector(`[data-code-editor="${textarea.id}"]`);
  const label = document.querySelector(`label[for="${textarea.id}"]`);
  if (!host || !label) return null;

  const hint = document.getElementById(`${textarea.id}-hint`);
  if (hint) hint.append(LEAVE_HINT);
  const shell = host.attachShadow({ mode: "open" });
  const description = document.createElement("span");
  description.id = "description";
  description.hidden = true;
  description.textContent = hint ? hint.textContent : "";
  shell.append(description);

  // The label now names the editor; the hidden text area keeps no label, so
  // the name belongs to one control.
  label.removeAttribute("for");
  label.id ||= `${textarea.id}-label`;
  const extensions = [
    basicSetup,
    keymap.of([indentWithTab]),
    indentUnit.of("  "),
    EditorState.tabSize.of(2),
    language,
    theme(height),
    EditorView.contentAttributes.of({
      "aria-label": label.textContent.trim(),
      "aria-describedby": "description",
    }),
    EditorView.updateListener.of((update) => {
      if (!update.docChanged) return;
      textarea.value = update.state.doc.toString();
      onChange?.(update.view);
    }),
  ];
  if (lint) {
    extensions.push(lintGutter(), linter(lint, { delay: lintDelay }));
  }

  const view = new EditorView({
    root: shell,
    parent: shell,
    state: EditorState.create({ doc: textarea.value, extensions }),
  });
  textarea.hidden = true;
  host.hidden = false;
  label.addEventListener("click", () => view.focus());

  // A form reset puts the text area back to the page's text; the editor follows.
  textarea.form?.addEventListener("reset", () => {
    setTimeout(() => setText(view, textarea.value));
  });
  return view;
}

export function setText(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}

// A diagnostic covering the text of one line (1-based), for a problem that
// knows its line and maybe its column.
export function lineDiagnostic(view, { line, column, message }) {
  const doc = view.state.doc;
  const number = Math.min(Math.max(line || 1, 1), doc.lines);
  const target = doc.line(number);
  const indent = target.text.length - target.text.trimStart().length;
  let from = target.from + indent;
  if (column) from = Math.min(target.from + column - 1, target.to);
  const to = from < target.to ? target.to : Math.min(from + 1, doc.length);
  return { from: Math.min(from, to), to, severity: "error", message };
}

export function goToLine(view, line) {
  const doc = view.state.doc;
  const target = doc.line(Math.min(Math.max(line, 1), doc.lines));
  view.dispatch({ selection: { anchor: target.from }, scrollIntoView: true });
  view.focus();
}
