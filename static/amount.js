/* The server's rule for an operation amount, checked on the typed string (never a float). */

const AMOUNT_PATTERN = /^[0-9]+(\.[0-9]{1,2})?$/;
const MAX_AMOUNT_WHOLE = "1000000000000"; // the server's maximum is 1000000000000.00

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

/** Why the typed amount would be refused, or null when it is acceptable. */
export function amountProblem(amount) {
  if (amount === "") {
    return "Enter an amount.";
  }
  if (!AMOUNT_PATTERN.test(amount)) {
    return "Enter the amount as digits with at most two decimals after a dot, for example 10 or 10.50.";
  }
  if (!/[1-9]/.test(amount)) {
    return "The amount must be greater than 0.";
  }
  if (exceedsMaximum(amount)) {
    return "The amount must be at most 1000000000000.00.";
  }
  return null;
}
