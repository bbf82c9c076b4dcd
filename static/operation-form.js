/* The deposit and withdraw form: the amount checked on the string, one operation at a time. */

import { amountProblem } from "./amount.js";
import { idempotentPost, walletPath } from "./api.js";
import { entrySign } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import { groupDigits } from "./format.js";
import { addOperations } from "./operations.js";
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

function successSentence(result) {
  const operation = result.data.operation || {};
  const verb = entrySign(operation.operationType) < 0 ? "Withdrew" : "Deposited";
  const replayed = result.headers.get("Idempotent-Replayed") === "true";
  return (
    verb + " " + groupDigits(operation.amount) + " — balance " + groupDigits(result.data.balance) +
    (replayed ? " (this request had already been applied; it was not applied again)" : "")
  );
}

function showAppliedOperation(walletId, result) {
  const operation = result.data.operation;
  updateListedBalance(walletId, result.data.balance);
  if (state.selectedId !== walletId) {
    return;
  }
  els.walletBalance.textContent = groupDigits(result.data.balance);
  if (operation) {
    els.operationsBody.querySelectorAll("tr.is-new").forEach(function (row) {
      row.classList.remove("is-new");
    });
    addOperations([operation], "start").forEach(function (row) {
      row.classList.add("is-new");
    });
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
  if (isBusy(els.deposit)) {
    return; // one operation at a time from this form
  }
  if (!walletId) {
    setStatus("error", "Select a wallet first.");
    return;
  }
  const amount = els.amount.value;
  const invalid = amountProblem(amount);
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
    showAppliedOperation(walletId, result);
    setStatus("success", successSentence(result));
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
