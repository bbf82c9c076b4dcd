/* What the forms that name a payee share: marking a field invalid, the checks of a wallet id
   and a reference made before anything is sent, and the wording of a refused payee. */

import { problemKind } from "./catalogue.js";
import { problemMessage } from "./messages.js";
import { listedCurrency } from "./payees.js";

const WALLET_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_REFERENCE_LENGTH = 128; // code points, as the service counts them
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** aria-invalid, so a screen reader says the field needs correcting. */
export function markInvalid(field, invalid) {
  if (invalid) {
    field.setAttribute("aria-invalid", "true");
  } else {
    field.removeAttribute("aria-invalid");
  }
}

/** Why a typed payee id would be refused, or null when it has the form of a wallet id. */
export function walletIdProblem(walletId) {
  if (!WALLET_ID.test(walletId)) {
    return "Paste the payee's whole wallet id: 36 characters, like 3f1c9a2b-0d4e-4b7a-9c1e-2a5b7c9d0e1f.";
  }
  return null;
}

/** Why a (trimmed) reference would be refused, or null when the service takes it. */
export function referenceProblem(reference) {
  if (Array.from(reference).length > MAX_REFERENCE_LENGTH) {
    return "A reference is at most 128 characters.";
  }
  if (CONTROL_CHARACTER.test(reference)) {
    return "A reference cannot hold control characters.";
  }
  return null;
}

/** A problem's title as the service's catalogue gives it, or `fallback` for a code it lacks. */
export function titleOf(code, fallback) {
  const kind = problemKind(code);
  return kind ? kind.title : fallback;
}

export function problemOf(result) {
  return result.data && typeof result.data === "object" ? result.data : {};
}

/**
 * A refusal about the two wallets of a payment (`payerId` pays `payeeId` in `currency`): which
 * wallet was not found, which currencies differ; null for any other refusal.
 */
export function payeeRefusal(result, payerId, payeeId, currency) {
  const problem = problemOf(result);
  const detail = typeof problem.detail === "string" ? problem.detail.toLowerCase() : "";
  if (problem.code === "WALLET_NOT_FOUND" && payeeId && detail.includes(payeeId)) {
    return titleOf("WALLET_NOT_FOUND", "Wallet not found") + ": no wallet has the payee's id " + payeeId + ".";
  }
  if (problem.code === "WALLET_NOT_FOUND" && detail.includes(payerId.toLowerCase())) {
    return titleOf("WALLET_NOT_FOUND", "Wallet not found") + ": this wallet (" + payerId + ") no longer exists.";
  }
  if (problem.code === "CURRENCY_MISMATCH" && payeeId) {
    const payeeCurrency = listedCurrency(payeeId);
    const holds = payeeCurrency && payeeCurrency !== currency
      ? " holds " + payeeCurrency + ", not " + currency
      : " does not hold " + currency;
    return titleOf("CURRENCY_MISMATCH", "Currency mismatch") + ": wallet " + payeeId + holds +
      ". Money moves only between wallets of the same currency.";
  }
  return null;
}

/**
 * A validation refusal said field by field in the form's own words (`names`: field -> words),
 * after `lead` ("The hold was not placed"); the catalogue's wording for any other problem.
 */
export function fieldRefusal(result, names, lead) {
  const problem = problemOf(result);
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  const said = errors
    .filter(function (error) {
      return error && typeof error.message === "string";
    })
    .map(function (error) {
      const name = Object.prototype.hasOwnProperty.call(names, error.field) ? names[error.field] : error.field;
      return name + " " + error.message.trim();
    });
  if (problem.code === "VALIDATION_ERROR" && said.length) {
    return lead + ": " + said.join("; ") + ".";
  }
  return problemMessage(result.data, result.headers, result.status);
}
