/* The selected wallet's holds: what they reserve beside its balance, their list with Capture and
   Void on those still held, and a re-read when one listed as held reaches its expiry. */

import { api, walletPath, withQuery } from "./api.js";
import { els, isBusy, setBusy } from "./elements.js";
import { formatMoney, setTime, shortId, timeOf } from "./format.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";
import { walletLink } from "./transfers.js";

const HOLDS_PAGE_SIZE = 10;
export const HELD = "HELD"; // the one status a hold can be captured or voided in
const BADGE_BY_STATUS = { HELD: "badge-held" };
const EXPIRY_MARGIN_MS = 500; // asked a little after expiresAt, so the service's clock has passed it
const MAX_EXPIRY_WAIT_MS = 60000;
const MAX_TIMER_MS = 2147483647; // setTimeout's longest delay, about 24.8 days

/** "Held" and "Available" beside the balance, as the service computed them. */
export function showHeldAmounts(wallet) {
  els.walletHeld.textContent = formatMoney(wallet.heldBalance, wallet.currency);
  els.walletAvailable.textContent = formatMoney(wallet.availableBalance, wallet.currency);
}

export function holdPath(holdId) {
  return "/holds/" + encodeURIComponent(holdId);
}

export function holdsPath(walletId, cursor) {
  return withQuery(walletPath(walletId) + "/holds", { limit: HOLDS_PAGE_SIZE, cursor });
}

function fact(term, content, testid) {
  const wrap = document.createElement("div");
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.dataset.testid = testid;
  dd.append(content);
  wrap.append(dt, dd);
  return wrap;
}

function expiry(hold) {
  const time = document.createElement("time");
  setTime(time, hold.expiresAt);
  return time;
}

function payee(hold) {
  if (typeof hold.toWalletId === "string") {
    return walletLink(hold.toWalletId);
  }
  return hold.status === HELD ? "None: a capture withdraws" : "None";
}

function captured(hold) {
  return typeof hold.capturedAmount === "string" ? formatMoney(hold.capturedAmount, hold.currency) : "None";
}

/** The amount field, Capture and Void of a held hold, each named with the hold it acts on. */
function holdActions(hold) {
  const name = shortId(hold.id);
  const amount = document.createElement("input");
  amount.type = "text";
  amount.className = "capture-amount";
  amount.dataset.testid = "capture-amount";
  amount.inputMode = "decimal";
  amount.autocomplete = "off";
  amount.spellcheck = false;
  amount.placeholder = hold.amount; // what an empty field captures
  amount.setAttribute("aria-label", "How much of hold " + name + " to capture");
  amount.setAttribute("aria-describedby", "holds-hint");

  const capture = holdButton("capture", "Capture", name, "btn btn-small btn-primary");
  const release = holdButton("void", "Void", name, "btn btn-small");

  const actions = document.createElement("div");
  actions.className = "hold-actions";
  actions.append(amount, capture, release);
  return actions;
}

// A button of a hold's row: its action for the click handler, its label read aloud.
function holdButton(action, text, name, className) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.dataset.action = action;
  button.textContent = text;
  button.setAttribute("aria-label", text + " hold " + name);
  return button;
}

function holdItem(hold) {
  const item = document.createElement("li");
  item.className = "hold-item";
  item.tabIndex = -1; // takes the focus when the buttons it had are gone
  item.dataset.testid = "hold-item";
  item.dataset.holdId = hold.id;
  item.dataset.walletId = hold.walletId;
  item.dataset.payeeId = hold.toWalletId || "";
  item.dataset.currency = hold.currency;
  item.dataset.status = hold.status;
  item.dataset.expiresAt = hold.expiresAt || "";

  const badge = document.createElement("span");
  badge.className = "badge " + (BADGE_BY_STATUS[hold.status] || "badge-other");
  badge.dataset.testid = "hold-status";
  badge.textContent = hold.status;
  const amount = document.createElement("span");
  amount.className = "hold-amount";
  amount.dataset.testid = "held-amount";
  amount.textContent = formatMoney(hold.amount, hold.currency);
  const id = document.createElement("code");
  id.className = "hold-id";
  id.title = hold.id;
  id.textContent = "Hold " + shortId(hold.id);
  const head = document.createElement("div");
  head.className = "hold-head";
  head.append(badge, amount, id);

  const facts = document.createElement("dl");
  facts.className = "hold-facts";
  facts.append(
    fact("Captured", captured(hold), "hold-captured"),
    fact("Payee", payee(hold), "hold-payee"),
    fact(hold.status === HELD ? "Expires" : "Expiry", expiry(hold), "hold-expires")
  );
  if (typeof hold.reference === "string" && hold.reference) {
    facts.append(fact("Reference", hold.reference, "hold-reference-text"));
  }

  item.append(head, facts);
  if (hold.status === HELD) {
    item.append(holdActions(hold));
  }
  return item;
}

function listedItem(holdId) {
  return Array.from(els.holds.children).find(function (item) {
    return item.dataset.holdId === holdId;
  });
}

