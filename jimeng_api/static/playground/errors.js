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
  model_not_supported: "error.noImageToImage",
  too_many_images: "error.tooManyImages",
  image_too_large: "error.imageTooLarge",
  not_an_image: "error.notAnImage",
  browser_tokens_required: "error.browserTokens",
  model_retired: "error.modelRetired",
  model_not_available: "error.modelNotAvailable",
};

// a video job's own failure (GET /v1/videos/{id} says "failed"), by its error code
const VIDEO_CODES = { generation_failed: "error.videoFailed", upstream_error: "error.videoFailed", not_found: "error.videoGone" };

// the server could not fetch a reference URL (param image[i]); elsewhere these are other downloads
const FETCH_CODES = ["url_not_allowed", "fetch_failed", "fetch_timeout", "fetch_too_large"];

const BY_STATUS = { 401: "error.auth", 403: "error.blocked", 404: "error.model", 413: "error.tooLarge", 429: "error.busy", 502: "error.upstream", 504: "error.timeout" };

function keyFor(err) {
  if (err.key) return err.key;
  const credits = err.code === "insufficient_quota" || err.type === "insufficient_quota";
  if (credits && (err.context === "video" || err.kind === "video")) return "error.videoCredits";
  if (err.kind === "video") return VIDEO_CODES[err.code] || BY_CODE[err.code] || "error.videoFailed";
  if (BY_CODE[err.code]) return BY_CODE[err.code];
  if (FETCH_CODES.includes(err.code) && /^image/.test(err.param || "")) return "error.referenceUrl";
  if (credits) return "error.credits";
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
  let text = t(keyFor(err), vars);
  if (err.status == null) text = text.replace(/\s*[（(]HTTP —[）)]/, ""); // a failed job, not an answer
  return { text, detail };
}
