// The connection panel: API base, credentials (localStorage only, sent only to the
// API base), the credits check, and the demo hint when the server says it runs
// against the simulator.

import { localError, points, serverInfo } from "./api.js";
import { describeError } from "./errors.js";
import { t } from "./i18n.js";
import { load, save } from "./storage.js";

const STORE = { credentials: "jimeng-playground.credentials", apiBase: "jimeng-playground.api-base" };
const DEMO_TOKEN = "demo-session";
const $ = (id) => document.getElementById(id);
const ui = {
  panel: $("connection"),
  state: $("connection-state"),
  apiBase: $("api-base"),
  credentials: $("credentials"),
  toggle: $("toggle-credentials"),
  forget: $("forget-credentials"),
  checkCredits: $("check-credits"),
  credits: $("credits"),
  demo: $("demo-banner"),
  demoFill: $("demo-fill"),
  docs: $("docs-link"),
  version: $("server-version"),
};
let lastCredits = null; // entries or an error, redrawn on a language switch

const pageOrigin = () => (/^https?:$/.test(location.protocol) ? location.origin : "http://127.0.0.1:8000");

/** "Bearer a, b\nc" → "a,b,c" (session ids); an API key passes through. */
function token() {
  return ui.credentials.value.trim().replace(/^bearer\s+/i, "").split(/[\s,]+/).filter(Boolean).join(",");
}

/** {base, token} for api.js; an invalid base is a (localized) error. */
export function connection() {
  const raw = ui.apiBase.value.trim() || pageOrigin();
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw localError("error.apiBase", { value: raw });
  }
  if (!/^https?:$/.test(url.protocol)) throw localError("error.apiBase", { value: raw });
  return { base: url.href.replace(/\/+$/, ""), token: token() };
}

export function hasToken() {
  return Boolean(token());
}

function renderCredits() {
  if (!lastCredits) return ui.credits.replaceChildren();
  if (lastCredits.error) {
    const { text, detail } = describeError(lastCredits.error);
    const item = Object.assign(document.createElement("p"), { className: "bad", textContent: detail ? `${text} ${detail}` : text });
    return ui.credits.replaceChildren(item);
  }
  const list = document.createElement("ul");
  for (const entry of lastCredits.entries) {
    const item = document.createElement("li");
    const name = Object.assign(document.createElement("code"), { textContent: String((entry && entry.token) || "?") });
    const p = entry && entry.points;
    const e = entry && entry.error;
    item.className = p ? "ok" : "bad";
    const text = p
      ? `${t("credits.total", { total: p.totalCredit ?? "?" })} (${t("credits.detail", { gift: p.giftCredit ?? "?", purchase: p.purchaseCredit ?? "?", vip: p.vipCredit ?? "?" })})`
      : describeError({ kind: "http", status: null, code: e && e.code, type: e && e.type, message: e && e.message }).text + (e && e.message ? ` ${e.message}` : "");
    item.append(name, " ", text);
    list.append(item);
  }
  ui.credits.replaceChildren(Object.assign(document.createElement("h3"), { textContent: t("credits.heading", { count: lastCredits.entries.length }) }), list);
}

async function checkCredits() {
  ui.checkCredits.disabled = true;
  ui.credits.hidden = false;
  ui.credits.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: t("credits.checking") }));
  try {
    lastCredits = { entries: await points(connection()) };
  } catch (err) {
    lastCredits = { error: err };
  } finally {
    ui.checkCredits.disabled = false;
  }
  renderCredits();
}

/** Ask the server about itself: the demo hint and the version in the footer. */
async function describeServer() {
  let info = null;
  try {
    info = await serverInfo(connection());
  } catch {
    /* an invalid base is reported when used */
  }
  ui.demo.hidden = !(info && info.demo === true);
  ui.version.textContent = info && typeof info.version === "string" ? `jimeng-api ${info.version}` : "";
}

export function translateConnection() {
  const hidden = ui.credentials.type === "password";
  ui.toggle.textContent = t(hidden ? "connection.show" : "connection.hide");
  ui.state.textContent = t(hasToken() ? "connection.ready" : "connection.missing");
  ui.state.dataset.ok = String(hasToken());
  renderCredits();
}

export function initConnection({ onBaseChange }) {
  ui.apiBase.value = load(STORE.apiBase) || pageOrigin();
  ui.credentials.value = load(STORE.credentials) || "";
  ui.panel.open = !hasToken();
  const baseChanged = () => {
    const value = ui.apiBase.value.trim().replace(/\/+$/, "");
    save(STORE.apiBase, value && value !== pageOrigin() ? value : "");
    try {
      ui.docs.href = connection().base + "/docs";
    } catch {
      /* reported when used */
    }
    describeServer();
    onBaseChange();
  };
  ui.apiBase.addEventListener("change", baseChanged);
  ui.credentials.addEventListener("input", () => {
    save(STORE.credentials, ui.credentials.value.trim());
    translateConnection();
  });
  ui.forget.addEventListener("click", () => {
    ui.credentials.value = "";
    save(STORE.credentials, "");
    lastCredits = null;
    ui.credits.hidden = true;
    translateConnection();
  });
  ui.toggle.addEventListener("click", () => {
    const show = ui.credentials.type === "password";
    ui.credentials.type = show ? "text" : "password";
    ui.toggle.setAttribute("aria-pressed", String(show));
    translateConnection();
  });
  ui.checkCredits.addEventListener("click", checkCredits);
  ui.demoFill.addEventListener("click", () => {
    if (!hasToken()) ui.credentials.value = DEMO_TOKEN;
    ui.credentials.dispatchEvent(new Event("input"));
    $("prompt").focus();
  });
  try {
    ui.docs.href = connection().base + "/docs";
  } catch {
    /* reported when used */
  }
  translateConnection();
  describeServer();
}
