/* The selected wallet's operations table, its "More" button, and the chart drawn from it. */

import { api, walletPath, withQuery } from "./api.js";
import { renderBalanceChart } from "./balance-chart.js";
import { entrySign } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import { entryLabel, formatMoney, setTime, shortId } from "./format.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";
import { counterpartyNote } from "./transfers.js";

const OPERATIONS_PAGE_SIZE = 10;

const BADGE_BY_SIGN = { 1: "badge-deposit", "-1": "badge-withdraw" };

/** The hold a capture's entry belongs to, by the short id its item in the holds list shows. */
function holdNote(holdId) {
  const note = document.createElement("span");
  note.className = "entry-note";
  note.dataset.testid = "hold-note";
  note.title = holdId;
  note.textContent = "Hold " + shortId(holdId);
  return note;
}

/** The lines under an entry's type: the other wallet of a transfer, its hold and reference if any. */
function entryNotes(operation, sign) {
  const notes = [];
  if (typeof operation.transferId === "string" && operation.transferId) {
    notes.push(counterpartyNote(operation, sign));
  }
  if (typeof operation.holdId === "string" && operation.holdId) {
    notes.push(holdNote(operation.holdId));
  }
  if (typeof operation.reference === "string" && operation.reference) {
    const reference = document.createElement("span");
    reference.className = "entry-note";
    reference.dataset.testid = "reference";
    reference.textContent = "Reference: " + operation.reference;
    notes.push(reference);
  }
  return notes;
}

function operationRow(operation) {
  const row = document.createElement("tr");
  row.dataset.testid = "operation-row";
  row.dataset.operationId = operation.id;

  const timeCell = document.createElement("td");
  const time = document.createElement("time");
  setTime(time, operation.createdAt);
  timeCell.append(time);

  const typeCell = document.createElement("td");
  const sign = entrySign(operation.operationType);
  const badge = document.createElement("span");
  badge.className = "badge " + (BADGE_BY_SIGN[sign] || "badge-other");
  badge.textContent = entryLabel(operation.operationType);
  typeCell.append(badge, ...entryNotes(operation, sign));

  const amountCell = document.createElement("td");
  amountCell.className = "num";
  amountCell.textContent = formatMoney(operation.amount, operation.currency);

  const balanceCell = document.createElement("td");
  balanceCell.className = "num";
  balanceCell.textContent = formatMoney(operation.balanceAfter, operation.currency);

  row.append(timeCell, typeCell, amountCell, balanceCell);
  return row;
}

export function addOperations(operations, where) {
  const added = operations.filter(function (operation) {
    return operation && !state.operationIds.has(operation.id);
  });
  const rows = added.map(function (operation) {
    state.operationIds.add(operation.id);
    return operationRow(operation);
  });
  if (where === "start") {
    els.operationsBody.prepend.apply(els.operationsBody, rows);
    state.ledger = added.concat(state.ledger);
  } else {
    els.operationsBody.append.apply(els.operationsBody, rows);
    state.ledger = state.ledger.concat(added);
  }
  els.operationsEmpty.hidden = state.operationIds.size > 0;
  drawChart();
  return rows;
}

/** Entries just applied by this page, on top of the table and marked as new until the next ones. */
export function showNewOperations(operations) {
  els.operationsBody.querySelectorAll("tr.is-new").forEach(function (row) {
    row.classList.remove("is-new");
  });
  addOperations(operations, "start").forEach(function (row) {
    row.classList.add("is-new");
  });
}

/** The chart shows exactly the operations of the table, so the two never disagree. */
function drawChart() {
  els.chartSection.hidden = state.ledger.length === 0;
  renderBalanceChart(els.chart, state.ledger);
}

export function resetOperations(page) {
  state.operationIds = new Set();
  state.ledger = [];
  els.operationsBody.replaceChildren();
  addOperations(Array.isArray(page.items) ? page.items : [], "end");
  setOperationsCursor(page.nextCursor);
}

function setOperationsCursor(cursor) {
  state.operationsNextCursor = cursor || null;
  els.operationsMore.hidden = !state.operationsNextCursor;
}

export function operationsPath(walletId, cursor) {
  return withQuery(walletPath(walletId) + "/operations", { limit: OPERATIONS_PAGE_SIZE, cursor });
}

export async function loadMoreOperations() {
  const walletId = state.selectedId;
  const cursor = state.operationsNextCursor;
  if (!walletId || !cursor || isBusy(els.operationsMore)) {
    return;
  }
  const token = state.selectToken;
  setBusy(els.operationsMore, true);
  els.operations.setAttribute("aria-busy", "true");
  const result = await api("GET", operationsPath(walletId, cursor));
  setBusy(els.operationsMore, false);
  els.operations.setAttribute("aria-busy", "false");
  if (token !== state.selectToken || walletId !== state.selectedId) {
    return;
  }
  if (!result.ok) {
    reportFailure(result);
    return;
  }
  const rows = addOperations(Array.isArray(result.data.items) ? result.data.items : [], "end");
  setOperationsCursor(result.data.nextCursor);
  setStatus("info", rows.length ? "Loaded " + rows.length + " more operations." : "No more operations.");
  if (els.operationsMore.hidden) {
    els.operationsWrap.focus(); // the focused button vanished; keep focus near the table
  }
}
