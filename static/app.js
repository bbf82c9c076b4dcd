/* Wallet page entry: finds the page's elements, wires its controls, and shows the first data. */

import { onApiKeySubmit } from "./api-key-form.js";
import { collectElements, els } from "./elements.js";
import { onHoldsClick, onHoldsInput, onHoldsKeydown } from "./hold-actions.js";
import { onHoldFieldInput, onHoldSubmit } from "./hold-form.js";
import { loadMoreHolds } from "./holds.js";
import { loadMoreOperations } from "./operations.js";
import {
  markAmountInvalid,
  onAmountKeydown,
  onOperationSubmit,
  rememberClickedOperation,
} from "./operation-form.js";
import { onPayeeChosen, onPayeeIdInput, onTransferFieldInput, onTransferSubmit } from "./transfer-form.js";
import {
  copyWalletId,
  createWallet,
  onHistoryClick,
  onWalletListClick,
  openWalletFromField,
} from "./wallet-actions.js";
import { openWallet, walletIdFromAddress } from "./wallet-details.js";
import { nextWalletPage, previousWalletPage, showWalletPage } from "./wallet-list.js";

function init() {
  collectElements();
  els.createWallet.addEventListener("click", createWallet);
  els.walletsNext.addEventListener("click", nextWalletPage);
  els.walletsPrev.addEventListener("click", previousWalletPage);
  els.walletList.addEventListener("click", onWalletListClick);
  els.openWalletForm.addEventListener("submit", function (event) {
    event.preventDefault();
    openWalletFromField();
  });
  els.operationForm.addEventListener("submit", onOperationSubmit);
  els.deposit.addEventListener("click", rememberClickedOperation);
  els.withdraw.addEventListener("click", rememberClickedOperation);
  els.amount.addEventListener("keydown", onAmountKeydown);
  els.amount.addEventListener("input", function () {
    markAmountInvalid(false);
  });
  els.transferForm.addEventListener("submit", onTransferSubmit);
  els.transferPayee.addEventListener("change", onPayeeChosen);
  els.transferPayeeId.addEventListener("input", onPayeeIdInput);
  els.transferAmount.addEventListener("input", onTransferFieldInput);
  els.transferReference.addEventListener("input", onTransferFieldInput);
  els.holdForm.addEventListener("submit", onHoldSubmit);
  [els.holdAmount, els.holdPayeeId, els.holdExpiresIn, els.holdReference].forEach(function (field) {
    field.addEventListener("input", onHoldFieldInput);
  });
  els.holds.addEventListener("click", onHoldsClick);
  els.holds.addEventListener("click", onHistoryClick);
  els.holds.addEventListener("keydown", onHoldsKeydown);
  els.holds.addEventListener("input", onHoldsInput);
  els.holdsMore.addEventListener("click", loadMoreHolds);
  els.operationsBody.addEventListener("click", onHistoryClick);
  els.copyWalletId.addEventListener("click", copyWalletId);
  els.operationsMore.addEventListener("click", loadMoreOperations);
  els.apiKeyForm.addEventListener("submit", onApiKeySubmit);

  showWalletPage(null, []);
  const walletId = walletIdFromAddress();
  if (walletId) {
    openWallet(walletId);
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", init);
} else {
  init();
}
