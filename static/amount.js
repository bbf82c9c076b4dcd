/* The server's rule for an operation amount, checked on the typed string (never a float).
 *
 * An amount has at most as many decimals as its wallet's currency (none for JPY, two for
 * USD, three for BHD), and never more than three; at most 1000000000000 major units.
 */

const MAX_DECIMALS = 3; // the most any currency of the service has
const MAX_AMOUNT_WHOLE = "1000000000000"; // the server's maximum, in major units
const COUNT_WORDS = ["no", "one", "two", "three"];

/** The decimals an amount may have: the currency's, or the service's most when it is unknown. */
function allowedDecimals(digits) {
  return Number.isInteger(digits) && digits >= 0 && digits <= MAX_DECIMALS ? digits : MAX_DECIMALS;
}

function amountPattern(digits) {
  return digits === 0 ? /^[0-9]+$/ : new RegExp("^[0-9]+(\\.[0-9]{1," + digits + "})?$");
}

function exceedsMaximum(amount) {
  const parts = amount.split(".");
  const whole = parts[0].replace(/^0+(?=[0-9])/, "");
  const fraction = parts[1] || "";
  if (whole.length !== MAX_AMOUNT_WHOLE.length) {
    return whole.length > MAX_AMOUNT_WHOLE.length;
  }
  if (whole !== MAX_AMOUNT_WHOLE) {
    return whole > MAX_AMOUNT_WHOLE; // equal-length digit strings compare like numbers
  }
  return /[1-9]/.test(fraction);
}

/** "10.50" for two decimals, "1500" for none: an example amount as it should be typed. */
function example(digits) {
  return digits === 0 ? "1500" : "10.5" + "0".repeat(digits - 1);
}

function decimalsInWords(digits) {
  return COUNT_WORDS[digits] + (digits === 1 ? " decimal" : " decimals");
}

/** "enter …" as "For USD, enter …", or as "Enter …" when the currency is unknown. */
function forCurrency(currency, request) {
  return currency ? "For " + currency + ", " + request : request[0].toUpperCase() + request.slice(1);
}

/**
 * Why the typed amount would be refused, or null when it is acceptable.
 *
 * `digits` are the decimals of the wallet's currency (0, 2 or 3) and `currency` its code,
 * for the wording.
 */
export function amountProblem(amount, digits, currency) {
  const decimals = allowedDecimals(digits);
  if (amount === "") {
    return "Enter an amount.";
  }
  if (!amountPattern(decimals).test(amount)) {
    if (decimals === 0) {
      return forCurrency(currency, "enter whole units, with no decimals, for example 1500.");
    }
    return forCurrency(
      currency,
      "enter the amount as digits with at most " + decimalsInWords(decimals) +
        " after a dot, for example 10 or " + example(decimals) + "."
    );
  }
  if (!/[1-9]/.test(amount)) {
    return "The amount must be greater than 0.";
  }
  if (exceedsMaximum(amount)) {
    const maximum = MAX_AMOUNT_WHOLE + (decimals ? "." + "0".repeat(decimals) : "");
    return "The amount must be at most " + maximum + (currency ? " " + currency : "") + ".";
  }
  return null;
}

/** The line under the amount field: what an amount of this currency looks like. */
export function amountHint(digits, currency) {
  const decimals = allowedDecimals(digits);
  const what = "A positive amount" + (currency ? " in " + currency : "");
  if (decimals === 0) {
    return what + ", in whole units (no decimals), for example 1500.";
  }
  return what + " with at most " + decimalsInWords(decimals) + ", for example 10 or " + example(decimals) + ".";
}

/** The amount field's placeholder: zero written with the currency's decimals. */
export function amountPlaceholder(digits) {
  const decimals = allowedDecimals(digits);
  return decimals === 0 ? "0" : "0." + "0".repeat(decimals);
}