function showListState() {
  els.holdsEmpty.hidden = els.holds.children.length > 0;
  els.holdsHint.hidden = !els.holds.querySelector(".hold-actions"); // it tells how they work
}

function appendHolds(holds) {
  holds.forEach(function (hold) {
    if (hold && typeof hold.id === "string" && !listedItem(hold.id)) {
      els.holds.append(holdItem(hold));
    }
  });
  showListState();
}

/**
 * A hold of the selected wallet as the service now has it: its item redrawn in place, or a new
 * one on top, marked as new. Returns the item, or null for a hold of another wallet.
 */
export function showHold(hold) {
  if (!hold || hold.walletId !== state.selectedId) {
    return null;
  }
  const item = holdItem(hold);
  const listed = listedItem(hold.id);
  if (listed) {
    const hadFocus = listed.contains(document.activeElement);
    listed.replaceWith(item);
    if (hadFocus && !item.contains(document.activeElement)) {
      item.focus(); // the focused button left with the old item
    }
  } else {
    els.holds.querySelectorAll(".hold-item.is-new").forEach(function (other) {
      other.classList.remove("is-new");
    });
    item.classList.add("is-new");
    els.holds.prepend(item);
  }
  showListState();
  scheduleExpiryCheck();
  return item;
}

export function resetHolds(page) {
  els.holds.replaceChildren();
  appendHolds(Array.isArray(page.items) ? page.items : []);
  setHoldsCursor(page.nextCursor);
  state.holdExpiryWait = 0;
  scheduleExpiryCheck();
}

function setHoldsCursor(cursor) {
  state.holdsNextCursor = cursor || null;
  els.holdsMore.hidden = !state.holdsNextCursor;
}

export async function loadMoreHolds() {
  const walletId = state.selectedId;
  const cursor = state.holdsNextCursor;
  if (!walletId || !cursor || isBusy(els.holdsMore)) {
    return;
  }
  const token = state.selectToken;
  setBusy(els.holdsMore, true);
  els.holds.setAttribute("aria-busy", "true");
  const result = await api("GET", holdsPath(walletId, cursor));
  setBusy(els.holdsMore, false);
  els.holds.setAttribute("aria-busy", "false");
  if (token !== state.selectToken || walletId !== state.selectedId) {
    return;
  }
  if (!result.ok) {
    reportFailure(result);
    return;
  }
  const before = els.holds.children.length;
  appendHolds(Array.isArray(result.data.items) ? result.data.items : []);
  setHoldsCursor(result.data.nextCursor);
  scheduleExpiryCheck();
  const added = els.holds.children.length - before;
  setStatus("info", added ? "Loaded " + added + " more holds." : "No more holds.");
  if (els.holdsMore.hidden && els.holds.lastElementChild) {
    els.holds.lastElementChild.focus(); // the focused button vanished; keep focus near the list
  }
}

function heldItems() {
  return Array.from(els.holds.children).filter(function (item) {
    return item.dataset.status === HELD && !Number.isNaN(timeOf(item.dataset.expiresAt));
  });
}

/**
 * A hold still held reads EXPIRED from its expiry on, and its amount is available again: when
 * the first listed as held reaches it, that hold and the wallet are read again. While the
 * service still calls it held (its clock may be behind this one), each try waits longer.
 */
function scheduleExpiryCheck() {
  window.clearTimeout(state.holdExpiryTimer);
  state.holdExpiryTimer = null;
  const expiries = heldItems().map(function (item) {
    return timeOf(item.dataset.expiresAt);
  });
  if (!expiries.length) {
    return;
  }
  const untilFirst = Math.max(Math.min.apply(null, expiries) - Date.now(), 0);
  const delay = Math.min(untilFirst + EXPIRY_MARGIN_MS + state.holdExpiryWait, MAX_TIMER_MS);
  const walletId = state.selectedId;
  const token = state.selectToken;
  state.holdExpiryTimer = window.setTimeout(function () {
    rereadExpiredHolds(walletId, token);
  }, delay);
}

async function rereadExpiredHolds(walletId, token) {
  const now = Date.now();
  const due = heldItems().filter(function (item) {
    return timeOf(item.dataset.expiresAt) <= now;
  });
  const results = await Promise.all(
    [api("GET", walletPath(walletId))].concat(
      due.map(function (item) {
        return api("GET", holdPath(item.dataset.holdId));
      })
    )
  );
  if (token !== state.selectToken || walletId !== state.selectedId) {
    return; // another wallet was chosen meanwhile; its own holds keep their own timer
  }
  const walletResult = results[0];
  if (walletResult.ok) {
    showHeldAmounts(walletResult.data);
  }
  const ended = results.slice(1).filter(function (result) {
    return result.ok && result.data.status !== HELD;
  });
  state.holdExpiryWait = ended.length
    ? 0
    : Math.min(Math.max(state.holdExpiryWait * 2, 1000), MAX_EXPIRY_WAIT_MS);
  ended.forEach(function (result) {
    showHold(result.data);
  });
  scheduleExpiryCheck();
}
