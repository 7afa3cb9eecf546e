// The flow editor page: the definition's code editor, and Flow Settings in a
// dialog (without this script, the Flow Settings button opens its own page).

import { mountFlowEditor } from "./flow-editor.js";
import { enhanceSettingsForm } from "./settings-form.js";

const sourceForm = document.querySelector("[data-source-form]");
const editor = sourceForm ? mountFlowEditor(sourceForm) : null;

const dialog = document.querySelector("[data-settings-dialog]");
const opener = document.querySelector("[data-open-settings]");
if (dialog && opener) {
  const form = dialog.querySelector("[data-settings-form]");
  const settings = enhanceSettingsForm(form);
  const dirtyNote = form.querySelector("[data-dirty-note]");

  opener.addEventListener("click", (event) => {
    event.preventDefault();
    dirtyNote.hidden = !editor?.isDirty();
    dialog.showModal();
    settings.tabs?.focusSelected();
  });

  // Closing without saving forgets what was typed, as Cancel promises.
  const discard = () => form.reset();
  for (const button of dialog.querySelectorAll("[data-close-dialog]")) {
    button.addEventListener("click", () => {
      discard();
      dialog.close();
    });
  }
  dialog.addEventListener("cancel", discard);
}
