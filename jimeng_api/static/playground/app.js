// jimeng-api playground: plain ES modules, no framework, no build step.
// This module runs a generation (images or a video) and keeps the status line
// and the history.

import {
  ApiError,
  createVideo,
  editImages,
  generateImages,
  getTask,
  getVideo,
  listModels,
  streamEdits,
  streamImages,
  taskImageUrls,
  videoContent,
} from "./api.js";
import { connection, initConnection, translateConnection } from "./connection.js";
import { describeError } from "./errors.js";
import { applyJob, initForm, readJob, savePrefs, setModels, settleReferences, translateForm } from "./form.js";
import { collectable, renderEntry, setVideoView, translateEntry, updateEntry, videoView } from "./gallery.js";
import { newEntry, openHistory } from "./history.js";
import { detectLanguage, language, onLanguageChange, setLanguage, t } from "./i18n.js";
import { initLightbox, openLightbox, refreshLightbox } from "./lightbox.js";
import { dataUri } from "./refs.js";
import { load, save } from "./storage.js";
import { applyVideoJob, initVideoForm, readVideoJob, saveVideoPrefs, setVideoModels, settleFrames, translateVideoForm } from "./videoform.js";

const MODE_KEY = "jimeng-playground.mode";
const $ = (id) => document.getElementById(id);
const ui = {
  form: $("form"),
  prompt: $("prompt"),
  tabs: [$("tab-image"), $("tab-video")],
  tabVideo: $("tab-video"),
  generate: $("generate"),
  cancel: $("cancel"),
  confirm: $("cancel-confirm"),
  confirmText: $("cancel-explain"),
  confirmYes: $("cancel-confirm-yes"),
  confirmNo: $("cancel-confirm-no"),
  output: $("output"),
  status: $("status"),
  error: $("error"),
  gallery: $("gallery"),
  empty: $("history-empty"),
  count: $("history-count"),
  storageNote: $("history-storage"),
};

let history = null;
let entries = [];
let mode = "image"; // the tab: "image" or "video"
let running = null; // {entry, controller, started, progress}
let starting = false;
let status = { render: () => t("status.ready"), state: "idle" };
let lastError = null;
let ticker = null;
const background = new Map(); // entry id -> AbortController: videos collected after a reload or a cancel

// ---------------------------------------------------------------- status and errors

function setStatus(render, state) {
  status = { render, state };
  ui.status.textContent = render();
  ui.status.dataset.state = state;
}

const seconds = (started) => ((performance.now() - started) / 1000).toFixed(1);
const elapsed = (started) => t("status.elapsed", { seconds: Math.floor((performance.now() - started) / 1000) });

/** The server's progress line: its default message localized, anything else (say, a queue position) as sent. */
function progressText(text) {
  if (!text) return "";
  return /生成中|generating/i.test(text) ? t("progress.generating") : text;
}

function busyStatus() {
  const { entry, started, progress } = running;
  if (entry.kind === "video") return videoStatus(entry, started);
  const parts = [t("status.generating")];
  if (progressText(progress)) parts.push(progressText(progress));
  if (entry.urls.length) parts.push(t("status.received", { count: entry.urls.length, total: entry.n }));
  parts.push(elapsed(started));
  return parts.join(" · ");
}

function videoStatus(entry, started) {
  const video = entry.video || {};
  let what;
  if (!entry.videoId) what = t("status.connecting");
  else if (videoView(entry.id) && videoView(entry.id).loading) what = t("status.videoLoading");
  else if (video.status === "in_progress") what = t("status.videoProgress", { progress: Number(video.progress) || 0 });
  else what = video.position ? t("status.videoQueuedAt", { position: video.position }) : t("status.videoQueued");
  return `${what} · ${elapsed(started)}`;
}

function showError(err) {
  lastError = err;
  if (!err) {
    ui.error.hidden = true;
    return ui.error.replaceChildren();
  }
  const { text, detail } = describeError(err);
  const title = Object.assign(document.createElement("strong"), { textContent: `${t("error.title")}: ` });
  const message = Object.assign(document.createElement("span"), { className: "error-message", textContent: text });
  ui.error.replaceChildren(title, message);
  if (detail) {
    const said = Object.assign(document.createElement("small"), { className: "error-detail", textContent: `${t("error.serverSaid")}: ${detail}` });
    ui.error.append(said);
  }
  ui.error.hidden = false;
}

