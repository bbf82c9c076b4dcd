/* The "Place a hold" form: an amount checked on the string, an optional payee, expiry and
   reference; one hold at a time, each sent with an Idempotency-Key so a retry never holds twice. */

import { amountProblem } from "./amount.js";
import { idempotentPost, walletPath } from "./api.js";
import { currencyDigits } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import {
  fieldRefusal,
  markInvalid,
  payeeRefusal,
  problemOf,
  referenceProblem,
  walletIdProblem,
} from "./fields.js";
import { formatMoney } from "./format.js";
import { showHold } from "./holds.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";
import { refreshWallet } from "./wallet-details.js";

const MAX_EXPIRES_IN = 2592000; // seconds: 30 days, the longest hold the service places
const WHOLE_SECONDS = /^[0-9]+$/;
// The request's fields as a refusal names them, in the form's words.
const FIELD_NAMES = {
  amount: "the amount",
  toWalletId: "the payee's wallet id",
  expiresIn: "the expiry",
  reference: "the reference",
};

function formFields() {
  return { amount: els.holdAmount, toWalletId: els.holdPayeeId, expiresIn: els.holdExpiresIn, reference: els.holdReference };
}

function clearInvalidMarks() {
  Object.values(formFields()).forEach(function (field) {
    markInvalid(field, false);
  });
}

/** Whole seconds from 1 to the longest, or null. */
function expiresInSeconds(text) {
  if (!WHOLE_SECONDS.test(text)) {
    return null;
  }
  const seconds = parseInt(text, 10);
  return seconds >= 1 && seconds <= MAX_EXPIRES_IN ? seconds : null;
}

/** The form's request, or {problem, field} saying what to correct before anything is sent. */
function readHold(walletId, currency) {
  const amount = els.holdAmount.value;
  const amountInvalid = amountProblem(amount, currencyDigits(currency), currency);
  if (amountInvalid) {
    return { problem: amountInvalid, field: els.holdAmount };
  }
  const body = { amount };
  const toWalletId = els.holdPayeeId.value.trim().toLowerCase();
  if (toWalletId) {
    const idInvalid = walletIdProblem(toWalletId);
    if (idInvalid) {
      return { problem: idInvalid, field: els.holdPayeeId };
    }
    if (toWalletId === walletId.toLowerCase()) {
      return { problem: "Name another wallet as the payee: a hold cannot pay its own wallet.", field: els.holdPayeeId };
    }
    body.toWalletId = toWalletId;
  }
  const expiresIn = els.holdExpiresIn.value.trim();
  if (expiresIn) {
    const seconds = expiresInSeconds(expiresIn);
    if (seconds === null) {
      return {
        problem: "Enter the expiry in whole seconds from 1 to 2592000 (30 days), or leave it empty for 7 days.",
        field: els.holdExpiresIn,
      };
    }
    body.expiresIn = seconds;
  }
  const reference = els.holdReference.value.trim();
  const referenceInvalid = referenceProblem(reference);
  if (referenceInvalid) {
    return { problem: referenceInvalid, field: els.holdReference };
  }
  if (reference) {
    body.reference = reference;
  }
  return { body };
}

/** A refusal worded for a hold: which wallet, which currencies, which field. */
function refusalSentence(result, walletId, body, currency) {
  return (
    payeeRefusal(result, walletId, body.toWalletId, currency) ||
    fieldRefusal(result, FIELD_NAMES, "The hold was not placed")
  );
}

/** The fields a refusal is about, marked so a screen reader says they are invalid. */
function markRefusedFields(result, walletId) {
  const problem = problemOf(result);
  const fields = formFields();
  const detail = typeof problem.detail === "string" ? problem.detail.toLowerCase() : "";
  const aboutPayee = problem.code === "CURRENCY_MISMATCH" ||
    (problem.code === "WALLET_NOT_FOUND" && !detail.includes(walletId.toLowerCase()));
  if (aboutPayee) {
    markInvalid(fields.toWalletId, true);
  }
  if (problem.code === "INSUFFICIENT_FUNDS") {
    markInvalid(fields.amount, true);
  }
  (Array.isArray(problem.errors) ? problem.errors : []).forEach(function (error) {
    if (error && Object.prototype.hasOwnProperty.call(fields, error.field)) {
      markInvalid(fields[error.field], true);
    }
  });
}

function successSentence(result, wallet) {
  const hold = result.data;
  const replayed = result.headers.get("Idempotent-Replayed") === "true";
  return (
    "Held " + formatMoney(hold.amount, hold.currency) +
    (typeof hold.toWalletId === "string" ? " for wallet " + hold.toWalletId : "") +
    (wallet ? " — available " + formatMoney(wallet.availableBalance, wallet.currency) : "") +
    (replayed ? " (this hold had already been placed; it was not placed again)" : "")
  );
}

function setHoldBusy(busy) {
  setBusy(els.holdPlace, busy);
  els.holdForm.setAttribute("aria-busy", busy ? "true" : "false");
}

function clearForm(sentAmount) {
  if (els.holdAmount.value === sentAmount) {
    els.holdAmount.value = "";
    els.holdPayeeId.value = "";
    els.holdExpiresIn.value = "";
    els.holdReference.value = "";
  }
}

async function placeHold() {
  const walletId = state.selectedId;
  const currency = state.selectedCurrency;
  if (isBusy(els.holdPlace)) {
    return; // one hold at a time: a second click while one is on its way does nothing
  }
  if (!walletId) {
    setStatus("error", "Select a wallet first.");
    return;
  }
  clearInvalidMarks();
  const read = readHold(walletId, currency);
  if (read.problem) {
    markInvalid(read.field, true);
    setStatus("error", read.problem);
    read.field.focus();
    return;
  }

  setHoldBusy(true);
  try {
    const result = await idempotentPost(walletPath(walletId) + "/holds", read.body);
    if (!result.ok) {
      markRefusedFields(result, walletId);
      reportFailure(result, refusalSentence(result, walletId, read.body, currency));
      return;
    }
    showHold(result.data);
    clearForm(read.body.amount);
    const wallet = await refreshWallet(walletId);
    setStatus("success", successSentence(result, wallet));
  } finally {
    setHoldBusy(false);
  }
}

export function onHoldSubmit(event) {
  event.preventDefault();
  placeHold();
}

export function onHoldFieldInput(event) {
  markInvalid(event.currentTarget, false);
}
