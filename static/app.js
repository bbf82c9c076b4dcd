/* Wallet page: talks to the same-origin JSON API under /api/v1.
 *
 * Money is never turned into a JavaScript number: amounts are sent as the string the
 * user typed and balances are shown as the server wrote them, with their digits grouped
 * (1,234,567.89) by rewriting the string: a double would lose cents past 2^53.
 */
"use strict";

(function () {
  const API_BASE = "/api/v1";
  const WALLETS_PAGE_SIZE = 10;
  const OPERATIONS_PAGE_SIZE = 10;
  const AMOUNT_PATTERN = /^[0-9]+(\.[0-9]{1,2})?$/;
  const MAX_AMOUNT_WHOLE = "1000000000000"; // the server's maximum is 1000000000000.00
  const API_KEY_STORAGE_KEY = "walletApiKey";

  const els = {};

  const state = {
    walletCursor: null, // cursor of the wallet page on screen; null is the first page
    walletCursorStack: [], // cursors of the pages before it, for "Previous"
    walletNextCursor: null,
    walletsLoading: false,
    selectedId: null,
    selectToken: 0, // guards against a slow answer for a wallet no longer selected
    operationsNextCursor: null,
    operationIds: new Set(),
    ledger: [], // the operations in the table, newest first; the chart draws them
    pendingKey: null, // {signature, key}: reused only to retry a POST whose outcome is unknown
    clickedOperation: null,
  };

  /* ---------- HTTP ---------- */

  function readApiKey() {
    try {
      return window.sessionStorage.getItem(API_KEY_STORAGE_KEY);
    } catch (error) {
      return null; // storage can be disabled; the API then answers 401 if it needs a key
    }
  }

  /** One call to the API. Never throws: a network failure is status 0. */
  async function api(method, path, body, extraHeaders) {
    const headers = { Accept: "application/json, application/problem+json" };
    const apiKey = readApiKey();
    if (apiKey) {
      headers.Authorization = "Bearer " + apiKey;
    }
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    Object.assign(headers, extraHeaders || {});

    let response;
    let text;
    try {
      response = await fetch(API_BASE + path, init);
      text = await response.text();
    } catch (error) {
      return { ok: false, status: 0, data: null, headers: new Headers() };
    }
    const data = parseJson(text);
    const ok = response.ok && data !== null && typeof data === "object";
    return { ok, status: response.status, data, headers: response.headers };
  }

  function parseJson(text) {
    if (!text) {
      return null;
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      return null;
    }
  }

  function withQuery(path, params) {
    const query = new URLSearchParams();
    Object.keys(params).forEach(function (name) {
      if (params[name] !== null && params[name] !== undefined) {
        query.set(name, String(params[name]));
      }
    });
    const text = query.toString();
    return text ? path + "?" + text : path;
  }

  function walletPath(walletId) {
    return "/wallets/" + encodeURIComponent(walletId);
  }

  function newIdempotencyKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  /** True when the server gave a final answer, so a retry must be a new request. */
  function outcomeIsKnown(status) {
    return !(status === 0 || status === 409 || status === 502 || status === 503 || status === 504);
  }

  /**
   * POST with an Idempotency-Key. If the outcome was unknown (network failure,
   * timeout, request still running), the same request sent again reuses the key,
   * so a retry can never apply an operation twice.
   */
  async function idempotentPost(path, body) {
    const signature = JSON.stringify([path, body === undefined ? null : body]);
    if (!state.pendingKey || state.pendingKey.signature !== signature) {
      state.pendingKey = { signature, key: newIdempotencyKey() };
    }
    const result = await api("POST", path, body, { "Idempotency-Key": state.pendingKey.key });
    if (outcomeIsKnown(result.status)) {
      state.pendingKey = null;
    }
    return result;
  }

  /* ---------- Messages ---------- */

  function withDetail(sentence, problem) {
    const detail = problem && typeof problem.detail === "string" ? problem.detail.trim() : "";
    return detail ? sentence + ": " + detail : sentence + ".";
  }

  function validationSentence(problem) {
    const errors = problem && Array.isArray(problem.errors) ? problem.errors : [];
    const messages = errors
      .map(function (error) {
        return error && typeof error.message === "string" ? error.message.trim() : "";
      })
      .filter(Boolean);
    if (messages.length) {
      return "The request was not accepted: " + messages.join("; ");
    }
    return withDetail("The request was not accepted", problem);
  }

  /** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date). */
  function retryAfterSeconds(headers) {
    const raw = headers && typeof headers.get === "function" ? headers.get("Retry-After") : null;
    if (!raw) {
      return null;
    }
    const value = raw.trim();
    if (/^[0-9]+$/.test(value)) {
      return parseInt(value, 10);
    }
    const when = Date.parse(value);
    if (Number.isNaN(when)) {
      return null;
    }
    return Math.max(0, Math.ceil((when - Date.now()) / 1000));
  }

  function unavailableSentence(headers) {
    const seconds = retryAfterSeconds(headers);
    if (seconds === null) {
      return "The service is temporarily unavailable, try again in a few seconds.";
    }
    return "The service is temporarily unavailable, try again in " + seconds + " s.";
  }

  function internalErrorSentence(problem) {
    const requestId = problem && typeof problem.requestId === "string" ? problem.requestId : "";
    const sentence = "Something went wrong on the service. Please try again";
    return requestId ? sentence + " (reference " + requestId + ")." : sentence + ".";
  }

  const PROBLEM_SENTENCES = {
    VALIDATION_ERROR: validationSentence,
    INSUFFICIENT_FUNDS: function (p) {
      return withDetail("Insufficient funds", p);
    },
    BALANCE_LIMIT_EXCEEDED: function (p) {
      return withDetail("Balance limit exceeded", p);
    },
    UNAUTHORIZED: function () {
      return "Not authorised: this service needs a valid API key.";
    },
    WALLET_NOT_FOUND: function () {
      return "Wallet not found: no wallet has this id.";
    },
    NOT_FOUND: function () {
      return "Not found: the service does not know this address.";
    },
    METHOD_NOT_ALLOWED: function () {
      return "This action is not allowed here (method not allowed).";
    },
    IDEMPOTENCY_KEY_IN_USE: function () {
      return "The same request is still being processed. Wait a moment, then try again.";
    },
    PAYLOAD_TOO_LARGE: function () {
      return "The request is too large for the service.";
    },
    UNSUPPORTED_MEDIA_TYPE: function () {
      return "The service did not accept the request format (unsupported media type).";
    },
    IDEMPOTENCY_KEY_REUSED: function () {
      return "This request key was already used for a different request. Please try again.";
    },
    INTERNAL_ERROR: internalErrorSentence,
    SERVICE_UNAVAILABLE: function (p, headers) {
      return unavailableSentence(headers);
    },
  };

  const CODE_FOR_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "IDEMPOTENCY_KEY_IN_USE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "IDEMPOTENCY_KEY_REUSED",
    500: "INTERNAL_ERROR",
    502: "SERVICE_UNAVAILABLE",
    503: "SERVICE_UNAVAILABLE",
    504: "SERVICE_UNAVAILABLE",
  };

  /** A human sentence for a problem+json body (or, lacking one, for the HTTP status). */
  function problemMessage(problem, headers, status) {
    const body = problem && typeof problem === "object" ? problem : null;
    const httpStatus = status || (body && body.status) || 0;
    if (httpStatus === 0 && !body) {
      return "Cannot reach the service. Check your connection and try again.";
    }
    const code = body && typeof body.code === "string" ? body.code : CODE_FOR_STATUS[httpStatus];
    const sentence = PROBLEM_SENTENCES[code];
    if (sentence) {
      return sentence(body, headers);
    }
    const title = body && typeof body.title === "string" ? body.title : "Unexpected answer";
    return withDetail(title + " (HTTP " + httpStatus + ")", body);
  }

  function setStatus(kind, message) {
    els.status.dataset.kind = kind;
    els.status.textContent = message;
  }

  function reportFailure(result) {
    setStatus("error", problemMessage(result.data, result.headers, result.status));
    if (result.status === 401) {
      askForApiKey();
    }
  }

  /* ---------- API key (only when the service is configured with keys) ---------- */

  function askForApiKey() {
    els.apiKeyForm.hidden = false;
    els.apiKey.focus();
  }

  function onApiKeySubmit(event) {
    event.preventDefault();
    const key = els.apiKey.value.trim();
    if (!key) {
      return;
    }
    try {
      window.sessionStorage.setItem(API_KEY_STORAGE_KEY, key);
    } catch (error) {
      setStatus("error", "This browser does not allow keeping the key (session storage is off).");
      return;
    }
    els.apiKey.value = "";
    els.apiKeyForm.hidden = true;
    setStatus("success", "API key saved for this tab.");
    reloadWalletPage();
  }

  /* ---------- Formatting (display only; no arithmetic) ---------- */

  /** "1234567.89" as "1,234,567.89": the whole part of the decimal string, grouped by threes. */
  function groupDigits(amount) {
    const match = /^(-?)([0-9]+)(\.[0-9]+)?$/.exec(typeof amount === "string" ? amount : "");
    if (!match) {
      return amount; // not a plain decimal: shown as it came
    }
    return match[1] + match[2].replace(/\B(?=(?:[0-9]{3})+$)/g, ",") + (match[3] || "");
  }

  function formatTime(iso) {
    if (typeof iso !== "string" || !iso) {
      return "";
    }
    const date = new Date(iso.replace(/(\.\d{3})\d+/, "$1")); // some engines reject microseconds
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

  function setTime(element, iso) {
    element.textContent = formatTime(iso);
    element.dateTime = iso || "";
    element.title = iso || "";
  }

  /* ---------- Amount validation (the server's rule, checked on the string) ---------- */

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
  function amountProblem(amount) {
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

  function markAmountInvalid(invalid) {
    if (invalid) {
      els.amount.setAttribute("aria-invalid", "true");
    } else {
      els.amount.removeAttribute("aria-invalid");
    }
  }

  /* ---------- Wallet list ---------- */

  function walletListItem(wallet) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "wallet-item";
    button.dataset.testid = "wallet-item";
    button.dataset.walletId = wallet.id;

    const id = document.createElement("span");
    id.className = "wallet-item-id";
    id.textContent = wallet.id;
    const balance = document.createElement("span");
    balance.className = "wallet-item-balance";
    balance.textContent = groupDigits(wallet.balance);

    button.append(id, balance);
    item.append(button);
    return item;
  }

  function renderWalletList(wallets) {
    els.walletList.replaceChildren.apply(els.walletList, wallets.map(walletListItem));
    els.walletListEmpty.hidden = wallets.length > 0;
    els.walletListEmpty.textContent =
      state.walletCursorStack.length === 0
        ? "No wallets yet. Create one to get started."
        : "No more wallets.";
    markSelectedInList();
  }

  function markSelectedInList() {
    els.walletList.querySelectorAll(".wallet-item").forEach(function (button) {
      if (button.dataset.walletId === state.selectedId) {
        button.setAttribute("aria-current", "true");
      } else {
        button.removeAttribute("aria-current");
      }
    });
  }

  function updateListedBalance(walletId, balance) {
    els.walletList.querySelectorAll(".wallet-item").forEach(function (button) {
      if (button.dataset.walletId === walletId) {
        button.querySelector(".wallet-item-balance").textContent = groupDigits(balance);
      }
    });
  }

  /** While a page loads the buttons stay as they were (clicks are ignored), so focus stays. */
  function updatePager() {
    const focused = document.activeElement;
    els.walletsPrev.disabled = state.walletCursorStack.length === 0;
    els.walletsNext.disabled = !state.walletNextCursor;
    els.walletsPage.textContent = "Page " + (state.walletCursorStack.length + 1);
    // A button disabled under the keyboard focus drops it; hand it to the other one.
    if (focused === els.walletsNext && els.walletsNext.disabled && !els.walletsPrev.disabled) {
      els.walletsPrev.focus();
    } else if (focused === els.walletsPrev && els.walletsPrev.disabled && !els.walletsNext.disabled) {
      els.walletsNext.focus();
    }
  }

  /** Show the wallet page at `cursor`; `stack` becomes the Previous history on success. */
  async function showWalletPage(cursor, stack) {
    state.walletsLoading = true;
    els.walletList.setAttribute("aria-busy", "true");
    updatePager();
    const result = await api("GET", withQuery("/wallets", { limit: WALLETS_PAGE_SIZE, cursor }));
    state.walletsLoading = false;
    els.walletList.setAttribute("aria-busy", "false");
    if (result.ok) {
      state.walletCursor = cursor;
      state.walletCursorStack = stack;
      state.walletNextCursor = result.data.nextCursor || null;
      renderWalletList(Array.isArray(result.data.items) ? result.data.items : []);
    } else {
      reportFailure(result);
    }
    updatePager();
    return result.ok;
  }

  function nextWalletPage() {
    if (state.walletNextCursor && !state.walletsLoading) {
      showWalletPage(state.walletNextCursor, state.walletCursorStack.concat([state.walletCursor]));
    }
  }

  function previousWalletPage() {
    const stack = state.walletCursorStack;
    if (stack.length && !state.walletsLoading) {
      showWalletPage(stack[stack.length - 1], stack.slice(0, -1));
    }
  }

  function reloadWalletPage() {
    return showWalletPage(state.walletCursor, state.walletCursorStack);
  }

  /* ---------- Wallet details ---------- */

  function renderWallet(wallet) {
    state.selectedId = wallet.id;
    els.detailsEmpty.hidden = true;
    els.detailsBody.hidden = false;
    els.walletId.textContent = wallet.id;
    els.walletBalance.textContent = groupDigits(wallet.balance);
    setTime(els.walletCreated, wallet.createdAt);
    setTime(els.walletUpdated, wallet.updatedAt);
    markSelectedInList();
    updateListedBalance(wallet.id, wallet.balance);
    rememberInAddress(wallet.id);
  }

  function rememberInAddress(walletId) {
    if (window.history && typeof window.history.replaceState === "function") {
      window.history.replaceState(null, "", "#wallet=" + encodeURIComponent(walletId));
    }
  }

  function walletIdFromAddress() {
    const match = /^#wallet=([0-9A-Za-z-]+)$/.exec(window.location.hash);
    return match ? match[1] : null;
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
    const badge = document.createElement("span");
    const isDeposit = operation.operationType === "DEPOSIT";
    badge.className = "badge " + (isDeposit ? "badge-deposit" : "badge-withdraw");
    badge.textContent = operation.operationType;
    typeCell.append(badge);

    const amountCell = document.createElement("td");
    amountCell.className = "num";
    amountCell.textContent = groupDigits(operation.amount);

    const balanceCell = document.createElement("td");
    balanceCell.className = "num";
    balanceCell.textContent = groupDigits(operation.balanceAfter);

    row.append(timeCell, typeCell, amountCell, balanceCell);
    return row;
  }

  function addOperations(operations, where) {
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
    window.BalanceChart.render(els.chart, state.ledger);
  }

  function resetOperations(page) {
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

  function operationsPath(walletId, cursor) {
    return withQuery(walletPath(walletId) + "/operations", { limit: OPERATIONS_PAGE_SIZE, cursor });
  }

  /** Load a wallet and its latest operations; keeps the current one on failure. */
  async function openWallet(walletId) {
    const token = ++state.selectToken;
    els.operations.setAttribute("aria-busy", "true");
    const results = await Promise.all([
      api("GET", walletPath(walletId)),
      api("GET", operationsPath(walletId, null)),
    ]);
    if (token !== state.selectToken) {
      return false; // another wallet was chosen meanwhile
    }
    els.operations.setAttribute("aria-busy", "false");
    const walletResult = results[0];
    const operationsResult = results[1];
    if (!walletResult.ok) {
      reportFailure(walletResult);
      return false;
    }
    renderWallet(walletResult.data);
    if (operationsResult.ok) {
      resetOperations(operationsResult.data);
    } else {
      resetOperations({ items: [], nextCursor: null });
      reportFailure(operationsResult);
    }
    return true;
  }

  /** Re-read the selected wallet so "Updated" and the balance come from the server. */
  async function refreshWallet(walletId) {
    const result = await api("GET", walletPath(walletId));
    if (result.ok && state.selectedId === walletId) {
      renderWallet(result.data);
    }
  }

  async function loadMoreOperations() {
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

  function scrollDetailsIntoViewOnPhones() {
    if (window.matchMedia && window.matchMedia("(max-width: 859px)").matches) {
      const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      els.details.scrollIntoView({ behavior: reduced ? "auto" : "smooth", block: "start" });
    }
  }

  /* ---------- Actions ---------- */

  /**
   * A button whose request is running is aria-disabled, not disabled: a disabled button
   * drops the keyboard focus to the page, and a keyboard user would have to find their
   * place again. Its handler ignores activations while it is busy.
   */
  function setBusy(button, busy) {
    if (busy) {
      button.setAttribute("aria-disabled", "true");
      button.setAttribute("aria-busy", "true");
    } else {
      button.removeAttribute("aria-disabled");
      button.removeAttribute("aria-busy");
    }
  }

  function isBusy(button) {
    return button.getAttribute("aria-disabled") === "true";
  }

  async function createWallet() {
    if (isBusy(els.createWallet)) {
      return;
    }
    setBusy(els.createWallet, true);
    try {
      const result = await idempotentPost("/wallets", undefined);
      if (!result.ok) {
        reportFailure(result);
        return;
      }
      const wallet = result.data;
      state.selectToken++; // a slower, older selection must not replace the new wallet
      renderWallet(wallet);
      resetOperations({ items: [], nextCursor: null });
      setStatus("success", "Created wallet " + wallet.id + " — balance " + groupDigits(wallet.balance));
      await reloadWalletPage();
    } finally {
      setBusy(els.createWallet, false);
    }
  }

  function setOperationBusy(busy) {
    setBusy(els.deposit, busy);
    setBusy(els.withdraw, busy);
    els.operationForm.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function successSentence(result) {
    const operation = result.data.operation || {};
    const verb = operation.operationType === "WITHDRAW" ? "Withdrew" : "Deposited";
    const replayed = result.headers.get("Idempotent-Replayed") === "true";
    return (
      verb + " " + groupDigits(operation.amount) + " — balance " + groupDigits(result.data.balance) +
      (replayed ? " (this request had already been applied; it was not applied again)" : "")
    );
  }

  function showAppliedOperation(walletId, result) {
    const operation = result.data.operation;
    updateListedBalance(walletId, result.data.balance);
    if (state.selectedId !== walletId) {
      return;
    }
    els.walletBalance.textContent = groupDigits(result.data.balance);
    if (operation) {
      els.operationsBody.querySelectorAll("tr.is-new").forEach(function (row) {
        row.classList.remove("is-new");
      });
      addOperations([operation], "start").forEach(function (row) {
        row.classList.add("is-new");
      });
    }
  }

  function markServerFieldErrors(result) {
    const errors = result.data && Array.isArray(result.data.errors) ? result.data.errors : [];
    markAmountInvalid(errors.some(function (error) {
      return error && error.field === "amount";
    }));
  }

  async function submitOperation(operationType) {
    const walletId = state.selectedId;
    if (isBusy(els.deposit)) {
      return; // one operation at a time from this form
    }
    if (!walletId) {
      setStatus("error", "Select a wallet first.");
      return;
    }
    const amount = els.amount.value;
    const invalid = amountProblem(amount);
    markAmountInvalid(Boolean(invalid));
    if (invalid) {
      setStatus("error", invalid);
      els.amount.focus();
      return;
    }

    setOperationBusy(true);
    try {
      const result = await idempotentPost(walletPath(walletId) + "/operation", { operationType, amount });
      if (!result.ok) {
        markServerFieldErrors(result);
        reportFailure(result);
        return;
      }
      showAppliedOperation(walletId, result);
      setStatus("success", successSentence(result));
      if (els.amount.value === amount) {
        els.amount.value = "";
      }
      await refreshWallet(walletId);
    } finally {
      setOperationBusy(false);
    }
  }

  async function copyWalletId() {
    const walletId = state.selectedId;
    if (!walletId) {
      return;
    }
    const copied = await copyText(walletId);
    if (copied) {
      setStatus("success", "Wallet id copied to the clipboard.");
    } else {
      setStatus("error", "Could not copy automatically. The id is selected: copy it with your keyboard.");
    }
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (error) {
        // fall through to the selection-based copy
      }
    }
    const range = document.createRange();
    range.selectNodeContents(els.walletId);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  async function openWalletFromField() {
    const walletId = els.openWalletId.value.trim();
    if (!walletId) {
      setStatus("error", "Paste a wallet id to open it.");
      els.openWalletId.focus();
      return;
    }
    if (isBusy(els.openWallet)) {
      return;
    }
    setBusy(els.openWallet, true);
    try {
      if (await openWallet(walletId)) {
        els.openWalletId.value = "";
        setStatus("info", "Opened wallet " + state.selectedId + ".");
        scrollDetailsIntoViewOnPhones();
      }
    } finally {
      setBusy(els.openWallet, false);
    }
  }

  /* ---------- Wiring ---------- */

  function onWalletListClick(event) {
    const button = event.target.closest(".wallet-item");
    if (button && els.walletList.contains(button)) {
      openWallet(button.dataset.walletId).then(function (opened) {
        if (opened) {
          scrollDetailsIntoViewOnPhones();
        }
      });
    }
  }

  function onOperationSubmit(event) {
    event.preventDefault();
    const submitter = event.submitter || state.clickedOperation;
    state.clickedOperation = null;
    if (submitter === els.deposit || submitter === els.withdraw) {
      submitOperation(submitter.value);
    }
  }

  /** Enter in the amount field must not pick Deposit or Withdraw on the user's behalf. */
  function onAmountKeydown(event) {
    if (event.key === "Enter") {
      event.preventDefault();
      setStatus("info", "Choose Deposit or Withdraw to apply the amount.");
    }
  }

  function rememberClickedOperation(event) {
    state.clickedOperation = event.currentTarget; // for browsers without SubmitEvent.submitter
  }

  function collectElements() {
    const ids = {
      status: "status",
      createWallet: "create-wallet",
      openWalletForm: "open-wallet-form",
      openWalletId: "open-wallet-id",
      openWallet: "open-wallet",
      walletList: "wallet-list",
      walletListEmpty: "wallet-list-empty",
      walletsPrev: "wallets-prev",
      walletsNext: "wallets-next",
      walletsPage: "wallets-page",
      details: "wallet-details",
      detailsEmpty: "details-empty",
      detailsBody: "details-body",
      walletId: "wallet-id",
      copyWalletId: "copy-wallet-id",
      walletBalance: "wallet-balance",
      walletCreated: "wallet-created",
      walletUpdated: "wallet-updated",
      operationForm: "operation-form",
      amount: "amount",
      deposit: "deposit",
      withdraw: "withdraw",
      operations: "operations",
      operationsBody: "operations-body",
      operationsEmpty: "operations-empty",
      operationsMore: "operations-more",
      chartSection: "chart-section",
      chart: "balance-chart",
      apiKeyForm: "api-key-form",
      apiKey: "api-key",
    };
    Object.keys(ids).forEach(function (name) {
      els[name] = document.getElementById(ids[name]);
    });
    els.operationsWrap = els.operations.parentElement;
  }

  function init() {
    collectElements();
    els.createWallet.addEventListener("click", createWallet);
    els.walletsNext.addEventListener("click", nextWalletPage);
    els.walletsPrev.addEventListener("click", previousWalletPage);
    els.walletList.addEventListener("click", onWalletListClick);
    els.openWalletForm.addEventListener("submit", function (event) {
      event.preventDefault();
      openWalletFromField();
    });
    els.operationForm.addEventListener("submit", onOperationSubmit);
    els.deposit.addEventListener("click", rememberClickedOperation);
    els.withdraw.addEventListener("click", rememberClickedOperation);
    els.amount.addEventListener("keydown", onAmountKeydown);
    els.amount.addEventListener("input", function () {
      markAmountInvalid(false);
    });
    els.copyWalletId.addEventListener("click", copyWalletId);
    els.operationsMore.addEventListener("click", loadMoreOperations);
    els.apiKeyForm.addEventListener("submit", onApiKeySubmit);

    showWalletPage(null, []);
    const walletId = walletIdFromAddress();
    if (walletId) {
      openWallet(walletId);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