// ---------------------------------------------------------------- tabs

function setMode(next, { remember = false } = {}) {
  mode = next === "video" && !ui.tabVideo.hidden ? "video" : "image";
  ui.form.dataset.mode = mode;
  for (const tab of ui.tabs) {
    const selected = tab.dataset.mode === mode;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  if (!running) ui.generate.textContent = t(mode === "video" ? "action.generateVideo" : "action.generate");
  if (remember) save(MODE_KEY, mode);
}

// ---------------------------------------------------------------- history

const actions = {
  onOpen: (entry, index) => openLightbox(entry, index),
  onRerun: (entry) => {
    if (entry.kind === "video") {
      setMode("video", { remember: true });
      applyVideoJob({ ...entry, seconds: entry.duration });
      saveVideoPrefs();
    } else {
      setMode("image", { remember: true });
      applyJob({ references: [], ...entry });
      savePrefs();
    }
    start();
  },
  onDelete: async (entry) => {
    if (background.has(entry.id)) background.get(entry.id).abort();
    setVideoView(entry.id, null);
    entries = entries.filter((e) => e.id !== entry.id);
    await history.remove(entry.id);
    renderHistory();
  },
  onLoadVideo: (entry) => loadVideoLater(entry),
  onCheckVideo: (entry) => collectVideo(entry),
};

/** Make the gallery match `entries`, reusing the cards that exist. */
function renderHistory() {
  const cards = new Map([...ui.gallery.children].map((card) => [card.dataset.id, card]));
  ui.gallery.replaceChildren(
    ...entries.map((e) => {
      const card = cards.get(e.id);
      if (!card) return renderEntry(e, actions);
      card.classList.remove("fresh");
      return card;
    }),
  );
  ui.empty.hidden = entries.length > 0;
  ui.count.textContent = entries.length ? t("history.count", { count: entries.length }) : "";
  ui.storageNote.textContent = t(history && !history.persistent ? "history.unavailable" : "history.linkNote");
}

function translateHistory() {
  for (const card of ui.gallery.children) {
    const entry = entries.find((e) => e.id === card.dataset.id);
    if (entry) translateEntry(card, entry, actions);
  }
  renderHistory();
}

function redraw(entry) {
  const card = ui.gallery.querySelector(`[data-id="${entry.id}"]`);
  if (card) updateEntry(card, entry, actions);
}

const keep = (entry) => history.put(entry).catch(() => {});

async function loadHistory() {
  history = await openHistory();
  entries = await history.list().catch(() => []);
  const resume = [];
  for (const entry of entries.filter((e) => e.state === "running")) {
    if (entry.kind === "video" && entry.videoId) {
      resume.push(entry); // a video job goes on at the server: collect it
    } else {
      entry.state = "interrupted"; // the page was closed mid-generation
      keep(entry);
    }
  }
  renderHistory();
  for (const entry of resume) collectVideo(entry);
}

// ---------------------------------------------------------------- a generation

function setBusy(busy) {
  ui.generate.disabled = busy;
  ui.generate.textContent = t(busy ? "action.generating" : mode === "video" ? "action.generateVideo" : "action.generate");
  ui.cancel.hidden = !busy;
  ui.confirm.hidden = true;
  ui.form.setAttribute("aria-busy", String(busy));
}

/** One column (a phone): the form fills the screen, so bring the result to the top. */
function revealResult() {
  if (!matchMedia("(max-width: 60rem)").matches) return; // side by side already
  const top = ui.output.getBoundingClientRect().top;
  if (top > 40 || top < 0) {
    const smooth = !matchMedia("(prefers-reduced-motion: reduce)").matches;
    ui.output.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
  }
}

async function start() {
  if (running || starting) return;
  showError(null);
  starting = true;
  const kind = mode;
  try {
    await (kind === "video" ? settleFrames() : settleReferences());
  } finally {
    starting = false;
  }
  let job;
  let conn;
  try {
    job = kind === "video" ? readVideoJob() : readJob();
    conn = connection();
  } catch (err) {
    showError(err);
    return;
  }
  if (kind === "video") saveVideoPrefs();
  else savePrefs();
  const entry = newEntry(job);
  entries.unshift(entry);
  renderHistory();
  keep(entry);
  running = { entry, controller: new AbortController(), started: performance.now(), progress: "" };
  setBusy(true);
  setStatus(() => t("status.connecting"), "busy");
  revealResult();
  ticker = setInterval(() => setStatus(busyStatus, "busy"), 1000);
  const { signal } = running.controller;
  try {
    if (kind === "video") {
      await runVideo(conn, entry, signal);
      finish(entry, "done");
    } else {
      finish(entry, "done", { urls: await runImages(conn, job, entry, signal) });
    }
  } catch (err) {
    if (signal.aborted) finish(entry, "cancelled");
    else finish(entry, "error", { error: err });
  }
}

async function runImages(conn, job, entry, signal) {
  const onUpdate = ({ urls, progress }) => {
    const grew = urls.length > entry.urls.length;
    entry.urls = urls;
    running.progress = progress;
    setStatus(busyStatus, "busy");
    if (grew) {
      redraw(entry);
      keep(entry);
    }
  };
  if (!job.references.length) {
    return job.stream ? streamImages(conn, job, signal, onUpdate) : generateImages(conn, job, signal);
  }
  if (!job.stream) return editImages(conn, job, signal);
  const { urls, taskId } = await streamEdits(conn, job, signal, onUpdate);
  // the events carried the bytes; the history keeps the images' URLs instead
  if (taskId) {
    try {
      const links = await taskImageUrls(conn, taskId, signal);
      if (links && links.length === urls.length) return links;
    } catch (err) {
      if (signal.aborted) throw err;
    }
  }
  return urls;
}

/** An error as plain data (IndexedDB keeps it; describeError reads it). */
function storableError(err) {
  if (err instanceof ApiError) return { ...err, message: err.serverMessage };
  return { kind: "http", status: null, message: String((err && err.message) || err) };
}

function finish(entry, state, { urls = entry.urls, error = null } = {}) {
  clearInterval(ticker);
  const took = seconds(running.started);
  Object.assign(entry, { state, urls, seconds: Number(took) });
  entry.error = error ? storableError(error) : null;
  running = null;
  setBusy(false);
  if (state === "done" && entry.kind === "video") setStatus(() => t("status.videoDone", { duration: entry.duration, seconds: took }), "done");
  else if (state === "done") setStatus(() => t("status.done", { count: urls.length, seconds: took }), "done");
  if (state === "cancelled") setStatus(() => t("status.cancelled", { seconds: took }), "cancelled");
  if (state === "error") {
    setStatus(() => t("status.failed", { seconds: took }), "error");
    showError(error);
  }
  redraw(entry);
  keep(entry);
}

// ---------------------------------------------------------------- video

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new DOMException("aborted", "AbortError"));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });
}

