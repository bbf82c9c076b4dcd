/* Capture and Void on a held hold of the list: one request per hold at a time, each sent with
   an Idempotency-Key; what they change is shown where the page shows it. */

import { amountProblem } from "./amount.js";
import { api, idempotentPost } from "./api.js";
import { currencyDigits } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import { fieldRefusal, markInvalid, problemOf, titleOf } from "./fields.js";
import { formatMoney, shortId } from "./format.js";
import { HELD, holdPath, showHold } from "./holds.js";
import { problemMessage } from "./messages.js";
import { showNewOperations } from "./operations.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";
import { refreshWallet } from "./wallet-details.js";
import { updateListedBalance } from "./wallet-list.js";

// Why a hold is no longer held, as a sentence says it.
const ENDED = { CAPTURED: "already captured", VOIDED: "already voided", EXPIRED: "expired" };

function replayNote(result) {
  return result.headers.get("Idempotent-Replayed") === "true"
    ? " (this had already been done; it was not done again)"
    : "";
}

/** A refusal worded for the hold it is about; `verb` says what was tried ("captured"). */
async function refusalSentence(result, item, verb) {
  const problem = problemOf(result);
  const name = "hold " + shortId(item.dataset.holdId);
  if (problem.code === "HOLD_NOT_FOUND") {
    return titleOf("HOLD_NOT_FOUND", "Hold not found") + ": the service has no " + name + ".";
  }
  if (problem.code === "HOLD_NOT_ACTIVE") {
    const now = await api("GET", holdPath(item.dataset.holdId)); // the status it has now
    if (now.ok && Object.prototype.hasOwnProperty.call(ENDED, now.data.status)) {
      showHold(now.data);
      await refreshWallet(now.data.walletId);
      return titleOf("HOLD_NOT_ACTIVE", "Hold not active") + ": " + name + " is " +
        ENDED[now.data.status] + ", so it can no longer be captured or voided.";
    }
    return problemMessage(result.data, result.headers, result.status);
  }
  if (problem.code === "BALANCE_LIMIT_EXCEEDED") {
    return titleOf("BALANCE_LIMIT_EXCEEDED", "Balance limit exceeded") + ": the payee's wallet " +
      item.dataset.payeeId + " would pass its maximum balance; " + name + " is still held.";
  }
  return fieldRefusal(result, { amount: "the amount to capture" }, "The " + name + " was not " + verb);
}

function entriesOf(result) {
  return Array.isArray(result.data.operations) ? result.data.operations : [];
}

/** Each wallet's new balance where the page shows it; the selected wallet's entry on its history. */
function showCaptureEntries(entries) {
  entries.forEach(function (entry) {
    updateListedBalance(entry.walletId, entry.balanceAfter, entry.currency);
  });
  const own = entries.filter(function (entry) {
    return entry.walletId === state.selectedId;
  });
  if (own.length) {
    els.walletBalance.textContent = formatMoney(own[0].balanceAfter, own[0].currency);
    showNewOperations(own);
  }
}

function captureSentence(result) {
  const hold = result.data.hold;
  const taken = entriesOf(result).find(function (entry) {
    return entry.walletId === hold.walletId;
  });
  return (
    "Captured " + formatMoney(hold.capturedAmount, hold.currency) + " of hold " + shortId(hold.id) +
    (typeof hold.toWalletId === "string" ? " for wallet " + hold.toWalletId : "") +
    (taken ? " — balance " + formatMoney(taken.balanceAfter, hold.currency) : "") +
    replayNote(result)
  );
}

function voidSentence(result) {
  const hold = result.data;
  return (
    "Voided hold " + shortId(hold.id) + ": " + formatMoney(hold.amount, hold.currency) +
    " is no longer held" + replayNote(result)
  );
}

async function capture(item, amountField) {
  const amount = amountField.value;
  const currency = item.dataset.currency;
  markInvalid(amountField, false);
  const invalid = amount === "" ? null : amountProblem(amount, currencyDigits(currency), currency);
  if (invalid) {
    markInvalid(amountField, true);
    setStatus("error", invalid);
    amountField.focus();
    return;
  }
  const result = await idempotentPost(holdPath(item.dataset.holdId) + "/capture", amount ? { amount } : {});
  if (!result.ok) {
    const errors = problemOf(result).errors;
    markInvalid(amountField, Array.isArray(errors) && errors.some(function (error) {
      return error && error.field === "amount";
    }));
    reportFailure(result, await refusalSentence(result, item, "captured"));
    return;
  }
  showHold(result.data.hold);
  showCaptureEntries(entriesOf(result));
  setStatus("success", captureSentence(result));
  await refreshWallet(result.data.hold.walletId);
}

async function release(item) {
  const result = await idempotentPost(holdPath(item.dataset.holdId) + "/void");
  if (!result.ok) {
    reportFailure(result, await refusalSentence(result, item, "voided"));
    return;
  }
  showHold(result.data);
  setStatus("success", voidSentence(result));
  await refreshWallet(result.data.walletId);
}

/** One action at a time per hold: its buttons are busy until the service has answered. */
async function act(item, action) {
  const buttons = Array.from(item.querySelectorAll("button[data-action]"));
  if (item.dataset.status !== HELD || buttons.some(isBusy)) {
    return;
  }
  buttons.forEach(function (button) {
    setBusy(button, true);
  });
  try {
    if (action === "capture") {
      await capture(item, item.querySelector("input.capture-amount"));
    } else {
      await release(item);
    }
  } finally {
    buttons.forEach(function (button) {
      setBusy(button, false);
    });
  }
}

export function onHoldsClick(event) {
  const button = event.target.closest("button[data-action]");
  const item = button ? button.closest(".hold-item") : null;
  if (item && els.holds.contains(item)) {
    act(item, button.dataset.action);
  }
}

/** Enter in a hold's amount field captures that hold: the one thing the field is for. */
export function onHoldsKeydown(event) {
  const field = event.target;
  if (event.key === "Enter" && field.matches && field.matches("input.capture-amount")) {
    event.preventDefault();
    act(field.closest(".hold-item"), "capture");
  }
}

export function onHoldsInput(event) {
  if (event.target.matches && event.target.matches("input.capture-amount")) {
    markInvalid(event.target, false);
  }
}
