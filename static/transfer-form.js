/* The "Send money" form: a payee, an amount checked on the string, an optional reference; one
   transfer at a time, each sent with an Idempotency-Key so a retry never moves money twice. */

import { amountProblem } from "./amount.js";
import { idempotentPost } from "./api.js";
import { currencyDigits } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import { markInvalid, payeeRefusal, problemOf, referenceProblem, walletIdProblem } from "./fields.js";
import { formatMoney } from "./format.js";
import { problemMessage } from "./messages.js";
import { showNewOperations } from "./operations.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";
import { rememberTransfer } from "./transfers.js";
import { openWallet, refreshWallet } from "./wallet-details.js";
import { updateListedBalance } from "./wallet-list.js";

function clearInvalidMarks() {
  [els.transferPayee, els.transferPayeeId, els.transferAmount, els.transferReference].forEach(
    function (field) {
      markInvalid(field, false);
    }
  );
}

/** The payee field in use: a pasted id wins over the list, so what is sent is what is shown. */
function payeeField() {
  return els.transferPayeeId.value.trim() ? els.transferPayeeId : els.transferPayee;
}

/** The form's request, or {problem, field} saying what to correct before anything is sent. */
function readTransfer(fromWalletId, currency) {
  const field = payeeField();
  const toWalletId = field.value.trim().toLowerCase();
  if (!toWalletId) {
    return { problem: "Choose the payee wallet from the list, or paste its id.", field };
  }
  const idInvalid = walletIdProblem(toWalletId);
  if (idInvalid) {
    return { problem: idInvalid, field };
  }
  if (toWalletId === fromWalletId.toLowerCase()) {
    return { problem: "Choose another wallet: a wallet cannot send money to itself.", field };
  }
  const amount = els.transferAmount.value;
  const amountInvalid = amountProblem(amount, currencyDigits(currency), currency);
  if (amountInvalid) {
    return { problem: amountInvalid, field: els.transferAmount };
  }
  const reference = els.transferReference.value.trim();
  const referenceInvalid = referenceProblem(reference);
  if (referenceInvalid) {
    return { problem: referenceInvalid, field: els.transferReference };
  }
  const body = { fromWalletId, toWalletId, amount };
  if (reference) {
    body.reference = reference;
  }
  return { body };
}

/** A refusal worded for a transfer: which wallet was not found, which currencies differ. */
function refusalSentence(result, body, currency) {
  return (
    payeeRefusal(result, body.fromWalletId, body.toWalletId, currency) ||
    problemMessage(result.data, result.headers, result.status)
  );
}

/** The field a refusal is about, marked so a screen reader says it is invalid. */
function markRefusedField(result) {
  const problem = problemOf(result);
  if (problem.code === "WALLET_NOT_FOUND" || problem.code === "CURRENCY_MISMATCH") {
    markInvalid(payeeField(), true);
  }
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  const fields = { toWalletId: payeeField(), amount: els.transferAmount, reference: els.transferReference };
  errors.forEach(function (error) {
    const field = error && Object.prototype.hasOwnProperty.call(fields, error.field) ? fields[error.field] : null;
    if (field) {
      markInvalid(field, true);
    }
  });
}

function entryOf(transfer, walletId) {
  const operations = Array.isArray(transfer.operations) ? transfer.operations : [];
  return operations.find(function (operation) {
    return operation && typeof operation.walletId === "string" &&
      operation.walletId.toLowerCase() === walletId.toLowerCase();
  });
}

/** Both wallets' new balances where the page shows them; the payer's entry on top of its history. */
async function showSentTransfer(transfer, body, currency) {
  rememberTransfer(transfer);
  const sent = entryOf(transfer, body.fromWalletId);
  const received = entryOf(transfer, body.toWalletId);
  if (received) {
    updateListedBalance(received.walletId, received.balanceAfter, currency);
  }
  if (sent) {
    updateListedBalance(body.fromWalletId, sent.balanceAfter, currency);
  }
  if (state.selectedId !== body.fromWalletId) {
    return;
  }
  if (sent && typeof sent.id === "string") {
    els.walletBalance.textContent = formatMoney(sent.balanceAfter, currency);
    showNewOperations([sent]);
    await refreshWallet(body.fromWalletId);
  } else {
    await openWallet(body.fromWalletId); // an answer without its entry: read the history again
  }
}

function successSentence(result, body, currency) {
  const transfer = result.data;
  const sent = entryOf(transfer, body.fromWalletId);
  const replayed = result.headers.get("Idempotent-Replayed") === "true";
  return (
    "Sent " + formatMoney(transfer.amount || body.amount, transfer.currency || currency) +
    " to wallet " + (transfer.toWalletId || body.toWalletId) +
    (sent ? " — balance " + formatMoney(sent.balanceAfter, currency) : "") +
    (replayed ? " (this transfer had already been made; it was not made again)" : "")
  );
}

function setTransferBusy(busy) {
  setBusy(els.transferSend, busy);
  els.transferForm.setAttribute("aria-busy", busy ? "true" : "false");
}

async function submitTransfer() {
  const walletId = state.selectedId;
  const currency = state.selectedCurrency;
  if (isBusy(els.transferSend)) {
    return; // one transfer at a time: a second click while one is on its way does nothing
  }
  if (!walletId) {
    setStatus("error", "Select a wallet first.");
    return;
  }
  clearInvalidMarks();
  const read = readTransfer(walletId, currency);
  if (read.problem) {
    markInvalid(read.field, true);
    setStatus("error", read.problem);
    read.field.focus();
    return;
  }

  setTransferBusy(true);
  try {
    const result = await idempotentPost("/transfers", read.body);
    if (!result.ok) {
      markRefusedField(result);
      reportFailure(result, refusalSentence(result, read.body, currency));
      return;
    }
    setStatus("success", successSentence(result, read.body, currency));
    if (els.transferAmount.value === read.body.amount) {
      els.transferAmount.value = "";
      els.transferReference.value = "";
    }
    await showSentTransfer(result.data, read.body, currency);
  } finally {
    setTransferBusy(false);
  }
}

export function onTransferSubmit(event) {
  event.preventDefault();
  submitTransfer();
}

/** The list and the pasted id are one choice: using one clears the other. */
export function onPayeeChosen() {
  markInvalid(els.transferPayee, false);
  if (els.transferPayee.value) {
    els.transferPayeeId.value = "";
    markInvalid(els.transferPayeeId, false);
  }
}

export function onPayeeIdInput() {
  markInvalid(els.transferPayeeId, false);
  if (els.transferPayeeId.value.trim()) {
    els.transferPayee.value = "";
    markInvalid(els.transferPayee, false);
  }
}

export function onTransferFieldInput(event) {
  markInvalid(event.currentTarget, false);
}