/** Poll often at first (short simulated or draft videos), then less (real ones take minutes). */
const pollDelay = (ms) => (ms < 15_000 ? 1000 : ms < 60_000 ? 2000 : 5000);

function videoFailure(video) {
  const err = video.error && typeof video.error === "object" ? video.error : {};
  return new ApiError("video", { code: err.code ?? null, type: err.type ?? null, param: err.param ?? null, message: typeof err.message === "string" ? err.message : "" });
}

/** Follow the video job until it is completed (throws when it failed), then load the file. */
async function followVideo(conn, entry, video, signal, onChange) {
  const started = performance.now();
  for (;;) {
    let position = null;
    if (video.status === "queued") {
      try {
        const task = await getTask(conn, entry.videoId, signal, "video");
        position = (task && task.progress && task.progress.queue_position) || null;
      } catch (err) {
        if (signal.aborted) throw err;
      }
    }
    entry.video = { status: video.status, progress: video.progress, position };
    onChange();
    if (video.status === "completed") break;
    if (video.status === "failed") throw videoFailure(video);
    await sleep(pollDelay(performance.now() - started), signal);
    video = await getVideo(conn, entry.videoId, signal);
  }
  setVideoView(entry.id, { loading: true });
  onChange();
  try {
    const blob = await videoContent(conn, entry.videoId, signal);
    setVideoView(entry.id, { url: URL.createObjectURL(blob) });
  } catch (err) {
    setVideoView(entry.id, null);
    throw err;
  }
}

