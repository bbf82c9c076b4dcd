/* The transfer form's payee choices: the other wallets of the list in the selected wallet's currency. */

import { els } from "./elements.js";
import { state } from "./state.js";

function option(value, text) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  return element;
}

/** Redrawn when the list or the selected wallet changes; a payee still listed stays chosen. */
export function renderPayeeOptions() {
  const currency = state.selectedCurrency;
  const chosen = els.transferPayee.value;
  const payees = state.listedWallets.filter(function (wallet) {
    return wallet.currency === currency && wallet.id !== state.selectedId;
  });
  const prompt = payees.length
    ? "Choose a wallet"
    : "No other " + (currency ? currency + " " : "") + "wallet in the list";
  els.transferPayee.replaceChildren(
    option("", prompt),
    ...payees.map(function (wallet) {
      return option(wallet.id, wallet.id);
    })
  );
  els.transferPayee.value = payees.some(function (wallet) {
    return wallet.id === chosen;
  })
    ? chosen
    : "";
}

/** The currency of a listed wallet, or undefined for one the list does not show. */
export function listedCurrency(walletId) {
  const id = walletId.toLowerCase();
  const wallet = state.listedWallets.find(function (listed) {
    return listed.id.toLowerCase() === id;
  });
  return wallet ? wallet.currency : undefined;
}
