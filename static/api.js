/* Client of the same-origin JSON API under /api/v1: the API key, idempotent POSTs, never a throw.
 *
 * Amounts are sent as the string the user typed, never as a JavaScript number.
 */

const API_BASE = "/api/v1";
const API_KEY_STORAGE_KEY = "walletApiKey";

// request signature -> Idempotency-Key, kept only while that POST's outcome is unknown: the same
// request sent again, even after others, reuses its key, so it can never be applied twice
const pendingKeys = new Map();

function readApiKey() {
  try {
    return window.sessionStorage.getItem(API_KEY_STORAGE_KEY);
  } catch (error) {
    return null; // storage can be disabled; the API then answers 401 if it needs a key
  }
}

/** Keep the key for this tab; false when the browser does not allow session storage. */
export function saveApiKey(key) {
  try {
    window.sessionStorage.setItem(API_KEY_STORAGE_KEY, key);
    return true;
  } catch (error) {
    return false;
  }
}

/** One call to the API. Never throws: a network failure is status 0. */
export async function api(method, path, body, extraHeaders) {
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

export function withQuery(path, params) {
  const query = new URLSearchParams();
  Object.keys(params).forEach(function (name) {
    if (params[name] !== null && params[name] !== undefined) {
      query.set(name, String(params[name]));
    }
  });
  const text = query.toString();
  return text ? path + "?" + text : path;
}

export function walletPath(walletId) {
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
export async function idempotentPost(path, body) {
  const signature = JSON.stringify([path, body === undefined ? null : body]);
  if (!pendingKeys.has(signature)) {
    pendingKeys.set(signature, newIdempotencyKey());
  }
  const key = pendingKeys.get(signature);
  const result = await api("POST", path, body, { "Idempotency-Key": key });
  if (outcomeIsKnown(result.status) && pendingKeys.get(signature) === key) {
    pendingKeys.delete(signature);
  }
  return result;
}
