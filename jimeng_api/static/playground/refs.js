// Reference images, and a video's first and last frame: pick or drop files,
// thumbnails in order, remove. Each file is checked and, when large, made
// smaller in the browser before it is sent (the server re-encodes references
// to at most 2048 px anyway, and its upload limit, MAX_CONTENT_LENGTH, is
// 1 MiB by default).

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
 * `.refs-notice` line, and the whole root as the drop zone.
 * `label(index)` names a thumbnail ("first frame"); `onChange()` after each change.
 */
export function createPicker(root, { label = (i) => String(i + 1), removeLabel = "refs.remove", onChange = () => {} } = {}) {
  const list = root.querySelector(".ref-list");
  const input = root.querySelector("input[type=file]");
  const noticeEl = root.querySelector(".refs-notice");
  const addButton = root.querySelector(".ref-add");
  let items = []; // {id, blob, name, width, height}
  let max = 1;
  let notices = [];
  let pending = Promise.resolve();
  let serial = 0;

  function render() {
    const views = items.map((item, index) => {
      const li = element("li", "ref");
      li.dataset.id = item.id;
      const img = element("img");
      img.src = blobUrl(item.blob);
      img.alt = item.name;
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
    const extra = items.length > max ? [{ key: "refs.excessNote", vars: { count: items.length - max, max } }] : [];
    const lines = [...notices, ...extra].map(({ key, vars }) => t(key, vars));
    noticeEl.textContent = lines.join(" ");
    noticeEl.hidden = lines.length === 0;
    root.dataset.count = String(items.length);
  }

  async function add(files) {
    notices = [];
    const wanted = [...files];
    const room = Math.max(0, max - items.length);
    if (wanted.length > room) notices.push({ key: "refs.tooMany", vars: { max, count: wanted.length - room } });
    for (const file of wanted.slice(0, room)) {
      try {
        const prepared = await prepareImage(file);
        items.push({ id: `r${++serial}`, ...prepared });
      } catch (err) {
        notices.push(err && err.key ? err : { key: "refs.unreadable", vars: { name: file.name || "" } });
      }
      render();
    }
    render();
    onChange();
  }

  function queue(files) {
    pending = pending.then(() => add(files));
    return pending;
  }

  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    queue(files);
  });
  root.addEventListener("dragover", (event) => {
    if (![...event.dataTransfer.types].includes("Files")) return;
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
    queue(event.dataTransfer.files);
  });
  root.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData ? event.clipboardData.files : [])];
    if (files.length) {
      event.preventDefault();
      queue(files);
    }
  });

  return {
    /** Wait until every file picked so far is ready. */
    settled: () => pending,
    /** What will be sent: the first `max` images. */
    sendable: () => items.slice(0, max).map(({ blob, name }) => ({ blob, name })),
    count: () => items.length,
    setMax(value) {
      max = value;
      render();
    },
    /** Put stored references back (re-run). */
    set(stored) {
      items = (stored || []).filter((s) => s && s.blob instanceof Blob).map((s) => ({ id: `r${++serial}`, blob: s.blob, name: s.name || "image" }));
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
