/*
 * In-page Add and Remove for the list fields of _form_fields.html.
 *
 * Load it as a module: <script type="module" src="/static/js/form-fields.js">.
 * Without it, Add and Remove submit the form with `_action=add:NAME` or
 * `_action=remove:NAME.INDEX` and the server renders the form again. With it,
 * those clicks stay in the page: Add clones the list's <template> entry, Remove
 * takes the entry out, and the entries after it are renumbered so that names
 * stay `lines.0.sku`, `lines.1.sku`, ... in page order, as the server reads them.
 *
 * Markup it relies on: a list is `[data-list]` with `data-list-name` (its
 * dotted name) and `data-list-id` (its id); its direct children include
 * `[data-entries]` (holding `[data-entry]` elements with `data-index`), a
 * `<template data-entry-template>` whose names and ids use `__index__`, and an
 * Add button `[data-add]`. Each entry holds a Remove button `[data-remove]`
 * and `.entry-number` spans that show its position counted from 1.
 */

const PLACEHOLDER = "__index__";

function escapeForRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function directChild(element, selector) {
  return Array.from(element.children).find((child) => child.matches(selector)) ?? null;
}

/*
 * Functions renaming what belongs to one entry of a list: names and action
 * targets start with `NAME.INDEX`, ids with `ID-INDEX`. The lookahead keeps
 * `lines.1` from matching `lines.10`.
 */
function renamer(list, from, to) {
  const name = list.dataset.listName;
  const id = list.dataset.listId;
  const namePattern = new RegExp(`^${escapeForRegExp(`${name}.${from}`)}(?=$|\\.)`);
  const idPattern = new RegExp(`^${escapeForRegExp(`${id}-${from}`)}(?=$|-)`);
  return {
    name: (value) => value.replace(namePattern, `${name}.${to}`),
    id: (value) => value.replace(idPattern, `${id}-${to}`),
  };
}

function renameAttribute(element, attribute, rename) {
  const value = element.getAttribute(attribute);
  if (value !== null) {
    element.setAttribute(attribute, rename(value));
  }
}

function rewrite(root, rename) {
  const elements = Array.from(root.querySelectorAll("*"));
  if (root instanceof Element) {
    elements.unshift(root);
  }

  for (const element of elements) {
    renameAttribute(element, "name", rename.name);
    renameAttribute(element, "data-list-name", rename.name);
    for (const attribute of ["id", "for", "data-list-id"]) {
      renameAttribute(element, attribute, rename.id);
    }
    renameAttribute(element, "aria-describedby", (value) =>
      value.split(/\s+/).map(rename.id).join(" "),
    );
    if (element.matches('button[name="_action"]')) {
      renameAttribute(element, "value", (value) => {
        const [verb, ...target] = value.split(":");
        return `${verb}:${rename.name(target.join(":"))}`;
      });
    }
    // A nested list's own template is a separate fragment that querySelectorAll
    // does not enter.
    if (element instanceof HTMLTemplateElement) {
      rewrite(element.content, rename);
    }
  }
}

function setNumber(entry, number) {
  for (const span of entry.querySelectorAll(".entry-number")) {
    if (span.closest("[data-entry]") === entry) {
      span.textContent = String(number);
    }
  }
}

function entriesOf(list) {
  const container = directChild(list, "[data-entries]");
  return container ? Array.from(container.children) : [];
}

function renumber(list) {
  entriesOf(list).forEach((entry, position) => {
    const index = String(position);
    if (entry.dataset.index !== index) {
      rewrite(entry, renamer(list, entry.dataset.index, index));
      entry.dataset.index = index;
    }
    setNumber(entry, position + 1);
  });
}

function updateAddButton(list) {
  const add = directChild(list, "[data-add]");
  const max = Number.parseInt(list.dataset.maxItems ?? "", 10);
  if (add && Number.isFinite(max)) {
    add.disabled = entriesOf(list).length >= max;
  }
}

function ownRemoveButton(entry) {
  return Array.from(entry.querySelectorAll("[data-remove]")).find(
    (button) => button.closest("[data-entry]") === entry,
  ) ?? null;
}

function focusFirstControl(entry) {
  const control = entry.querySelector("input:not([type=hidden]), select, textarea");
  control?.focus();
}

function addEntry(list) {
  const template = directChild(list, "template[data-entry-template]");
  const container = directChild(list, "[data-entries]");
  if (!template || !container) {
    return false;
  }

  const index = String(container.children.length);
  const fragment = template.content.cloneNode(true);
  rewrite(fragment, renamer(list, PLACEHOLDER, index));
  const entry = fragment.querySelector("[data-entry]");
  entry.dataset.index = index;
  container.append(fragment);

  renumber(list);
  updateAddButton(list);
  focusFirstControl(entry);
  return true;
}

function removeEntry(button) {
  const entry = button.closest("[data-entry]");
  const list = entry?.closest("[data-list]");
  if (!entry || !list) {
    return false;
  }

  const neighbour = entry.nextElementSibling ?? entry.previousElementSibling;
  entry.remove();
  renumber(list);
  updateAddButton(list);

  // Keep the keyboard where the removed entry was, not back at the page's top.
  const next = neighbour ? ownRemoveButton(neighbour) : null;
  (next ?? directChild(list, "[data-add]"))?.focus();
  return true;
}

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element
    ? event.target.closest('button[name="_action"]')
    : null;
  if (!button) {
    return;
  }

  let handled = false;
  if (button.matches("[data-add]")) {
    const list = button.closest("[data-list]");
    handled = list !== null && addEntry(list);
  } else if (button.matches("[data-remove]")) {
    handled = removeEntry(button);
  }
  if (handled) {
    event.preventDefault();
  }
});

for (const list of document.querySelectorAll("[data-list]")) {
  updateAddButton(list);
}

// After a failed start the summary of problems is the first thing to read.
document.querySelector("[data-error-summary]")?.focus();
