/* Transfers the history mentions: each asked of the service once, and its other wallet shown. */

import { api } from "./api.js";
import { shortId } from "./format.js";

const answers = new Map(); // transferId -> Promise of the service's answer for it

/** True when asking again could get another answer (no network, no key yet, an outage). */
function worthAskingAgain(result) {
  return result.status === 0 || result.status === 401 || result.status >= 500;
}

/** The service's answer for a transfer: one GET per transfer id, shared by every row showing it. */
function lookUp(transferId) {
  if (!answers.has(transferId)) {
    const asked = api("GET", "/transfers/" + encodeURIComponent(transferId)).then(function (result) {
      if (!result.ok && worthAskingAgain(result)) {
        answers.delete(transferId); // a row drawn later asks again; a 404 is final
      }
      return result;
    });
    answers.set(transferId, asked);
  }
  return answers.get(transferId);
}

/** Keep a transfer the service has just answered with (one this page sent): no need to ask. */
export function rememberTransfer(transfer) {
  if (transfer && typeof transfer.id === "string") {
    answers.set(transfer.id, Promise.resolve({ ok: true, status: 200, data: transfer }));
  }
}

function sameId(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

/** The wallet on the other side of `operation`, which is one side of `transfer`. */
function otherSide(operation, transfer, sign) {
  if (sameId(operation.walletId, transfer.fromWalletId)) {
    return { to: true, walletId: transfer.toWalletId };
  }
  if (sameId(operation.walletId, transfer.toWalletId)) {
    return { to: false, walletId: transfer.fromWalletId };
  }
  return sign < 0 ? { to: true, walletId: transfer.toWalletId } : { to: false, walletId: transfer.fromWalletId };
}

/** A link to a wallet: opens it on this page (see onHistoryClick), or in a new tab by its address. */
export function walletLink(walletId) {
  const link = document.createElement("a");
  link.href = "#wallet=" + encodeURIComponent(walletId);
  link.className = "wallet-link";
  link.dataset.walletId = walletId;
  link.title = walletId;
  link.textContent = shortId(walletId);
  return link;
}

function showCounterparty(note, operation, sign, result) {
  const transfer = result.ok ? result.data : null;
  const side = transfer ? otherSide(operation, transfer, sign) : null;
  if (!side || typeof side.walletId !== "string") {
    note.textContent =
      "Transfer " + shortId(operation.transferId) + " (its other wallet could not be looked up)";
    return;
  }
  note.replaceChildren((side.to ? "To" : "From") + " wallet ", walletLink(side.walletId));
}

/**
 * The line of a transfer's ledger entry that names the other wallet ("To wallet 3f1c9a2b");
 * it says "Transfer…" until the transfer is known.
 */
export function counterpartyNote(operation, sign) {
  const note = document.createElement("span");
  note.className = "entry-note";
  note.dataset.testid = "counterparty";
  note.textContent = sign < 0 ? "Transfer to another wallet…" : "Transfer from another wallet…";
  lookUp(operation.transferId).then(function (result) {
    showCounterparty(note, operation, sign, result);
  });
  return note;
}
