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
  const head = element("div", "entry-head");
  head.append(element("p", "entry-prompt", entry.prompt), element("p", "entry-meta"));
  const buttons = element("div", "entry-actions");
  buttons.append(
    button("ghost rerun", t("history.rerun"), () => actions.onRerun(entry)),
    button("ghost delete", t("history.delete"), () => actions.onDelete(entry)),
  );
  card.append(head, element("p", "entry-note"), element("div", "entry-images"), buttons);
  updateEntry(card, entry, actions);
  card.classList.add("fresh");
  return card;
}

/**
 * Bring a card up to date in place: tiles already shown stay (no reload, no
 * flicker), placeholders give way to the images that arrived.
 */
export function updateEntry(card, entry, actions) {
  card.dataset.state = entry.state;
  card.querySelector(".entry-meta").textContent = meta(entry);
  const text = note(entry);
  const noteEl = card.querySelector(".entry-note");
  noteEl.textContent = text;
  noteEl.hidden = !text;
  const images = card.querySelector(".entry-images");
  const tiles = [...images.children];
  entry.urls.forEach((url, i) => {
    if (tiles[i] && tiles[i].dataset.url === url) return;
    const fresh = tile(entry, i, actions.onOpen);
    fresh.dataset.url = url;
    if (tiles[i]) tiles[i].replaceWith(fresh);
    else images.append(fresh);
  });
  const wanted = entry.state === "running" ? Math.max(entry.n, entry.urls.length) : entry.urls.length;
  while (images.children.length > wanted) images.lastElementChild.remove();
  while (images.children.length < wanted) images.append(pending(entry));
  images.hidden = wanted === 0;
  card.querySelector(".rerun").disabled = entry.state === "running";
}

/** Redraw the texts of a card (after a language switch). */
export function translateEntry(card, entry) {
  card.querySelector(".entry-meta").textContent = meta(entry);
  card.querySelector(".entry-note").textContent = note(entry);
  card.querySelector(".rerun").textContent = t("history.rerun");
  card.querySelector(".delete").textContent = t("history.delete");
  for (const [i, img] of [...card.querySelectorAll("img.result-image")].entries()) {
    img.alt = t("image.alt", { index: i + 1, prompt: entry.prompt });
    if (img.parentElement.classList.contains("broken")) img.parentElement.dataset.label = t("history.expired");
  }
}
