// The image viewer: a <dialog> with previous/next, download, copy URL, open original.

import { t } from "./i18n.js";
import { safeImageUrl } from "./refs.js";

const $ = (id) => document.getElementById(id);
let current = null; // {entry, index}

function show() {
  const { entry, index } = current;
  const url = entry.urls[index];
  $("lightbox-image").src = safeImageUrl(url) || "";
  $("lightbox-image").alt = t("image.alt", { index: index + 1, prompt: entry.prompt });
  $("lightbox-prompt").textContent = entry.prompt;
  $("lightbox-position").textContent = t("lightbox.position", { index: index + 1, total: entry.urls.length });
  $("lightbox-open").href = safeImageUrl(url) || "#";
  // an image that came as bytes (a stream event) has no link to copy or open
  const linked = /^https?:/i.test(url || "");
  $("lightbox-copy").hidden = !linked;
  $("lightbox-open").hidden = !linked;
  $("lightbox-previous").disabled = index === 0;
  $("lightbox-next").disabled = index === entry.urls.length - 1;
  $("lightbox-copy").textContent = t("lightbox.copy");
}

function step(delta) {
  const next = current.index + delta;
  if (next < 0 || next >= current.entry.urls.length) return;
  current.index = next;
  show();
}

function extension(type) {
  const sub = (type || "").split("/")[1] || "png";
  return sub === "jpeg" ? "jpg" : sub.replace(/[^a-z0-9]/g, "") || "png";
}

/** A data: URI as a Blob, without fetch() (the page's CSP allows no data: connections). */
function dataBlob(url) {
  const [head, payload] = url.split(",", 2);
  const type = (/^data:([^;,]+)/.exec(head) || [])[1] || "image/png";
  const bytes = /;base64$/i.test(head) ? Uint8Array.from(atob(payload), (c) => c.charCodeAt(0)) : new TextEncoder().encode(decodeURIComponent(payload));
  return new Blob([bytes], { type });
}

/** Save the image: as a file when its host allows fetch (CORS), else in a new tab. */
async function download() {
  const { entry, index } = current;
  const url = safeImageUrl(entry.urls[index]);
  if (!url) return;
  try {
    let blob;
    if (url.startsWith("data:")) {
      blob = dataBlob(url);
    } else {
      const response = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer" });
      if (!response.ok) throw new Error(String(response.status));
      blob = await response.blob();
    }
    const href = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = href;
    link.download = `jimeng-${entry.id}-${index + 1}.${extension(blob.type)}`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  } catch {
    if (!url.startsWith("data:")) window.open(url, "_blank", "noopener,noreferrer");
  }
}

async function copyUrl() {
  const url = current.entry.urls[current.index];
  const target = $("lightbox-copy");
  let ok = false;
  try {
    await navigator.clipboard.writeText(url);
    ok = true;
  } catch {
    const field = Object.assign(document.createElement("textarea"), { value: url });
    document.body.append(field);
    field.select();
    ok = document.execCommand("copy");
    field.remove();
  }
  target.textContent = t(ok ? "lightbox.copied" : "lightbox.copyFailed");
  setTimeout(() => current && (target.textContent = t("lightbox.copy")), 1500);
}

export function openLightbox(entry, index) {
  current = { entry, index };
  show();
  if (!$("lightbox").open) $("lightbox").showModal();
}

export function initLightbox() {
  const dialog = $("lightbox");
  $("lightbox-previous").addEventListener("click", () => step(-1));
  $("lightbox-next").addEventListener("click", () => step(1));
  $("lightbox-download").addEventListener("click", download);
  $("lightbox-copy").addEventListener("click", copyUrl);
  $("lightbox-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => event.target === dialog && dialog.close()); // the backdrop
  document.addEventListener("keydown", (event) => {
    if (!dialog.open) return; // focus may sit on <body> once "next" is disabled
    if (event.key === "ArrowLeft") step(-1);
    if (event.key === "ArrowRight") step(1);
  });
  dialog.addEventListener("close", () => {
    current = null;
    $("lightbox-image").removeAttribute("src");
  });
}

/** Redraw the open viewer (after a language switch). */
export function refreshLightbox() {
  if (current) show();
}
