/* Balance-over-time chart: an inline SVG drawn from the ledger's balanceAfter values.
 *
 * Balances stay the server's decimal strings, with whatever decimals their currency has
 * ("1500", "15.00", "1.500"), for everything a person reads (labels, description) and
 * for finding the highest and lowest; they become numbers only to place points on the
 * screen, where a rounding error of a fraction of a pixel cannot mislead anyone. Colours
 * and fonts come from app.css through class names, so the page's CSP needs no inline style.
 */

import { entryLabel } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const HEIGHT = 168;
const PAD_TOP = 14;
const PAD_BOTTOM = 14;
const PAD_RIGHT = 10;
const LABEL_CHAR_WIDTH = 7.5; // 12 px tabular digits, a little generous
const drawn = new WeakMap(); // container -> {operations, width}

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  Object.keys(attributes || {}).forEach(function (key) {
    element.setAttribute(key, String(attributes[key]));
  });
  return element;
}

const MAX_DECIMALS = 3; // the most any currency of the service has

/** A decimal string ("1500", "15.00", "1.500") as an exact count of thousandths. */
function thousandths(balance) {
  const parts = balance.split(".");
  return BigInt(parts[0] + (parts[1] || "").padEnd(MAX_DECIMALS, "0"));
}

function extremes(balances) {
  return balances.reduce(
    function (found, balance) {
      const units = thousandths(balance);
      return {
        low: units < thousandths(found.low) ? balance : found.low,
        high: units > thousandths(found.high) ? balance : found.high,
      };
    },
    { low: balances[0], high: balances[0] }
  );
}

/** Zero written as `balance` is: "0", "0.00" or "0.000". */
function zeroLike(balance) {
  const fraction = balance.split(".")[1] || "";
  return fraction ? "0." + "0".repeat(fraction.length) : "0";
}

/** A balance with its currency, as the rest of the page shows money. */
function withCurrency(amount, currency) {
  return currency ? amount + " " + currency : amount;
}

/** What the picture says, in words, for people who cannot see it. */
function describe(balances, currency) {
  const count = balances.length;
  const say = function (balance) {
    return withCurrency(balance, currency);
  };
  if (count === 1) {
    return "Balance " + say(balances[0]) + " after the only operation shown.";
  }
  const range = extremes(balances);
  return (
    "Balance over " + count + " operations, from " + say(balances[0]) + " to " +
    say(balances[count - 1]) + "; highest " + say(range.high) + ", lowest " + say(range.low) + "."
  );
}

function axisLabel(x, y, text) {
  const label = svgElement("text", { x, y, class: "chart-label", "text-anchor": "end", "dominant-baseline": "middle" });
  label.textContent = text;
  return label;
}

function gridLine(x1, x2, y) {
  return svgElement("line", { x1, x2, y1: y, y2: y, class: "chart-grid" });
}

function point(x, y, operation) {
  const circle = svgElement("circle", { cx: x, cy: y, r: 4, class: "chart-point" });
  const tip = svgElement("title");
  tip.textContent =
    entryLabel(operation.operationType) + " " + withCurrency(operation.amount, operation.currency) +
    ", balance " + withCurrency(operation.balanceAfter, operation.currency);
  circle.append(tip);
  return circle;
}

/** The whole SVG for `operations` (oldest first) at `width` pixels. */
function build(operations, width) {
  const balances = operations.map(function (operation) {
    return operation.balanceAfter;
  });
  const high = extremes(balances).high;
  const zero = zeroLike(high);
  const currency = operations[operations.length - 1].currency;
  const gutter = Math.ceil(Math.max(high.length, 4) * LABEL_CHAR_WIDTH) + 12;
  const plotWidth = Math.max(1, width - gutter - PAD_RIGHT);
  const plotHeight = HEIGHT - PAD_TOP - PAD_BOTTOM;
  const top = Number(high) || 1; // a zero-only history draws on the baseline
  const x = function (index) {
    return operations.length === 1 ? gutter + plotWidth / 2 : gutter + (plotWidth * index) / (operations.length - 1);
  };
  const y = function (balance) {
    return PAD_TOP + plotHeight * (1 - Number(balance) / top);
  };

  const svg = svgElement("svg", {
    role: "img",
    "aria-labelledby": "balance-chart-title",
    "aria-describedby": "balance-chart-desc",
    class: "chart-svg",
    width,
    height: HEIGHT,
    viewBox: "0 0 " + width + " " + HEIGHT,
  });
  const title = svgElement("title", { id: "balance-chart-title" });
  title.textContent = "Balance over time";
  const desc = svgElement("desc", { id: "balance-chart-desc" });
  desc.textContent = describe(balances, currency);

  const coordinates = operations.map(function (operation, index) {
    return [x(index), y(operation.balanceAfter)];
  });
  const line = svgElement("polyline", {
    class: "chart-line",
    points: coordinates.map(function (pair) {
      return pair[0].toFixed(1) + "," + pair[1].toFixed(1);
    }).join(" "),
  });
  const points = svgElement("g", { class: "chart-points" });
  operations.forEach(function (operation, index) {
    points.append(point(coordinates[index][0].toFixed(1), coordinates[index][1].toFixed(1), operation));
  });

  svg.append(
    title,
    desc,
    gridLine(gutter, width - PAD_RIGHT, y(high)),
    gridLine(gutter, width - PAD_RIGHT, y(zero)),
    axisLabel(gutter - 8, y(high), high),
    axisLabel(gutter - 8, y(zero), zero),
    line,
    points
  );
  return svg;
}

function draw(container) {
  const last = drawn.get(container);
  const width = Math.max(200, Math.floor(container.clientWidth));
  last.width = width;
  if (last.operations.length) {
    container.replaceChildren(build(last.operations, width));
  } else {
    container.replaceChildren();
  }
}

function redrawOnResize(container) {
  if (typeof window.ResizeObserver !== "function") {
    return;
  }
  new window.ResizeObserver(function () {
    const last = drawn.get(container);
    if (last && last.width !== Math.max(200, Math.floor(container.clientWidth))) {
      draw(container);
    }
  }).observe(container);
}

/**
 * Draw `operations` (the ledger, newest first, as the API lists it) into `container`,
 * one point per operation, oldest on the left; and keep it fitted to the width.
 */
export function renderBalanceChart(container, operations) {
  if (!drawn.has(container)) {
    redrawOnResize(container);
  }
  drawn.set(container, { operations: operations.slice().reverse(), width: 0 });
  draw(container);
}
