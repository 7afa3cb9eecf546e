// Copy Link: the launch form's current values as a link that fills the form
// again when opened. The field names are the link's parameter names already
// (DESIGN.md, "Query parameters into input data"), so each field contributes
// its name and value the way the server's `to_params` would write them.

const COPIED = "Link copied";
const NOT_COPIED =
  "Your browser did not let flowdesk copy the link. It is selected in the field below: copy it from there.";

// A yes/no field is one checkbox (drawn as a switch) valued "true" after a
// hidden "false"; the choices of an array are several boxes under one name.
function isBooleanCheckbox(box, form) {
  if (box.getAttribute("role") === "switch") return true;
  const sameName = form.querySelectorAll(`input[type="checkbox"][name="${CSS.escape(box.name)}"]`);
  return sameName.length === 1 && box.value === "true";
}

const LIST_MARKER = "[]";

// The pairs the form would post, as a link carries them: no form controls
// (`_csrf`, `_action`), no empty values, no passwords, a yes/no field as
// `true` or `false`.
function postedPairs(form) {
  const booleans = new Set();
  for (const box of form.querySelectorAll('input[type="checkbox"]')) {
    if (box.name && isBooleanCheckbox(box, form)) booleans.add(box.name);
  }

  const pairs = [];
  for (const element of form.elements) {
    const name = element.name;
    if (!name || name.startsWith("_") || element.disabled) continue;
    if (["submit", "button", "reset", "file", "image", "password"].includes(element.type)) {
      continue;
    }
    if (booleans.has(name)) {
      if (element.type === "checkbox") {
        pairs.push({ name, value: element.checked ? "true" : "false" });
      }
      continue; // the hidden `false` ahead of the box
    }
    if (element.type === "checkbox" || element.type === "radio") {
      if (element.checked && element.value !== "") pairs.push({ name, value: element.value });
      continue;
    }
    if (element instanceof HTMLSelectElement && element.multiple) {
      for (const option of element.selectedOptions) {
        if (option.value !== "") pairs.push({ name, value: option.value });
      }
      continue;
    }
    if (element.value === "") continue;
    pairs.push({ name, value: element.value, element });
  }
  return pairs;
}

// Writes lists as `to_params` does: a list's `[]` marker only when the list is
// empty, its entries as repeated names, and JSON when a lone entry would be
// read as a list of several (`a,b`) or as the marker itself.
function formParams(form) {
  const pairs = postedPairs(form);
  const params = new URLSearchParams();
  for (const pair of pairs) {
    if (pair.value === LIST_MARKER && pair.element?.type === "hidden") {
      const entries = pairs.filter(
        (other) => other !== pair && (other.name === pair.name || other.name.startsWith(`${pair.name}.`)),
      );
      if (entries.length === 0) params.append(pair.name, LIST_MARKER);
      else if (entries.length === 1 && entries[0].name === pair.name && needsJson(entries[0].value)) {
        entries[0].json = true;
      }
      continue;
    }
    if (pair.json) {
      params.append(pair.name, JSON.stringify([itemValue(pair)]));
      continue;
    }
    params.append(pair.name, pair.value);
  }
  return params;
}

function needsJson(text) {
  const trimmed = text.trim();
  return text.includes(",") || trimmed.startsWith("[") || trimmed === "null";
}

function itemValue(pair) {
  if (pair.element?.type === "number" && Number.isFinite(Number(pair.value))) {
    return Number(pair.value);
  }
  return pair.value;
}

function buildLink(button, form) {
  const params = formParams(form);
  if (button.dataset.startFlow === "true") params.append("start_flow", "true");
  const url = new URL(button.dataset.linkPath, window.location.origin);
  url.search = params.toString();
  return url.toString();
}

async function writeClipboard(text) {
  if (!window.isSecureContext || !navigator.clipboard || !navigator.clipboard.writeText) {
    throw new Error("The clipboard is not available here.");
  }
  await navigator.clipboard.writeText(text);
}

function announce(status, message) {
  // Cleared first, so that a second click is announced again.
  status.textContent = "";
  window.setTimeout(() => {
    status.textContent = message;
  }, 50);
}

function setUp(button) {
  const form = button.closest("form");
  const status = document.getElementById("copy-link-status");
  const fallback = document.getElementById("copy-link-fallback");
  const field = document.getElementById("copy-link-field");

  button.hidden = false;
  button.addEventListener("click", async () => {
    const link = buildLink(button, form);
    button.dataset.link = link;
    try {
      await writeClipboard(link);
      fallback.hidden = true;
      announce(status, COPIED);
    } catch {
      field.value = link;
      fallback.hidden = false;
      field.focus();
      field.select();
      announce(status, NOT_COPIED);
    }
  });
}

for (const button of document.querySelectorAll("[data-copy-link]")) {
  setUp(button);
}
