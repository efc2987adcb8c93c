// ApiError → a localized sentence (by OpenAI error code, else by HTTP status),
// plus the server's own message as the detail.

import { t } from "./i18n.js";

const BY_CODE = {
  invalid_api_key: "error.auth",
  session_expired: "error.auth",
  risk_control: "error.blocked",
  model_not_found: "error.model",
  content_policy_violation: "error.policy",
  request_too_large: "error.tooLarge",
  insufficient_quota: "error.credits",
  rate_limit_exceeded: "error.busy",
  generation_failed: "error.failed",
  timeout: "error.timeout",
};

const BY_STATUS = { 401: "error.auth", 403: "error.blocked", 404: "error.model", 413: "error.tooLarge", 429: "error.busy", 502: "error.upstream", 504: "error.timeout" };

function keyFor(err) {
  if (err.key) return err.key;
  if (BY_CODE[err.code]) return BY_CODE[err.code];
  if (err.type === "insufficient_quota") return "error.credits";
  if (err.kind === "stream") return "error.midStream";
  if (BY_STATUS[err.status]) return BY_STATUS[err.status];
  if (err.status >= 400 && err.status < 500) return err.param ? "error.invalidParam" : "error.invalid";
  return "error.server";
}

/** {text, detail}: what to show, and what the server said (or ""). */
export function describeError(err) {
  if (!err || typeof err !== "object" || !("kind" in err)) {
    return { text: t("error.server", { status: "?" }), detail: String(err && err.message ? err.message : err) };
  }
  const vars = { status: err.status ?? "—", param: err.param ?? "", ...err.vars };
  const detail = err.kind === "local" ? "" : err.serverMessage || "";
  return { text: t(keyFor(err), vars), detail };
}
