/* Creating, opening and copying wallets from the buttons of the page. */

import { idempotentPost } from "./api.js";
import { currencyDigits } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import { formatMoney } from "./format.js";
import { resetHolds } from "./holds.js";
import { resetOperations } from "./operations.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";
import { openWallet, renderWallet, scrollDetailsIntoViewOnPhones } from "./wallet-details.js";
import { reloadWalletPage } from "./wallet-list.js";

export async function createWallet() {
  if (isBusy(els.createWallet)) {
    return;
  }
  const currency = els.newWalletCurrency.value;
  if (currencyDigits(currency) === undefined) {
    setStatus("error", "Choose the new wallet's currency.");
    els.newWalletCurrency.focus();
    return;
  }
  setBusy(els.createWallet, true);
  try {
    const result = await idempotentPost("/wallets", { currency });
    if (!result.ok) {
      reportFailure(result);
      return;
    }
    const wallet = result.data;
    state.selectToken++; // a slower, older selection must not replace the new wallet
    renderWallet(wallet);
    resetOperations({ items: [], nextCursor: null });
    resetHolds({ items: [], nextCursor: null });
    setStatus(
      "success",
      "Created wallet " + wallet.id + " — balance " + formatMoney(wallet.balance, wallet.currency)
    );
    await reloadWalletPage();
  } finally {
    setBusy(els.createWallet, false);
  }
}

export async function copyWalletId() {
  const walletId = state.selectedId;
  if (!walletId) {
    return;
  }
  const copied = await copyText(walletId);
  if (copied) {
    setStatus("success", "Wallet id copied to the clipboard.");
  } else {
    setStatus("error", "Could not copy automatically. The id is selected: copy it with your keyboard.");
  }
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (error) {
      // fall through to the selection-based copy
    }
  }
  const range = document.createRange();
  range.selectNodeContents(els.walletId);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try {
    return document.execCommand("copy");
  } catch (error) {
    return false;
  }
}

export async function openWalletFromField() {
  const walletId = els.openWalletId.value.trim();
  if (!walletId) {
    setStatus("error", "Paste a wallet id to open it.");
    els.openWalletId.focus();
    return;
  }
  if (isBusy(els.openWallet)) {
    return;
  }
  setBusy(els.openWallet, true);
  try {
    if (await openWallet(walletId)) {
      els.openWalletId.value = "";
      setStatus("info", "Opened wallet " + state.selectedId + ".");
      scrollDetailsIntoViewOnPhones();
    }
  } finally {
    setBusy(els.openWallet, false);
  }
}

export function onWalletListClick(event) {
  const button = event.target.closest(".wallet-item");
  if (button && els.walletList.contains(button)) {
    openWallet(button.dataset.walletId).then(function (opened) {
      if (opened) {
        scrollDetailsIntoViewOnPhones();
      }
    });
  }
}

/**
 * A wallet named in the history or on a hold opens here; with a modifier key, where the
 * browser opens links.
 */
export function onHistoryClick(event) {
  const link = event.target.closest("a.wallet-link");
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) {
    return;
  }
  event.preventDefault();
  openWallet(link.dataset.walletId).then(function (opened) {
    if (opened) {
      setStatus("info", "Opened wallet " + state.selectedId + ".");
      els.operationsWrap.focus({ preventScroll: true }); // the link left with the old history
      scrollDetailsIntoViewOnPhones();
    }
  });
}
