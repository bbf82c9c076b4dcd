/* The service's catalogue, rendered into the page: its problems, its ledger entry types and its
   currencies. */

const CATALOGUE = JSON.parse(document.getElementById("catalogue").textContent);

function own(table, key) {
  return table && Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

/** The problem a code names ({status, title}), or undefined for a code the service does not have. */
export function problemKind(code) {
  return own(CATALOGUE.problems, code);
}

/** The code an answer with this status and no code of its own stands for, if one does. */
export function codeForStatus(status) {
  return own(CATALOGUE.codeForStatus, String(status));
}

/** +1 for an entry type that adds to the balance, -1 for one that takes from it, 0 if unknown. */
export function entrySign(operationType) {
  const entry = own(CATALOGUE.entryTypes, operationType);
  return entry ? entry.sign : 0;
}

/** How many decimals the currency's amounts have (0, 2 or 3), or undefined for a code it does not accept. */
export function currencyDigits(code) {
  return own(CATALOGUE.currencies, code);
}
