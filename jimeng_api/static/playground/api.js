// The few API calls the playground makes. Errors are ApiError objects that keep
// the status, the OpenAI error fields and the server's own message; errors.js
// turns them into localized text.

import { readEventStream } from "./sse.js";

// Sent with every streamed request: the chat stream's progress text is opt-in
// ("progress": true; API clients get none by default, CHAT_PROGRESS_TEXT).
export const STREAM_REQUEST_EXTRAS = { progress: true };

// Where the server describes itself ({"version": ..., "demo": true} while it runs
// against the offline simulator). Missing on older servers: then no demo hint.
export const SERVER_INFO_PATH = "/version";

export class ApiError extends Error {
  /** kind: "http" (a status), "network", "stream" (error event) or "local" (a message key) */
  constructor(kind, { status = null, code = null, type = null, param = null, message = "", key = null, vars = {} } = {}) {
    super(message || key || kind);
    Object.assign(this, { kind, status, code, type, param, serverMessage: message, key, vars });
  }
}

export const localError = (key, vars) => new ApiError("local", { key, vars });

function openAIError(kind, status, body) {
  const err = body && typeof body === "object" && body.error && typeof body.error === "object" ? body.error : {};
  return new ApiError(kind, {
    status,
    code: err.code ?? null,
    type: err.type ?? null,
    param: err.param ?? null,
    message: typeof err.message === "string" ? err.message : "",
  });
}

async function errorFromResponse(response) {
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: { message: text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300) } };
  }
  return openAIError("http", response.status, body);
}

/** fetch() against the API base; non-2xx answers become ApiError. */
async function call(conn, path, { method = "GET", body, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (conn.token) headers.Authorization = `Bearer ${conn.token}`;
  const url = conn.base + path;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError("network", { key: "error.network", vars: { url: conn.base }, message: String(err && err.message) });
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

async function json(response) {
  try {
    return await response.json();
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw localError("error.badResponse");
  }
}

export async function listModels(conn) {
  const payload = await json(await call(conn, "/v1/models"));
  return Array.isArray(payload && payload.data) ? payload.data.filter((m) => m && typeof m.id === "string") : [];
}

/** The server's self-description, or null when it has none. */
export async function serverInfo(conn) {
  try {
    const payload = await json(await call(conn, SERVER_INFO_PATH));
    return payload && typeof payload === "object" ? payload : null;
  } catch {
    return null;
  }
}

export async function points(conn) {
  const payload = await json(await call(conn, "/token/points", { method: "POST", body: {} }));
  if (Array.isArray(payload)) return payload;
  return Array.isArray(payload && payload.data) ? payload.data : [payload];
}

/** POST /v1/images/generations; all URLs at once. */
export async function generateImages(conn, job, signal) {
  const body = { model: job.model, prompt: job.prompt, n: job.n, ratio: job.ratio, resolution: job.resolution };
  if (job.negativePrompt) body.negative_prompt = job.negativePrompt;
  const payload = await json(await call(conn, "/v1/images/generations", { method: "POST", body, signal }));
  const items = Array.isArray(payload && payload.data) ? payload.data : [];
  const urls = items.map((i) => (i && i.url) || (i && i.b64_json && `data:image/png;base64,${i.b64_json}`)).filter(Boolean);
  if (!urls.length) throw localError("error.noImages");
  return urls;
}

const MARKDOWN_IMAGE = /!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;

/**
 * POST /v1/chat/completions with stream: true. `onUpdate({urls, progress})` runs
 * whenever something arrives: every image URL so far, and the last line of text
 * that is not an image (the server's progress message, if it sends one).
 */
export async function streamImages(conn, job, signal, onUpdate) {
  const body = {
    model: `${job.model}:${job.ratio}:${job.resolution}`, // the size rides on the model name
    messages: [{ role: "user", content: job.prompt }],
    n: job.n,
    stream: true,
    ...STREAM_REQUEST_EXTRAS,
  };
  if (job.negativePrompt) body.negative_prompt = job.negativePrompt;
  const response = await call(conn, "/v1/chat/completions", { method: "POST", body, signal });
  if (!(response.headers.get("Content-Type") || "").includes("text/event-stream")) throw localError("error.badResponse");

  let content = "";
  let urls = [];
  let done = false;
  const onEvent = ({ data }) => {
    if (data === "[DONE]") return (done = true);
    let chunk;
    try {
      chunk = JSON.parse(data);
    } catch {
      throw localError("error.badResponse");
    }
    if (chunk && chunk.error) throw openAIError("stream", null, chunk);
    const choice = chunk && Array.isArray(chunk.choices) ? chunk.choices[0] : null;
    const delta = choice && choice.delta && typeof choice.delta.content === "string" ? choice.delta.content : "";
    if (!delta) return false;
    content += delta;
    urls = [...content.matchAll(MARKDOWN_IMAGE)].map((m) => m[1]);
    const lines = content.replace(MARKDOWN_IMAGE, "").split("\n").map((l) => l.trim()).filter(Boolean);
    onUpdate({ urls, progress: lines.length ? lines[lines.length - 1] : "" });
    return false;
  };
  try {
    await readEventStream(response, onEvent);
  } catch (err) {
    if (err instanceof ApiError || (err && err.name === "AbortError")) throw err;
    throw localError("error.streamEnded");
  }
  if (!done) throw localError("error.streamEnded");
  if (!urls.length) throw localError("error.noImages");
  return urls;
}
