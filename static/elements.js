/* The page's elements the script works with, looked up once by id. */

export const els = {};

const ELEMENT_IDS = {
  status: "status",
  createWallet: "create-wallet",
  newWalletCurrency: "new-wallet-currency",
  openWalletForm: "open-wallet-form",
  openWalletId: "open-wallet-id",
  openWallet: "open-wallet",
  walletList: "wallet-list",
  walletListEmpty: "wallet-list-empty",
  walletsPrev: "wallets-prev",
  walletsNext: "wallets-next",
  walletsPage: "wallets-page",
  details: "wallet-details",
  detailsEmpty: "details-empty",
  detailsBody: "details-body",
  walletId: "wallet-id",
  copyWalletId: "copy-wallet-id",
  walletBalance: "wallet-balance",
  walletHeld: "wallet-held",
  walletAvailable: "wallet-available",
  walletCreated: "wallet-created",
  walletUpdated: "wallet-updated",
  operationForm: "operation-form",
  amount: "amount",
  amountHint: "amount-hint",
  deposit: "deposit",
  withdraw: "withdraw",
  operations: "operations",
  operationsBody: "operations-body",
  operationsEmpty: "operations-empty",
  operationsMore: "operations-more",
  transferForm: "transfer-form",
  transferPayee: "transfer-payee",
  transferPayeeId: "transfer-payee-id",
  transferAmount: "transfer-amount",
  transferAmountHint: "transfer-amount-hint",
  transferReference: "transfer-reference",
  transferSend: "transfer-send",
  holdForm: "hold-form",
  holdAmount: "hold-amount",
  holdAmountHint: "hold-amount-hint",
  holdPayeeId: "hold-payee-id",
  holdExpiresIn: "hold-expires-in",
  holdReference: "hold-reference",
  holdPlace: "hold-place",
  holds: "holds",
  holdsEmpty: "holds-empty",
  holdsHint: "holds-hint",
  holdsMore: "holds-more",
  chartSection: "chart-section",
  chart: "balance-chart",
  apiKeyForm: "api-key-form",
  apiKey: "api-key",
};

export function collectElements() {
  Object.keys(ELEMENT_IDS).forEach(function (name) {
    els[name] = document.getElementById(ELEMENT_IDS[name]);
  });
  els.operationsWrap = els.operations.parentElement;
}

/**
 * A button whose request is running is aria-disabled, not disabled: a disabled button
 * drops the keyboard focus to the page, and a keyboard user would have to find their
 * place again. Its handler ignores activations while it is busy.
 */
export function setBusy(button, busy) {
  if (busy) {
    button.setAttribute("aria-disabled", "true");
    button.setAttribute("aria-busy", "true");
  } else {
    button.removeAttribute("aria-disabled");
    button.removeAttribute("aria-busy");
  }
}

export function isBusy(button) {
  return button.getAttribute("aria-disabled") === "true";
}
