// The few API calls the playground makes. Errors are ApiError objects that keep
// the status, the OpenAI error fields and the server's own message; errors.js
// turns them into localized text.
//
// Text to image: POST /v1/chat/completions (stream) or /v1/images/generations.
// With reference images: multipart POST /v1/images/edits, the files as image[]
// in order (OpenAI's images.edit); when one of them is a URL, JSON instead, with
// image: [URL or data: URI, ...] in order (the server fetches the URLs). Streamed,
// each image_edit.completed event's b64_json is shown as it arrives, then the
// task (X-Task-Id) gives the images' URLs, which the history keeps instead of
// the bytes.
// Video: POST /v1/videos (JSON; frames as data: URIs), GET /v1/videos/{id}
// until it is completed (GET /v1/tasks/{id} for the queue position), then
// GET /v1/videos/{id}/content with the Authorization header, as a Blob.

import { dataUri } from "./refs.js";
import { readEventStream } from "./sse.js";

// Sent with every streamed request: the chat stream's progress text is opt-in
// ("progress": true; API clients get none by default, CHAT_PROGRESS_TEXT).
export const STREAM_REQUEST_EXTRAS = { progress: true };

// Where the server describes itself ({"version": ..., "demo": true} while it runs
// against the offline simulator). Missing on older servers: then no demo hint.
export const SERVER_INFO_PATH = "/version";

export class ApiError extends Error {
  /**
   * kind: "http" (a status), "network", "stream" (error event), "video" (a failed
   * video job) or "local" (a message key); context: "video" for the video calls
   */
  constructor(kind, { status = null, code = null, type = null, param = null, message = "", key = null, vars = {}, context = null } = {}) {
    super(message || key || kind);
    Object.assign(this, { kind, status, code, type, param, serverMessage: message, key, vars, context });
  }
}

export const localError = (key, vars) => new ApiError("local", { key, vars });

function openAIError(kind, status, body, context = null) {
  const err = body && typeof body === "object" && body.error && typeof body.error === "object" ? body.error : {};
  return new ApiError(kind, {
    status,
    code: err.code ?? null,
    type: err.type ?? null,
    param: err.param ?? null,
    message: typeof err.message === "string" ? err.message : "",
    context,
  });
}

async function errorFromResponse(response, context) {
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: { message: text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300) } };
  }
  return openAIError("http", response.status, body, context);
}

/**
 * fetch() against the API base; non-2xx answers become ApiError. `body` goes
 * as JSON, `form` (FormData) as multipart; `context` ("video") picks messages.
 */
async function call(conn, path, { method = "GET", body, form, signal, context = null } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (conn.token) headers.Authorization = `Bearer ${conn.token}`;
  const url = conn.base + path;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: form ?? (body === undefined ? undefined : JSON.stringify(body)),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError("network", { key: "error.network", vars: { url: conn.base }, message: String(err && err.message) });
  }
  if (!response.ok) throw await errorFromResponse(response, context);
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

/** The fields of an image request, text to image or edit. */
function imageFields(job) {
  const fields = { model: job.model, prompt: job.prompt, n: job.n, ratio: job.ratio, resolution: job.resolution };
  if (job.negativePrompt) fields.negative_prompt = job.negativePrompt;
  return fields;
}

/** POST /v1/images/generations; all URLs at once. */
export async function generateImages(conn, job, signal) {
  const body = imageFields(job);
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
  let content = "";
  let urls = [];
  await readJsonEvents(response, (chunk) => {
    const choice = chunk && Array.isArray(chunk.choices) ? chunk.choices[0] : null;
    const delta = choice && choice.delta && typeof choice.delta.content === "string" ? choice.delta.content : "";
    if (!delta) return;
    content += delta;
    urls = [...content.matchAll(MARKDOWN_IMAGE)].map((m) => m[1]);
    const lines = content.replace(MARKDOWN_IMAGE, "").split("\n").map((l) => l.trim()).filter(Boolean);
    onUpdate({ urls, progress: lines.length ? lines[lines.length - 1] : "" });
  });
  if (!urls.length) throw localError("error.noImages");
  return urls;
}

/**
 * Read an SSE answer of JSON events until `data: [DONE]`, giving each event to
 * `onJson`; an error event, a body that is not JSON, or a stream that ends
 * early throws.
 */
