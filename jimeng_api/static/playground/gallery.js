// The history gallery: one card per generation, newest first. Cards are redrawn
// from their entry (on every update and on a language switch).

import { describeError } from "./errors.js";
import { language, t } from "./i18n.js";

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

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function button(className, label, onClick) {
  const el = element("button", className, label);
  el.type = "button";
  el.addEventListener("click", onClick);
  return el;
}

function meta(entry) {
  const when = new Intl.DateTimeFormat(language() === "zh" ? "zh-CN" : "en", {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  }).format(new Date(entry.createdAt));
  const count = entry.state === "running" ? t("history.running") : t("history.images", { count: entry.urls.length });
  return [entry.model, entry.ratio, entry.resolution.toUpperCase(), count, when].join(" · ");
}

function note(entry) {
  if (entry.state === "cancelled") return t("history.cancelled");
  if (entry.state === "interrupted") return t("history.interrupted");
  if (entry.state === "error" && entry.error) {
    const { text, detail } = describeError(entry.error);
    return detail ? `${text} ${t("error.serverSaid")}: ${detail}` : text;
  }
  return "";
}

function tile(entry, index, onOpen) {
  const tileEl = button("thumb", undefined, () => onOpen(entry, index));
  tileEl.style.aspectRatio = entry.ratio.replace(":", " / ");
  const url = safeImageUrl(entry.urls[index]);
  const img = element("img", "result-image");
  img.alt = t("image.alt", { index: index + 1, prompt: entry.prompt });
  img.referrerPolicy = "no-referrer";
  img.decoding = "async";
  img.addEventListener("error", () => {
    tileEl.classList.add("broken");
    tileEl.dataset.label = t("history.expired");
  });
  if (url) img.src = url;
  else img.dispatchEvent(new Event("error"));
  tileEl.append(img);
  return tileEl;
}

function pending(entry) {
  const el = element("div", "thumb pending");
  el.style.aspectRatio = entry.ratio.replace(":", " / ");
  el.setAttribute("aria-hidden", "true");
  return el;
}

/** A card for `entry`; `actions` = {onOpen(entry, index), onRerun(entry), onDelete(entry)}. */
export function renderEntry(entry, actions) {
  const card = element("li", "entry");
  card.dataset.id = entry.id;
  card.dataset.state = entry.state;

  const head = element("div", "entry-head");
  head.append(element("p", "entry-prompt", entry.prompt), element("p", "entry-meta", meta(entry)));
  const images = element("div", "entry-images");
  entry.urls.forEach((_, i) => images.append(tile(entry, i, actions.onOpen)));
  if (entry.state === "running") {
    for (let i = entry.urls.length; i < entry.n; i++) images.append(pending(entry));
  }
  card.append(head);
  const text = note(entry);
  if (text) card.append(element("p", "entry-note", text));
  if (images.childElementCount) card.append(images);

  const buttons = element("div", "entry-actions");
  const rerun = button("ghost rerun", t("history.rerun"), () => actions.onRerun(entry));
  rerun.disabled = entry.state === "running";
  buttons.append(rerun, button("ghost delete", t("history.delete"), () => actions.onDelete(entry)));
  card.append(buttons);
  return card;
}
