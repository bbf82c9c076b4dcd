/* The API key form, shown only when the service is configured with keys. */

import { saveApiKey } from "./api.js";
import { els } from "./elements.js";
import { setStatus } from "./status.js";
import { reloadWalletPage } from "./wallet-list.js";

export function onApiKeySubmit(event) {
  event.preventDefault();
  const key = els.apiKey.value.trim();
  if (!key) {
    return;
  }
  if (!saveApiKey(key)) {
    setStatus("error", "This browser does not allow keeping the key (session storage is off).");
    return;
  }
  els.apiKey.value = "";
  els.apiKeyForm.hidden = true;
  setStatus("success", "API key saved for this tab.");
  reloadWalletPage();
}