async function readJsonEvents(response, onJson) {
  if (!(response.headers.get("Content-Type") || "").includes("text/event-stream")) throw localError("error.badResponse");
  let done = false;
  const onEvent = ({ data }) => {
    if (data === "[DONE]") return (done = true);
    let value;
    try {
      value = JSON.parse(data);
    } catch {
      throw localError("error.badResponse");
    }
    if (value && value.error) throw openAIError("stream", null, value);
    onJson(value);
    return false;
  };
  try {
    await readEventStream(response, onEvent);
  } catch (err) {
    if (err instanceof ApiError || (err && err.name === "AbortError")) throw err;
    throw localError("error.streamEnded");
  }
  if (!done) throw localError("error.streamEnded");
}

// ---------------------------------------------------------------- image to image

/** POST /v1/images/edits: multipart when every reference is a file, else JSON. */
async function postEdit(conn, job, stream, signal) {
  const fields = imageFields(job);
  if (stream) fields.stream = true;
  let request;
  if (job.references.every((r) => r.blob)) {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
    for (const reference of job.references) form.append("image[]", reference.blob, reference.name);
    request = { form };
  } else {
    const image = await Promise.all(job.references.map((r) => r.url || dataUri(r.blob)));
    request = { body: { ...fields, image } };
  }
  return call(conn, "/v1/images/edits", { method: "POST", ...request, signal });
}

function imageUrls(payload) {
  const items = Array.isArray(payload && payload.data) ? payload.data : [];
  return items.map((i) => (i && i.url) || (i && i.b64_json && `data:image/png;base64,${i.b64_json}`)).filter(Boolean);
}

/** POST /v1/images/edits; all URLs at once. */
export async function editImages(conn, job, signal) {
  const payload = await json(await postEdit(conn, job, false, signal));
  const urls = imageUrls(payload);
  if (!urls.length) throw localError("error.noImages");
  return urls;
}

/**
 * POST /v1/images/edits with stream: true. `onUpdate({urls, progress})`
 * after each image (data: URIs of the events' b64_json). Returns {urls, taskId}.
 */
export async function streamEdits(conn, job, signal, onUpdate) {
  const response = await postEdit(conn, job, true, signal);
  const taskId = response.headers.get("X-Task-Id");
  const images = [];
  await readJsonEvents(response, (event) => {
    if (!event || typeof event.type !== "string" || !event.type.endsWith(".completed") || typeof event.b64_json !== "string") return;
    const format = /^(png|jpeg|webp)$/.test(event.output_format) ? event.output_format : "png";
    const index = Number.isInteger(event.image_index) ? event.image_index : images.length;
    images[index] = `data:image/${format};base64,${event.b64_json}`;
    onUpdate({ urls: images.filter(Boolean), progress: "" });
  });
  const urls = images.filter(Boolean);
  if (!urls.length) throw localError("error.noImages");
  return { urls, taskId };
}

/** GET /v1/tasks/{id}: the task (its result is what the synchronous call returns). */
export async function getTask(conn, id, signal, context = null) {
  return json(await call(conn, `/v1/tasks/${encodeURIComponent(id)}`, { signal, context }));
}

/** The image URLs of a finished task, or null. */
export async function taskImageUrls(conn, id, signal) {
  const task = await getTask(conn, id, signal);
  if (!task || task.status !== "completed") return null;
  const urls = imageUrls(task.result);
  return urls.length ? urls : null;
}

// ---------------------------------------------------------------- video

/** POST /v1/videos: the video object (status queued or in_progress). */
export async function createVideo(conn, body, signal) {
  const video = await json(await call(conn, "/v1/videos", { method: "POST", body, signal, context: "video" }));
  if (!video || typeof video.id !== "string") throw localError("error.badResponse");
  return video;
}

/** GET /v1/videos/{id}; a video the server no longer has is error.videoGone. */
export async function getVideo(conn, id, signal) {
  try {
    return await json(await call(conn, `/v1/videos/${encodeURIComponent(id)}`, { signal, context: "video" }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw localError("error.videoGone");
    throw err;
  }
}

/** GET /v1/videos/{id}/content with the Authorization header: the MP4 as a Blob. */
export async function videoContent(conn, id, signal) {
  try {
    const response = await call(conn, `/v1/videos/${encodeURIComponent(id)}/content`, { signal, context: "video" });
    return await response.blob();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw localError("error.videoGone");
    throw err;
  }
}
