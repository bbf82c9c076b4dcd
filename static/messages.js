/* A human sentence for every API problem (problem+json code, or the HTTP status lacking one). */

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
export function problemMessage(problem, headers, status) {
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
