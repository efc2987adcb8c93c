// Reference images, and a video's first and last frame: pick or drop files,
// thumbnails in order, remove. Each file is checked and, when large, made
// smaller in the browser before it is sent (the server re-encodes references
// to at most 2048 px anyway, and its upload limit, MAX_CONTENT_LENGTH, is
// 1 MiB by default). Where the picker has a URL field, a reference can also be
// an image URL (typed, pasted or dropped): it is sent as the URL itself and
// the server fetches it (a fetch from this page would fail on CORS).

import { t } from "./i18n.js";

export const ACCEPTED = ["image/png", "image/jpeg", "image/webp", "image/gif", "image/avif"];
const MAX_SIDE = 2048; // REFERENCE_MAX_SIDE's default
const KEEP_BYTES = 900 * 1024; // smaller files within MAX_SIDE go as they are

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function encode(canvas, type, quality) {
  if (canvas.convertToBlob) return canvas.convertToBlob({ type, quality });
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("encode"))), type, quality));
}

function renamed(name, type) {
  const ext = { "image/jpeg": "jpg", "image/webp": "webp", "image/png": "png" }[type] || "png";
  return `${String(name || "image").replace(/\.[^.]*$/, "") || "image"}.${ext}`;
}

/**
 * A file as it will be sent: {blob, name, type, width, height}. Throws a
 * {key, vars} notice when it is not an image the server takes.
 */
export async function prepareImage(file) {
  const name = file.name || "image";
  if (!ACCEPTED.includes(file.type)) throw { key: "refs.notImage", vars: { name } };
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw { key: "refs.unreadable", vars: { name } };
  }
  const { width, height } = bitmap;
  const longest = Math.max(width, height);
  if (file.size <= KEEP_BYTES && longest <= MAX_SIDE) {
    bitmap.close();
    return { blob: file, name, type: file.type, width, height };
  }
  const scale = Math.min(1, MAX_SIDE / longest);
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(w, h) : Object.assign(document.createElement("canvas"), { width: w, height: h });
  canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  // JPEG stays JPEG; anything that may hold transparency becomes WebP (or PNG)
  const wanted = file.type === "image/jpeg" ? "image/jpeg" : "image/webp";
  let blob = await encode(canvas, wanted, 0.9);
  if (!ACCEPTED.includes(blob.type)) blob = await encode(canvas, "image/png");
  return { blob, name: renamed(name, blob.type), type: blob.type, width: w, height: h };
}

const SHOWN = 60; // a refused value is cut to this many characters in the notice

