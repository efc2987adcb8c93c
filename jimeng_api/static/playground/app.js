// jimeng-api playground: plain ES module, no framework, no build step.
// Credentials live only in localStorage and are sent only to the configured API base.

import { readEventStream } from "./sse.js";

const STORE = {
  credentials: "jimeng-playground.credentials",
  apiBase: "jimeng-playground.api-base",
  prefs: "jimeng-playground.prefs",
};

// Used until (or if never) GET /v1/models answers (protocol doc §4.1–4.2).
const FALLBACK_MODELS = [
  "jimeng-5.0",
  "jimeng-4.7",
  "jimeng-4.6",
  "jimeng-4.5",
  "jimeng-4.1",
  "jimeng-4.0",
  "jimeng-3.1",
  "jimeng-3.0",
  "jimeng-2.1",
  "jimeng-2.0-pro",
  "jimeng-2.0",
  "jimeng-1.4",
  "jimeng-xl-pro",
];
const PREFERRED_MODEL = "jimeng-4.0";

const RATIOS = ["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9"];
const RESOLUTIONS = ["1k", "2k", "4k"];

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("form"),
  apiBase: $("api-base"),
  credentials: $("credentials"),
  toggleCredentials: $("toggle-credentials"),
  forgetCredentials: $("forget-credentials"),
  model: $("model"),
  ratio: $("ratio"),
  resolution: $("resolution"),
  n: $("n"),
  negativePrompt: $("negative-prompt"),
  prompt: $("prompt"),
  generate: $("generate"),
  stream: $("stream"),
  cancel: $("cancel"),
  checkCredits: $("check-credits"),
  status: $("status"),
  error: $("error"),
  credits: $("credits"),
  results: $("results"),
  docsLink: $("docs-link"),
};

// ---------------------------------------------------------------- storage

function load(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // storage disabled (private mode, file:// in some browsers)
  }
}

function save(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    /* nothing to do: the value simply is not remembered */
  }
}

function pageOrigin() {
  return /^https?:$/.test(location.protocol) ? location.origin : "http://127.0.0.1:8000";
}

// ---------------------------------------------------------------- errors

/** An error to show to the user as is. */
class PlaygroundError extends Error {
  constructor(message, { status = null, code = null, type = null, midStream = false } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.type = type;
    this.midStream = midStream;
  }

  describe() {
    const head = [];
    if (this.status) head.push(`HTTP ${this.status}`);
    if (this.midStream) head.push("流中错误 error event in the stream");
    if (this.code || this.type) head.push(this.code || this.type);
    return head.length ? `${head.join(" · ")} — ${this.message}` : this.message;
  }
}

/** Turn a non-2xx response into a PlaygroundError carrying the API's error.message. */
async function errorFromResponse(response) {
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: a proxy page, say */
  }
  const err = body && typeof body === "object" ? body.error : null;
  if (err && typeof err === "object") {
    return new PlaygroundError(String(err.message || "(no message)"), {
      status: response.status,
      code: err.code,
      type: err.type,
    });
  }
  const snippet = text
    .replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 300);
  return new PlaygroundError(snippet || response.statusText || "request failed", {
    status: response.status,
  });
}

function networkError(err, url) {
  if (err instanceof PlaygroundError) return err;
  if (err && err.name === "AbortError") return new PlaygroundError("已取消 Cancelled.");
  return new PlaygroundError(
    `无法连接 Cannot reach ${url} (${err && err.message ? err.message : err}). ` +
      "Is the server running, the API base right, and CORS allowed?",
  );
}

// ---------------------------------------------------------------- UI helpers

let timer = null;

function setStatus(text, state = "busy") {
  ui.status.textContent = text;
  ui.status.dataset.state = state;
}

/** Show `text · 12s` in the status line, ticking every second until stopTimer(). */
function startProgress(text) {
  const started = performance.now();
  let current = text;
  const elapsed = () => (performance.now() - started) / 1000;
  const render = () => setStatus(`${current} · ${elapsed().toFixed(0)}s`, "busy");
  stopTimer();
  render();
  timer = setInterval(render, 1000);
  return {
    elapsed,
    set(next) {
      current = next;
      render();
    },
  };
}

function stopTimer() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

function showError(err) {
  const message =
    err instanceof PlaygroundError
      ? err.describe()
      : String(err && err.message ? err.message : err);
  ui.error.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = "出错了 Error: ";
  const text = document.createElement("span");
  text.className = "error-message";
  text.textContent = message;
  ui.error.append(title, text);
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.replaceChildren();
}

let controller = null;

function setBusy(busy) {
  ui.generate.disabled = busy;
  ui.stream.disabled = busy;
  ui.cancel.disabled = !busy;
  ui.form.setAttribute("aria-busy", String(busy));
}

