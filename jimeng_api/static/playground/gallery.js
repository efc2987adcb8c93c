// The history gallery: one card per generation, newest first. Cards are redrawn
// from their entry (on every update and on a language switch). An image card
// shows its reference images and results; a video card its progress, then the
// player (the MP4 is fetched with the token, so it is a blob: URL that lives
// as long as the page; after a reload "Play video" fetches it again).

import { describeError } from "./errors.js";
import { language, t } from "./i18n.js";
import { isReference, referenceImage, safeImageUrl } from "./refs.js";

// entry id -> {url} (loaded), {loading: true} or {expired: true}: the video
// player's state for this page's lifetime
const videoViews = new Map();

export function setVideoView(id, view) {
  const old = videoViews.get(id);
  if (old && old.url && old.url !== (view && view.url)) URL.revokeObjectURL(old.url);
  if (view) videoViews.set(id, view);
  else videoViews.delete(id);
}

export const videoView = (id) => videoViews.get(id) || null;

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

const isVideo = (entry) => entry.kind === "video";

function meta(entry) {
  const when = new Intl.DateTimeFormat(language() === "zh" ? "zh-CN" : "en", {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  }).format(new Date(entry.createdAt));
  if (isVideo(entry)) {
    return [entry.model, entry.ratio, entry.resolution.toUpperCase(), t("history.video", { seconds: entry.duration }), when].join(" · ");
  }
  const count = entry.state === "running" ? t("history.running") : t("history.images", { count: entry.urls.length });
  const refs = entry.references && entry.references.length ? [t("history.refs", { count: entry.references.length })] : [];
  return [entry.model, entry.ratio, entry.resolution.toUpperCase(), ...refs, count, when].join(" · ");
}

/** A video entry that may still be collected: its job has an id and did not end here. */
export const collectable = (entry) => isVideo(entry) && Boolean(entry.videoId) && ["cancelled", "interrupted"].includes(entry.state);

function note(entry) {
  if (isVideo(entry) && collectable(entry)) return t("history.videoWaiting");
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

function referenceStrip(entry) {
  const strip = element("div", "entry-refs");
  const refs = (entry.references || []).filter(isReference);
  strip.hidden = refs.length === 0;
  if (refs.length) {
    strip.append(element("span", "entry-refs-label", t("history.references")));
    for (const [i, ref] of refs.entries()) strip.append(referenceImage({ ...ref, name: `${i + 1}: ${ref.name || ""}` }, "entry-ref"));
  }
  return strip;
}

/** A card for `entry`; `actions` = {onOpen, onRerun, onDelete, onLoadVideo, onCheckVideo}. */
export function renderEntry(entry, actions) {
  const card = element("li", isVideo(entry) ? "entry video-entry" : "entry");
  card.dataset.id = entry.id;
  card.dataset.kind = entry.kind || "image";
  const head = element("div", "entry-head");
  head.append(element("p", "entry-prompt", entry.prompt), element("p", "entry-meta"));
  const buttons = element("div", "entry-actions");
  if (isVideo(entry)) {
    const download = element("a", "button ghost download-video", t("history.videoDownload"));
    download.hidden = true;
    buttons.append(download, button("ghost check-video", t("history.videoCheck"), () => actions.onCheckVideo(entry)));
  }
  buttons.append(
    button("ghost rerun", t("history.rerun"), () => actions.onRerun(entry)),
    button("ghost delete", t("history.delete"), () => actions.onDelete(entry)),
  );
  const body = isVideo(entry) ? element("div", "entry-video") : element("div", "entry-images");
  card.append(head, element("p", "entry-note"));
  if (!isVideo(entry)) card.append(referenceStrip(entry));
  card.append(body, buttons);
  updateEntry(card, entry, actions);
  card.classList.add("fresh");
  return card;
}

function updateImages(card, entry, actions) {
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
}

function progressLine(entry) {
  const video = entry.video || {};
  if (video.status === "queued" || !video.status) {
    return video.position ? t("history.videoQueuedAt", { position: video.position }) : t("history.videoQueued");
  }
  return t("history.videoProgress", { progress: Math.max(0, Math.min(100, Number(video.progress) || 0)) });
}

/** The video area: progress while it runs, then the player or the button that loads it. */
function updateVideo(card, entry, actions) {
  const area = card.querySelector(".entry-video");
  const view = videoView(entry.id);
  const stage =
    entry.state === "running" ? "running" : entry.state !== "done" ? "none" : view && view.url ? `player:${view.url}` : view && view.loading ? "loading" : view && view.expired ? "expired" : "load";
  const ratio = entry.ratio.replace(":", " / ");
  if (area.dataset.stage !== stage) {
    area.dataset.stage = stage;
    area.replaceChildren();
    if (stage === "running") {
      const frame = element("div", "video-frame pending");
      frame.style.aspectRatio = ratio;
      const bar = element("progress", "video-progress");
      bar.max = 100;
      frame.append(bar, element("span", "video-progress-text"));
      area.append(frame);
    } else if (stage.startsWith("player:")) {
      const player = element("video", "result-video");
      player.controls = true;
      player.playsInline = true;
      player.preload = "auto"; // a local blob: the first frame shows at once
      player.src = view.url;
      player.style.aspectRatio = ratio;
      area.append(player);
    } else if (stage === "load") {
      const load = button("video-frame load-video", "", () => actions.onLoadVideo(entry));
      load.style.aspectRatio = ratio;
      load.append(element("span", "play-glyph"), element("span", "video-frame-text"));
      area.append(load);
    } else if (stage === "loading" || stage === "expired") {
      const frame = element("div", `video-frame ${stage}`);
      frame.style.aspectRatio = ratio;
      frame.append(element("span", "video-frame-text"));
      area.append(frame);
    }
  }
  area.hidden = stage === "none";
  const bar = area.querySelector("progress");
  if (bar) {
    const video = entry.video || {};
    if (video.status === "in_progress") bar.value = Math.max(1, Number(video.progress) || 0);
    else bar.removeAttribute("value"); // queued: indeterminate
  }
  const text = area.querySelector(".video-progress-text, .video-frame-text");
  if (text) {
    text.textContent =
      stage === "running" ? progressLine(entry) : stage === "load" ? t("history.videoLoad") : stage === "loading" ? t("history.videoLoading") : t("history.videoExpired");
  }
  const download = card.querySelector(".download-video");
  download.hidden = !(view && view.url && entry.state === "done");
  if (view && view.url) {
    download.href = view.url;
    download.download = `jimeng-${entry.videoId || entry.id}.mp4`;
  }
  card.querySelector(".check-video").hidden = !collectable(entry);
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
  if (isVideo(entry)) updateVideo(card, entry, actions);
  else updateImages(card, entry, actions);
  card.querySelector(".rerun").disabled = entry.state === "running";
}

/** Redraw the texts of a card (after a language switch). */
export function translateEntry(card, entry, actions) {
  card.querySelector(".rerun").textContent = t("history.rerun");
  card.querySelector(".delete").textContent = t("history.delete");
  if (isVideo(entry)) {
    card.querySelector(".check-video").textContent = t("history.videoCheck");
    card.querySelector(".download-video").textContent = t("history.videoDownload");
  } else {
    const label = card.querySelector(".entry-refs-label");
    if (label) label.textContent = t("history.references");
  }
  for (const [i, img] of [...card.querySelectorAll("img.result-image")].entries()) {
    img.alt = t("image.alt", { index: i + 1, prompt: entry.prompt });
    if (img.parentElement.classList.contains("broken")) img.parentElement.dataset.label = t("history.expired");
  }
  updateEntry(card, entry, actions);
}