/** Only http(s) and data:image URLs become <img src>. */
export function safeImageUrl(raw) {
  try {
    const url = new URL(raw);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
    if (url.protocol === "data:" && /^data:image\//i.test(raw)) return raw;
  } catch {
    /* not a URL */
  }
  return null;
}

const hostOf = (url) => (/^data:/i.test(url) ? "data:" : new URL(url).hostname);

/**
 * A reference given as text: {url, name} for an http(s) URL or a base64
 * data: URI of an accepted image type. Throws a {key, vars} notice otherwise.
 */
export function parseReference(text) {
  const value = String(text || "").trim();
  const url = safeImageUrl(value) || "";
  const data = /^data:(image\/[\w.+-]+);base64,/i.exec(url);
  if (data && ACCEPTED.includes(data[1].toLowerCase())) return { url, name: data[1].toLowerCase() };
  if (/^https?:/.test(url)) return { url, name: new URL(url).pathname.split("/").pop() || hostOf(url) };
  throw { key: "refs.badUrl", vars: { value: value.length > SHOWN ? `${value.slice(0, SHOWN - 1)}…` : value } };
}

/** A stored reference: {blob, name} (a file) or {url, name} (sent as the URL). */
export const isReference = (r) => Boolean(r && (r.blob instanceof Blob || typeof r.url === "string"));
const stored = ({ blob, url, name }) => (url ? { url, name } : { blob, name });

/** A thumbnail's <img>; a URL that does not load leaves its host name instead. */
export function referenceImage(ref, className) {
  const img = element("img", className);
  img.src = ref.url || blobUrl(ref.blob);
  img.alt = ref.name || "";
  if (!ref.url) return img;
  img.referrerPolicy = "no-referrer";
  img.addEventListener("error", () => {
    img.replaceWith(Object.assign(element("span", `ref-placeholder ${className || ""}`.trim(), hostOf(ref.url)), { title: ref.name }));
  });
  return img;
}

/** A Blob as a data: URI (the JSON bodies of /v1/videos). */
export function dataUri(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

const urls = new WeakMap(); // Blob -> object URL, made once per Blob

/** An object URL for a stored Blob (history cards show their references). */
export function blobUrl(blob) {
  if (!(blob instanceof Blob)) return "";
  if (!urls.has(blob)) urls.set(blob, URL.createObjectURL(blob));
  return urls.get(blob);
}

/**
 * A picker in `root`: `.ref-list` (thumbnails), `input[type=file]`, a
 * `.refs-notice` line, and the whole root as the drop zone; with
 * `.ref-url-input` (and its `.ref-url-add` button) it takes image URLs too.
 * `label(index)` names a thumbnail ("first frame"); `onChange()` after each change.
 */
export function createPicker(root, { label = (i) => String(i + 1), removeLabel = "refs.remove", onChange = () => {} } = {}) {
  const list = root.querySelector(".ref-list");
  const input = root.querySelector("input[type=file]");
  const noticeEl = root.querySelector(".refs-notice");
  const addButton = root.querySelector(".ref-add");
  const urlInput = root.querySelector(".ref-url-input");
  const urlButton = root.querySelector(".ref-url-add");
  let items = []; // {id, blob, name, width, height} or {id, url, name}
  let max = 1;
  let notices = [];
  let pending = Promise.resolve();
  let serial = 0;

  function render() {
    const views = items.map((item, index) => {
      const li = element("li", "ref");
      li.dataset.id = item.id;
      const img = referenceImage(item);
      const badge = element("span", "ref-label", label(index));
      const remove = element("button", "ref-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", t(removeLabel, { index: index + 1, name: item.name }));
      remove.addEventListener("click", () => {
        items = items.filter((x) => x.id !== item.id);
        notices = [];
        render();
        onChange();
      });
      li.append(img, badge, remove);
      if (index >= max) {
        li.classList.add("excess");
        li.title = t("refs.excess", { max });
      }
      return li;
    });
    list.replaceChildren(...views);
    list.hidden = items.length === 0;
    if (addButton) addButton.hidden = items.length >= max;
    input.disabled = items.length >= max;
    input.multiple = max > 1;
    if (urlInput) urlInput.disabled = urlButton.disabled = items.length >= max;
    const extra = items.length > max ? [{ key: "refs.excessNote", vars: { count: items.length - max, max } }] : [];
    const lines = [...notices, ...extra].map(({ key, vars }) => t(key, vars));
    noticeEl.textContent = lines.join(" ");
    noticeEl.hidden = lines.length === 0;
    root.dataset.count = String(items.length);
  }

  /** Add files, and URLs (strings), in order. */
  async function add(sources) {
    notices = [];
    const wanted = [...sources];
    const room = Math.max(0, max - items.length);
    if (wanted.length > room) notices.push({ key: "refs.tooMany", vars: { max, count: wanted.length - room } });
    for (const source of wanted.slice(0, room)) {
      try {
        const ready = typeof source === "string" ? parseReference(source) : await prepareImage(source);
        items.push({ id: `r${++serial}`, ...ready });
      } catch (err) {
        notices.push(err && err.key ? err : { key: "refs.unreadable", vars: { name: source.name || "" } });
      }
      render();
    }
    render();
    onChange();
  }

  function queue(sources) {
    pending = pending.then(() => add(sources));
    return pending;
  }

  /** The URL field's value: added (and cleared), or left there with the notice saying why not. */
  async function addTyped() {
    const value = urlInput.value.trim();
    if (!value) return;
    await queue([value]);
    const refused = notices.length > 0;
    urlInput.setAttribute("aria-invalid", String(refused));
    if (!refused && urlInput.value.trim() === value) urlInput.value = "";
  }

  if (urlInput) {
    urlButton.addEventListener("click", addTyped);
    urlInput.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault(); // not the form's submit
      addTyped();
    });
    urlInput.addEventListener("input", () => urlInput.removeAttribute("aria-invalid"));
  }

  /** Dropped or pasted: files, else (with a URL field) the URLs or text. */
  function take(transfer, event, text) {
    const files = [...(transfer ? transfer.files : [])];
    const urls = urlInput && !files.length ? text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s && !s.startsWith("#")) : [];
    if (!files.length && !urls.length) return;
    event.preventDefault();
    queue(files.length ? files : urls);
  }

  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    queue(files);
  });
  root.addEventListener("dragover", (event) => {
    const types = [...event.dataTransfer.types];
    if (!types.includes("Files") && !(urlInput && types.includes("text/uri-list"))) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = items.length < max ? "copy" : "none";
    root.classList.add("dragging");
  });
  root.addEventListener("dragleave", (event) => {
    if (!root.contains(event.relatedTarget)) root.classList.remove("dragging");
  });
  root.addEventListener("drop", (event) => {
    event.preventDefault();
    root.classList.remove("dragging");
    take(event.dataTransfer, event, event.dataTransfer.getData("text/uri-list"));
  });
  root.addEventListener("paste", (event) => {
    const data = event.clipboardData;
    const typing = event.target === urlInput; // text pasted into the field stays there
    take(data, event, data && !typing ? data.getData("text/plain") : "");
  });

  return {
    /** Wait until every file picked so far is ready. */
    settled: () => pending,
    /** What will be sent: the first `max` images. */
    sendable: () => items.slice(0, max).map(stored),
    count: () => items.length,
    setMax(value) {
      max = value;
      render();
    },
    /** Put stored references back (re-run). */
    set(references) {
      items = (references || []).filter(isReference).map((s) => ({ id: `r${++serial}`, ...stored(s), name: s.name || "image" }));
      notices = [];
      render();
    },
    clear() {
      items = [];
      notices = [];
      render();
    },
    translate: render,
  };
}
