/* The deposit and withdraw form: the amount checked on the string, one operation at a time. */

import { amountProblem } from "./amount.js";
import { idempotentPost, walletPath } from "./api.js";
import { currencyDigits, entrySign } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import { formatMoney } from "./format.js";
import { showNewOperations } from "./operations.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";
import { refreshWallet } from "./wallet-details.js";
import { updateListedBalance } from "./wallet-list.js";

export function markAmountInvalid(invalid) {
  if (invalid) {
    els.amount.setAttribute("aria-invalid", "true");
  } else {
    els.amount.removeAttribute("aria-invalid");
  }
}

function setOperationBusy(busy) {
  setBusy(els.deposit, busy);
  setBusy(els.withdraw, busy);
  els.operationForm.setAttribute("aria-busy", busy ? "true" : "false");
}

function successSentence(result, currency) {
  const operation = result.data.operation || {};
  const verb = entrySign(operation.operationType) < 0 ? "Withdrew" : "Deposited";
  const replayed = result.headers.get("Idempotent-Replayed") === "true";
  return (
    verb + " " + formatMoney(operation.amount, currency) +
    " — balance " + formatMoney(result.data.balance, currency) +
    (replayed ? " (this request had already been applied; it was not applied again)" : "")
  );
}

/** The currency of an applied operation: the ledger entry says it; the wallet's otherwise. */
function appliedCurrency(result, walletCurrency) {
  const operation = result.data.operation;
  return operation && typeof operation.currency === "string" ? operation.currency : walletCurrency;
}

function showAppliedOperation(walletId, result, currency) {
  const operation = result.data.operation;
  updateListedBalance(walletId, result.data.balance, currency);
  if (state.selectedId !== walletId) {
    return;
  }
  els.walletBalance.textContent = formatMoney(result.data.balance, currency);
  if (operation) {
    showNewOperations([operation]);
  }
}

function markServerFieldErrors(result) {
  const errors = result.data && Array.isArray(result.data.errors) ? result.data.errors : [];
  markAmountInvalid(errors.some(function (error) {
    return error && error.field === "amount";
  }));
}

async function submitOperation(operationType) {
  const walletId = state.selectedId;
  const currency = state.selectedCurrency;
  if (isBusy(els.deposit)) {
    return; // one operation at a time from this form
  }
  if (!walletId) {
    setStatus("error", "Select a wallet first.");
    return;
  }
  const amount = els.amount.value;
  const invalid = amountProblem(amount, currencyDigits(currency), currency);
  markAmountInvalid(Boolean(invalid));
  if (invalid) {
    setStatus("error", invalid);
    els.amount.focus();
    return;
  }

  setOperationBusy(true);
  try {
    const result = await idempotentPost(walletPath(walletId) + "/operation", { operationType, amount });
    if (!result.ok) {
      markServerFieldErrors(result);
      reportFailure(result);
      return;
    }
    const applied = appliedCurrency(result, currency);
    showAppliedOperation(walletId, result, applied);
    setStatus("success", successSentence(result, applied));
    if (els.amount.value === amount) {
      els.amount.value = "";
    }
    await refreshWallet(walletId);
  } finally {
    setOperationBusy(false);
  }
}

export function onOperationSubmit(event) {
  event.preventDefault();
  const submitter = event.submitter || state.clickedOperation;
  state.clickedOperation = null;
  if (submitter === els.deposit || submitter === els.withdraw) {
    submitOperation(submitter.value);
  }
}

/** Enter in the amount field must not pick Deposit or Withdraw on the user's behalf. */
export function onAmountKeydown(event) {
  if (event.key === "Enter") {
    event.preventDefault();
    setStatus("info", "Choose Deposit or Withdraw to apply the amount.");
  }
}

export function rememberClickedOperation(event) {
  state.clickedOperation = event.currentTarget; // for browsers without SubmitEvent.submitter
}