/** Only http(s) and data:image URLs become <img src>. */
function safeImageUrl(raw) {
  try {
    const url = new URL(raw);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
    if (url.protocol === "data:" && /^data:image\//i.test(raw)) return raw;
  } catch {
    /* fall through */
  }
  return null;
}

function addImage(rawUrl, index) {
  const url = safeImageUrl(rawUrl);
  const figure = document.createElement("figure");
  figure.className = "result";
  const caption = document.createElement("figcaption");
  caption.textContent = `#${index + 1}`;
  if (!url) {
    figure.classList.add("failed");
    caption.textContent = `#${index + 1} · 无效链接 invalid URL: ${String(rawUrl).slice(0, 120)}`;
    figure.append(caption);
    ui.results.append(figure);
    return;
  }
  const link = document.createElement("a");
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  const img = document.createElement("img");
  img.className = "result-image";
  img.alt = `image ${index + 1}`;
  img.referrerPolicy = "no-referrer";
  img.decoding = "async";
  img.addEventListener("load", () => {
    caption.textContent = `#${index + 1} · ${img.naturalWidth}×${img.naturalHeight}`;
  });
  img.addEventListener("error", () => {
    figure.classList.add("failed");
    caption.textContent = `#${index + 1} · 图片加载失败 image failed to load`;
  });
  img.src = url;
  link.append(img);
  figure.append(link, caption);
  ui.results.append(figure);
}

// ---------------------------------------------------------------- request helpers

function apiBase() {
  const raw = ui.apiBase.value.trim() || pageOrigin();
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new PlaygroundError(`API 地址无效 Invalid API base URL: ${raw}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new PlaygroundError(`API 地址须为 http(s) The API base must be http(s): ${raw}`);
  }
  return url.href.replace(/\/+$/, "");
}

/** "Bearer a, b\nc" → "a,b,c" (session ids); an API key passes through unchanged. */
function credentialsValue() {
  const raw = ui.credentials.value.trim().replace(/^bearer\s+/i, "");
  return raw
    .split(/[\s,]+/)
    .filter(Boolean)
    .join(",");
}

function headers(json = true) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const credentials = credentialsValue();
  if (credentials) h.Authorization = `Bearer ${credentials}`;
  return h;
}

async function post(path, body, signal) {
  const url = apiBase() + path;
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: headers(),
      body: JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    throw networkError(err, url);
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

function readForm() {
  const prompt = ui.prompt.value.trim();
  if (!prompt) throw new PlaygroundError("请输入提示词 Please enter a prompt.");
  const n = Number(ui.n.value);
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new PlaygroundError("数量须为 1–8 n must be a whole number from 1 to 8.");
  }
  return {
    model: ui.model.value,
    ratio: ui.ratio.value,
    resolution: ui.resolution.value,
    n,
    negativePrompt: ui.negativePrompt.value.trim(),
    prompt,
  };
}

/** The chat endpoint takes the size as a model suffix: "jimeng-4.0:16:9:2k". */
function chatModel(model, ratio, resolution) {
  return `${model}:${ratio}:${resolution}`;
}

// ---------------------------------------------------------------- actions

async function run(action) {
  clearError();
  ui.results.replaceChildren();
  let params;
  try {
    params = readForm();
  } catch (err) {
    showError(err);
    setStatus("就绪 Ready", "idle");
    return;
  }
  savePrefs();
  controller = new AbortController();
  setBusy(true);
  const progress = startProgress("请稍候 Please wait…");
  try {
    const count = await action(params, controller.signal, progress);
    stopTimer();
    const seconds = progress.elapsed().toFixed(1);
    setStatus(`完成 Done · ${count} 张图片 image${count === 1 ? "" : "s"} · ${seconds}s`, "done");
  } catch (err) {
    stopTimer();
    const seconds = progress.elapsed().toFixed(1);
    if (controller.signal.aborted) {
      setStatus(`已取消 Cancelled · ${seconds}s`, "cancelled");
    } else {
      showError(err instanceof PlaygroundError ? err : networkError(err, ui.apiBase.value));
      setStatus(`失败 Failed · ${seconds}s`, "error");
    }
  } finally {
    controller = null;
    setBusy(false);
  }
}

async function generate(params, signal, progress) {
  progress.set("生成中，请稍候 Generating…");
  const body = {
    model: params.model,
    prompt: params.prompt,
    n: params.n,
    ratio: params.ratio,
    resolution: params.resolution,
    response_format: "url",
  };
  if (params.negativePrompt) body.negative_prompt = params.negativePrompt;
  const response = await post("/v1/images/generations", body, signal);
  let payload;
  try {
    payload = await response.json();
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new PlaygroundError(
      `服务器返回了无效的 JSON The server answered invalid JSON (HTTP ${response.status}).`,
    );
  }
  const items = Array.isArray(payload && payload.data) ? payload.data : [];
  if (!items.length) throw new PlaygroundError("服务器没有返回图片 The server returned no images.");
  items.forEach((item, i) => {
    if (item && item.url) addImage(item.url, i);
    else if (item && item.b64_json) addImage(`data:image/png;base64,${item.b64_json}`, i);
    else addImage(String(item && JSON.stringify(item)), i);
  });
  return items.length;
}

const MARKDOWN_IMAGE = /!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;

async function stream(params, signal, progress) {
  progress.set("连接中 Connecting…");
  const body = {
    model: chatModel(params.model, params.ratio, params.resolution),
    messages: [{ role: "user", content: params.prompt }],
    n: params.n, // the number of images (the reply is always one choice)
    stream: true,
  };
  if (params.negativePrompt) body.negative_prompt = params.negativePrompt;
  const response = await post("/v1/chat/completions", body, signal);
  const type = response.headers.get("Content-Type") || "";
  if (!type.includes("text/event-stream")) {
    throw new PlaygroundError(
      `期望事件流 Expected an event stream, got "${type}" (HTTP ${response.status}).`,
    );
  }
  progress.set("已连接，等待中 Connected, waiting…");

  let content = "";
  let shown = 0;
  let done = false;
  let finishReason = null;

  const onEvent = ({ data }) => {
    if (data === "[DONE]") {
      done = true;
      return true;
    }
    let chunk;
    try {
      chunk = JSON.parse(data);
    } catch {
      throw new PlaygroundError(`无效的事件 Invalid event from the server: ${data.slice(0, 200)}`);
    }
    if (chunk && chunk.error) {
      const e = chunk.error;
      throw new PlaygroundError(String(e.message || JSON.stringify(e)), {
        code: e.code,
        type: e.type,
        midStream: true,
      });
    }
    const choice = chunk && Array.isArray(chunk.choices) ? chunk.choices[0] : null;
    if (!choice) return false;
    if (choice.finish_reason) finishReason = choice.finish_reason;
    const delta =
      choice.delta && typeof choice.delta.content === "string" ? choice.delta.content : "";
    if (!delta) return false;
    content += delta;
    // render every complete markdown image not shown yet, the moment its line arrives
    const urls = [...content.matchAll(MARKDOWN_IMAGE)].map((m) => m[1]);
    for (; shown < urls.length; shown++) addImage(urls[shown], shown);
    // the rest of the text is progress: show its last line
    const lines = content
      .replace(MARKDOWN_IMAGE, "")
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    const last = lines.length ? lines[lines.length - 1] : "";
    if (shown) progress.set(`${last ? last + " · " : ""}已收到 ${shown} 张 received ${shown}`);
    else if (last) progress.set(last);
    return false;
  };

  try {
    await readEventStream(response, onEvent);
  } catch (err) {
    if (err instanceof PlaygroundError) throw err;
    if (err && err.name === "AbortError") throw err;
    throw new PlaygroundError(
      `流中断 The stream broke off: ${err && err.message ? err.message : err}`,
    );
  }
  if (!done) throw new PlaygroundError("流在 [DONE] 之前结束 The stream ended before [DONE].");
  if (finishReason && finishReason !== "stop") {
    throw new PlaygroundError(`生成未完成 Generation ended with finish_reason "${finishReason}".`);
  }
  if (!shown) throw new PlaygroundError("服务器没有返回图片 The server returned no images.");
  return shown;
}

async function checkCredits() {
  clearError();
  ui.checkCredits.disabled = true;
  ui.credits.hidden = false;
  ui.credits.replaceChildren(textElement("p", "查询中 Checking credits…", "muted"));
  try {
    const url = apiBase() + "/token/points";
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: headers(),
        body: "{}",
        credentials: "omit",
        cache: "no-store",
      });
    } catch (err) {
      throw networkError(err, url);
    }
    if (!response.ok) throw await errorFromResponse(response);
    const payload = await response.json();
    renderCredits(
      Array.isArray(payload)
        ? payload
        : Array.isArray(payload && payload.data)
          ? payload.data
          : [payload],
    );
  } catch (err) {
    ui.credits.hidden = true;
    showError(err instanceof PlaygroundError ? err : new PlaygroundError(String(err)));
  } finally {
    ui.checkCredits.disabled = false;
  }
}

function textElement(tag, text, className) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

function renderCredits(entries) {
  const list = document.createElement("ul");
  for (const entry of entries) {
    const item = document.createElement("li");
    item.append(
      textElement("code", String(entry && entry.token ? entry.token : "?"), "token"),
      " ",
    );
    if (entry && entry.points) {
      const p = entry.points;
      item.className = "ok";
      item.append(
        textElement("strong", `${p.totalCredit ?? "?"} 积分 credits`, "total"),
        textElement(
          "span",
          ` (赠送 gift ${p.giftCredit ?? "?"} · 购买 purchased ${p.purchaseCredit ?? "?"} · 会员 VIP ${p.vipCredit ?? "?"})`,
          "detail",
        ),
      );
    } else {
      const e = entry && entry.error ? entry.error : { message: JSON.stringify(entry) };
      item.className = "bad";
      item.append(
        textElement(
          "span",
          `错误 error: ${e.code ? e.code + " — " : ""}${e.message || ""}`,
          "detail",
        ),
      );
    }
    list.append(item);
  }
  const heading = textElement(
    "h2",
    `积分 Credits · ${entries.length} 个会话 session${entries.length === 1 ? "" : "s"}`,
  );
  ui.credits.replaceChildren(heading, list);
}

// ---------------------------------------------------------------- models and prefs

function loadPrefs() {
  try {
    return JSON.parse(load(STORE.prefs) || "{}") || {};
  } catch {
    return {};
  }
}

function savePrefs() {
  const prefs = {
    model: ui.model.value,
    ratio: ui.ratio.value,
    resolution: ui.resolution.value,
    n: ui.n.value,
    negativePrompt: ui.negativePrompt.value,
  };
  save(STORE.prefs, JSON.stringify(prefs));
}

function fillModels(ids) {
  const wanted = ui.model.value || loadPrefs().model;
  ui.model.replaceChildren(
    ...ids.map((id) => {
      const option = document.createElement("option");
      option.value = id;
      option.textContent = id;
      return option;
    }),
  );
  ui.model.value = [wanted, PREFERRED_MODEL].find((id) => id && ids.includes(id)) || ids[0];
}

let modelsRequest = 0;

async function loadModels() {
  const request = ++modelsRequest;
  try {
    const response = await fetch(apiBase() + "/v1/models", {
      headers: headers(false),
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const payload = await response.json();
    const ids = (payload.data || []).map((m) => m && m.id).filter((id) => typeof id === "string");
    if (!ids.length) throw new Error("empty model list");
    if (request === modelsRequest) fillModels(ids);
  } catch {
    if (request === modelsRequest && !ui.model.options.length) fillModels(FALLBACK_MODELS);
  }
}

function restore() {
  const prefs = loadPrefs();
  ui.apiBase.value = load(STORE.apiBase) || pageOrigin();
  ui.credentials.value = load(STORE.credentials) || "";
  if (RATIOS.includes(prefs.ratio)) ui.ratio.value = prefs.ratio;
  if (RESOLUTIONS.includes(prefs.resolution)) ui.resolution.value = prefs.resolution;
  if (prefs.n) ui.n.value = prefs.n;
  if (prefs.negativePrompt) ui.negativePrompt.value = prefs.negativePrompt;
  fillModels(FALLBACK_MODELS);
  updateDocsLink();
}

function updateDocsLink() {
  try {
    ui.docsLink.href = apiBase() + "/docs";
  } catch {
    /* an invalid base is reported when used */
  }
}

// ---------------------------------------------------------------- wiring

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  run(generate);
});
ui.stream.addEventListener("click", () => run(stream));
ui.cancel.addEventListener("click", () => controller && controller.abort());
ui.checkCredits.addEventListener("click", checkCredits);

ui.credentials.addEventListener("input", () =>
  save(STORE.credentials, ui.credentials.value.trim()),
);
ui.forgetCredentials.addEventListener("click", () => {
  ui.credentials.value = "";
  save(STORE.credentials, "");
  ui.credits.hidden = true;
  setStatus("已清除凭据 Credentials forgotten", "idle");
});
ui.toggleCredentials.addEventListener("click", () => {
  const show = ui.credentials.type === "password";
  ui.credentials.type = show ? "text" : "password";
  ui.toggleCredentials.setAttribute("aria-pressed", String(show));
  ui.toggleCredentials.textContent = show ? "隐藏 Hide" : "显示 Show";
});
ui.apiBase.addEventListener("change", () => {
  const value = ui.apiBase.value.trim().replace(/\/+$/, "");
  save(STORE.apiBase, value && value !== pageOrigin() ? value : "");
  updateDocsLink();
  loadModels();
});
for (const el of [ui.model, ui.ratio, ui.resolution, ui.n, ui.negativePrompt]) {
  el.addEventListener("change", savePrefs);
}
ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) ui.form.requestSubmit();
});

restore();
loadModels();
document.documentElement.dataset.ready = "true";
