/* The wallet list: one page of wallets, its pager, and the selected one marked. */

import { api, withQuery } from "./api.js";
import { els } from "./elements.js";
import { formatMoney } from "./format.js";
import { renderPayeeOptions } from "./payees.js";
import { state } from "./state.js";
import { reportFailure } from "./status.js";

const WALLETS_PAGE_SIZE = 10;

function walletListItem(wallet) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "wallet-item";
  button.dataset.testid = "wallet-item";
  button.dataset.walletId = wallet.id;

  const id = document.createElement("span");
  id.className = "wallet-item-id";
  id.textContent = wallet.id;
  const balance = document.createElement("span");
  balance.className = "wallet-item-balance";
  balance.textContent = formatMoney(wallet.balance, wallet.currency);

  button.append(id, balance);
  item.append(button);
  return item;
}

function renderWalletList(wallets) {
  state.listedWallets = wallets.filter(function (wallet) {
    return wallet && typeof wallet.id === "string";
  });
  els.walletList.replaceChildren.apply(els.walletList, wallets.map(walletListItem));
  els.walletListEmpty.hidden = wallets.length > 0;
  els.walletListEmpty.textContent =
    state.walletCursorStack.length === 0
      ? "No wallets yet. Create one to get started."
      : "No more wallets.";
  markSelectedInList();
  renderPayeeOptions();
}

export function markSelectedInList() {
  els.walletList.querySelectorAll(".wallet-item").forEach(function (button) {
    if (button.dataset.walletId === state.selectedId) {
      button.setAttribute("aria-current", "true");
    } else {
      button.removeAttribute("aria-current");
    }
  });
}

export function updateListedBalance(walletId, balance, currency) {
  els.walletList.querySelectorAll(".wallet-item").forEach(function (button) {
    if (button.dataset.walletId === walletId) {
      button.querySelector(".wallet-item-balance").textContent = formatMoney(balance, currency);
    }
  });
}

/** While a page loads the buttons stay as they were (clicks are ignored), so focus stays. */
function updatePager() {
  const focused = document.activeElement;
  els.walletsPrev.disabled = state.walletCursorStack.length === 0;
  els.walletsNext.disabled = !state.walletNextCursor;
  els.walletsPage.textContent = "Page " + (state.walletCursorStack.length + 1);
  // A button disabled under the keyboard focus drops it; hand it to the other one.
  if (focused === els.walletsNext && els.walletsNext.disabled && !els.walletsPrev.disabled) {
    els.walletsPrev.focus();
  } else if (focused === els.walletsPrev && els.walletsPrev.disabled && !els.walletsNext.disabled) {
    els.walletsNext.focus();
  }
}

/** Show the wallet page at `cursor`; `stack` becomes the Previous history on success. */
export async function showWalletPage(cursor, stack) {
  state.walletsLoading = true;
  els.walletList.setAttribute("aria-busy", "true");
  updatePager();
  const result = await api("GET", withQuery("/wallets", { limit: WALLETS_PAGE_SIZE, cursor }));
  state.walletsLoading = false;
  els.walletList.setAttribute("aria-busy", "false");
  if (result.ok) {
    state.walletCursor = cursor;
    state.walletCursorStack = stack;
    state.walletNextCursor = result.data.nextCursor || null;
    renderWalletList(Array.isArray(result.data.items) ? result.data.items : []);
  } else {
    reportFailure(result);
  }
  updatePager();
  return result.ok;
}

export function nextWalletPage() {
  if (state.walletNextCursor && !state.walletsLoading) {
    showWalletPage(state.walletNextCursor, state.walletCursorStack.concat([state.walletCursor]));
  }
}

export function previousWalletPage() {
  const stack = state.walletCursorStack;
  if (stack.length && !state.walletsLoading) {
    showWalletPage(stack[stack.length - 1], stack.slice(0, -1));
  }
}

export function reloadWalletPage() {
  return showWalletPage(state.walletCursor, state.walletCursorStack);
}
