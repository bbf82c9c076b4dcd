/* Display formatting of the server's strings: grouped money digits and local times, no arithmetic.
 *
 * Money is never turned into a JavaScript number: balances are shown as the server wrote
 * them, with their digits grouped (1,234,567.89) by rewriting the string: a double would
 * lose cents past 2^53.
 */

/**
 * "1234567.89" as "1,234,567.89": the whole part of the decimal string grouped by threes,
 * the decimals kept as written, however many the currency has ("1500" as "1,500",
 * "1234.500" as "1,234.500").
 */
export function groupDigits(amount) {
  const match = /^(-?)([0-9]+)(\.[0-9]+)?$/.exec(typeof amount === "string" ? amount : "");
  if (!match) {
    return amount; // not a plain decimal: shown as it came
  }
  return match[1] + match[2].replace(/\B(?=(?:[0-9]{3})+$)/g, ",") + (match[3] || "");
}

/** An amount of money as a person reads it: its digits grouped, then its currency ("15.00 USD"). */
export function formatMoney(amount, currency) {
  const grouped = groupDigits(amount);
  return typeof currency === "string" && currency ? grouped + " " + currency : grouped;
}

/** The server's timestamp in milliseconds since the epoch, or NaN for anything else. */
export function timeOf(iso) {
  if (typeof iso !== "string" || !iso) {
    return NaN;
  }
  return new Date(iso.replace(/(\.\d{3})\d+/, "$1")).getTime(); // some engines reject microseconds
}

function formatTime(iso) {
  if (typeof iso !== "string" || !iso) {
    return "";
  }
  const date = new Date(timeOf(iso));
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** Fill a <time> element: local time to read, the server's timestamp to hover and parse. */
export function setTime(element, iso) {
  element.textContent = formatTime(iso);
  element.dateTime = iso || "";
  element.title = iso || "";
}

/** A ledger entry type as a person reads it: its words apart, with spaces for underscores. */
export function entryLabel(operationType) {
  return typeof operationType === "string" ? operationType.replace(/_/g, " ") : "";
}

/** A wallet id shortened for a table cell: its first eight characters ("3f1c9a2b"). */
export function shortId(id) {
  return typeof id === "string" ? id.slice(0, 8) : "";
}
