/* The message line at the top of the page, and the API key form it opens on a 401. */

import { els } from "./elements.js";
import { problemMessage } from "./messages.js";

export function setStatus(kind, message) {
  els.status.dataset.kind = kind;
  els.status.textContent = message;
}

/** Say why a request failed: in `message` when the caller words it, else as its problem says. */
export function reportFailure(result, message) {
  setStatus("error", message || problemMessage(result.data, result.headers, result.status));
  if (result.status === 401) {
    askForApiKey();
  }
}

function askForApiKey() {
  els.apiKeyForm.hidden = false;
  els.apiKey.focus();
}