async function runVideo(conn, entry, signal) {
  const [first, last] = entry.frames || [];
  const body = { model: entry.model, prompt: entry.prompt, seconds: String(entry.duration), size: entry.size };
  if (first) body.input_reference = await dataUri(first.blob);
  if (last) body.last_frame = await dataUri(last.blob);
  const video = await createVideo(conn, body, signal);
  entry.videoId = video.id;
  keep(entry);
  await followVideo(conn, entry, video, signal, () => {
    setStatus(busyStatus, "busy");
    redraw(entry);
  });
}

/** Collect a video in the background (after a reload, or "Check progress" after a cancel). */
async function collectVideo(entry) {
  if (background.has(entry.id) || !entry.videoId) return;
  const controller = new AbortController();
  background.set(entry.id, controller);
  const before = entry.state;
  entry.state = "running";
  entry.error = null;
  redraw(entry);
  try {
    const conn = connection();
    const video = await getVideo(conn, entry.videoId, controller.signal);
    await followVideo(conn, entry, video, controller.signal, () => redraw(entry));
    entry.state = "done";
  } catch (err) {
    if (controller.signal.aborted) return;
    const retry = before === "running" ? "interrupted" : before; // offline: try again later
    entry.state = err instanceof ApiError && err.kind === "network" ? retry : "error";
    entry.error = storableError(err);
  } finally {
    background.delete(entry.id);
  }
  redraw(entry);
  keep(entry);
}

/** "Play video" on a finished entry of an earlier visit: fetch its file again. */
async function loadVideoLater(entry) {
  const view = videoView(entry.id);
  if (view && (view.loading || view.url)) return;
  setVideoView(entry.id, { loading: true });
  redraw(entry);
  try {
    const blob = await videoContent(connection(), entry.videoId, new AbortController().signal);
    setVideoView(entry.id, { url: URL.createObjectURL(blob) });
  } catch (err) {
    const gone = err instanceof ApiError && err.key === "error.videoGone";
    setVideoView(entry.id, gone ? { expired: true } : null);
    if (!gone) showError(err);
  }
  redraw(entry);
}

// ---------------------------------------------------------------- wiring

async function loadModels() {
  let list;
  try {
    list = await listModels(connection());
  } catch {
    return; /* keep the built-in list */
  }
  setModels(list);
  ui.tabVideo.hidden = setVideoModels(list) === 0;
  setMode(ui.tabVideo.hidden ? "image" : load(MODE_KEY) || mode);
}

function explainCancel() {
  const video = running && running.entry.kind === "video";
  ui.confirmText.textContent = t(video ? "cancel.explainVideo" : "cancel.explain");
}

function wire() {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  ui.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) ui.form.requestSubmit();
  });
  for (const tab of ui.tabs) {
    tab.addEventListener("click", () => setMode(tab.dataset.mode, { remember: true }));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      const other = ui.tabs.find((x) => x !== tab && !x.hidden);
      if (!other) return;
      setMode(other.dataset.mode, { remember: true });
      other.focus();
    });
  }
  ui.cancel.addEventListener("click", () => {
    explainCancel();
    ui.confirm.hidden = false;
    ui.confirmNo.focus();
  });
  ui.confirmNo.addEventListener("click", () => (ui.confirm.hidden = true));
  ui.confirmYes.addEventListener("click", () => running && running.controller.abort());
  for (const el of document.querySelectorAll("[data-lang]")) {
    el.addEventListener("click", () => setLanguage(el.dataset.lang, { remember: true }));
  }
  onLanguageChange(() => {
    for (const el of document.querySelectorAll("[data-lang]")) el.setAttribute("aria-pressed", String(el.dataset.lang === language()));
    ui.generate.textContent = t(running ? "action.generating" : mode === "video" ? "action.generateVideo" : "action.generate");
    setStatus(status.render, status.state);
    showError(lastError);
    explainCancel();
    translateForm();
    translateVideoForm();
    translateConnection();
    translateHistory();
    refreshLightbox();
  });
}

initForm();
initVideoForm();
initLightbox();
initConnection({ onBaseChange: loadModels });
wire();
setLanguage(detectLanguage());
await Promise.all([loadHistory(), loadModels()]);
document.documentElement.dataset.ready = "true";
