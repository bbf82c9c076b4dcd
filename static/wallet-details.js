/* The selected wallet: its facts, its place in the address, and loading it from the API. */

import { amountHint, amountPlaceholder } from "./amount.js";
import { api, walletPath } from "./api.js";
import { currencyDigits } from "./catalogue.js";
import { els } from "./elements.js";
import { formatMoney, setTime } from "./format.js";
import { holdsPath, resetHolds, showHeldAmounts } from "./holds.js";
import { operationsPath, resetOperations } from "./operations.js";
import { renderPayeeOptions } from "./payees.js";
import { state } from "./state.js";
import { reportFailure } from "./status.js";
import { markSelectedInList, updateListedBalance } from "./wallet-list.js";

export function renderWallet(wallet) {
  state.selectedId = wallet.id;
  if (state.selectedCurrency !== wallet.currency) {
    state.selectedCurrency = wallet.currency;
    fitAmountToCurrency(els.amount, els.amountHint, wallet.currency);
    fitAmountToCurrency(els.transferAmount, els.transferAmountHint, wallet.currency);
    fitAmountToCurrency(els.holdAmount, els.holdAmountHint, wallet.currency);
  }
  els.detailsEmpty.hidden = true;
  els.detailsBody.hidden = false;
  els.walletId.textContent = wallet.id;
  els.walletBalance.textContent = formatMoney(wallet.balance, wallet.currency);
  showHeldAmounts(wallet);
  setTime(els.walletCreated, wallet.createdAt);
  setTime(els.walletUpdated, wallet.updatedAt);
  markSelectedInList();
  renderPayeeOptions();
  updateListedBalance(wallet.id, wallet.balance, wallet.currency);
  rememberInAddress(wallet.id);
}

/** An amount field asks for what the wallet's currency takes: whole units, or its decimals. */
function fitAmountToCurrency(field, hint, currency) {
  const digits = currencyDigits(currency);
  hint.textContent = amountHint(digits, currency);
  field.placeholder = amountPlaceholder(digits);
  field.inputMode = digits === 0 ? "numeric" : "decimal";
}

function rememberInAddress(walletId) {
  if (window.history && typeof window.history.replaceState === "function") {
    window.history.replaceState(null, "", "#wallet=" + encodeURIComponent(walletId));
  }
}

export function walletIdFromAddress() {
  const match = /^#wallet=([0-9A-Za-z-]+)$/.exec(window.location.hash);
  return match ? match[1] : null;
}

/** Load a wallet, its latest operations and holds; keeps the current one on failure. */
export async function openWallet(walletId) {
  const token = ++state.selectToken;
  els.operations.setAttribute("aria-busy", "true");
  els.holds.setAttribute("aria-busy", "true");
  const results = await Promise.all([
    api("GET", walletPath(walletId)),
    api("GET", operationsPath(walletId, null)),
    api("GET", holdsPath(walletId, null)),
  ]);
  if (token !== state.selectToken) {
    return false; // another wallet was chosen meanwhile
  }
  els.operations.setAttribute("aria-busy", "false");
  els.holds.setAttribute("aria-busy", "false");
  const [walletResult, operationsResult, holdsResult] = results;
  if (!walletResult.ok) {
    reportFailure(walletResult);
    return false;
  }
  renderWallet(walletResult.data);
  if (operationsResult.ok) {
    resetOperations(operationsResult.data);
  } else {
    resetOperations({ items: [], nextCursor: null });
    reportFailure(operationsResult);
  }
  if (holdsResult.ok) {
    resetHolds(holdsResult.data);
  } else {
    resetHolds({ items: [], nextCursor: null });
    reportFailure(holdsResult);
  }
  return true;
}

/**
 * Re-read the selected wallet so "Updated", the balance, held and available come from the
 * server; the wallet as read, or null.
 */
export async function refreshWallet(walletId) {
  const result = await api("GET", walletPath(walletId));
  if (result.ok && state.selectedId === walletId) {
    renderWallet(result.data);
  }
  return result.ok ? result.data : null;
}

export function scrollDetailsIntoViewOnPhones() {
  if (window.matchMedia && window.matchMedia("(max-width: 859px)").matches) {
    const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    els.details.scrollIntoView({ behavior: reduced ? "auto" : "smooth", block: "start" });
  }
}
