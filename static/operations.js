/* The selected wallet's operations table, its "More" button, and the chart drawn from it. */

import { api, walletPath, withQuery } from "./api.js";
import { renderBalanceChart } from "./balance-chart.js";
import { entrySign } from "./catalogue.js";
import { els, isBusy, setBusy } from "./elements.js";
import { formatMoney, setTime } from "./format.js";
import { state } from "./state.js";
import { reportFailure, setStatus } from "./status.js";

const OPERATIONS_PAGE_SIZE = 10;

function operationRow(operation) {
  const row = document.createElement("tr");
  row.dataset.testid = "operation-row";
  row.dataset.operationId = operation.id;

  const timeCell = document.createElement("td");
  const time = document.createElement("time");
  setTime(time, operation.createdAt);
  timeCell.append(time);

  const typeCell = document.createElement("td");
  const badge = document.createElement("span");
  const adds = entrySign(operation.operationType) > 0;
  badge.className = "badge " + (adds ? "badge-deposit" : "badge-withdraw");
  badge.textContent = operation.operationType;
  typeCell.append(badge);

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
