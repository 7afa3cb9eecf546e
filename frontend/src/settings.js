// The Flow Settings page, for when the settings are opened outside the editor.

import { enhanceSettingsForm } from "./settings-form.js";

const form = document.querySelector("[data-settings-form]");
if (form) enhanceSettingsForm(form);
