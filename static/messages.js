/* A human sentence for every API problem (problem+json code, or the HTTP status lacking one).

The codes come from the service's catalogue: the page words those it has words of its own
for, and says any other by the catalogue's title. */

import { codeForStatus, problemKind } from "./catalogue.js";

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

/** The page's own wording, by code; a code without one is said by its title and detail. */
const PROBLEM_SENTENCES = {
  VALIDATION_ERROR: validationSentence,
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

/* A gateway in front of the service answers 502 or 504 when the service does not answer in
   time: to the person using the page, the same as the service's own 503. */
const GATEWAY_STATUSES = [502, 504];
const UNAVAILABLE_STATUS = 503;

function codeOfBareStatus(status) {
  return codeForStatus(GATEWAY_STATUSES.includes(status) ? UNAVAILABLE_STATUS : status);
}

function own(table, key) {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

/** A human sentence for a problem+json body (or, lacking one, for the HTTP status). */
export function problemMessage(problem, headers, status) {
  const body = problem && typeof problem === "object" ? problem : null;
  const httpStatus = status || (body && body.status) || 0;
  if (httpStatus === 0 && !body) {
    return "Cannot reach the service. Check your connection and try again.";
  }
  const code = body && typeof body.code === "string" ? body.code : codeOfBareStatus(httpStatus);
  const sentence = own(PROBLEM_SENTENCES, code);
  if (sentence) {
    return sentence(body, headers);
  }
  const kind = problemKind(code);
  if (kind) {
    return withDetail(kind.title, body);
  }
  const title = body && typeof body.title === "string" ? body.title : "Unexpected answer";
  return withDetail(title + " (HTTP " + httpStatus + ")", body);
}
