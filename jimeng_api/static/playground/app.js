// jimeng-api playground: plain ES modules, no framework, no build step.
// This module runs a generation and keeps the status line and the history.

import { ApiError, generateImages, listModels, streamImages } from "./api.js";
import { connection, initConnection, translateConnection } from "./connection.js";
import { describeError } from "./errors.js";
import { applyJob, initForm, readJob, savePrefs, setModels, translateForm } from "./form.js";
import { renderEntry, translateEntry, updateEntry } from "./gallery.js";
import { newEntry, openHistory } from "./history.js";
import { detectLanguage, language, onLanguageChange, setLanguage, t } from "./i18n.js";
import { initLightbox, openLightbox, refreshLightbox } from "./lightbox.js";

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("form"),
  prompt: $("prompt"),
  generate: $("generate"),
  cancel: $("cancel"),
  confirm: $("cancel-confirm"),
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
let running = null; // {entry, controller, started, progress}
let status = { render: () => t("status.ready"), state: "idle" };
let lastError = null;
let ticker = null;

// ---------------------------------------------------------------- status and errors

function setStatus(render, state) {
  status = { render, state };
  ui.status.textContent = render();
  ui.status.dataset.state = state;
}

const seconds = (started) => ((performance.now() - started) / 1000).toFixed(1);

/** The server's progress line: its default message localized, anything else (say, a queue position) as sent. */
function progressText(text) {
  if (!text) return "";
  return /生成中|generating/i.test(text) ? t("progress.generating") : text;
}

function busyStatus() {
  const { entry, started, progress } = running;
  const parts = [t("status.generating")];
  if (progressText(progress)) parts.push(progressText(progress));
  if (entry.urls.length) parts.push(t("status.received", { count: entry.urls.length, total: entry.n }));
  parts.push(t("status.elapsed", { seconds: Math.floor((performance.now() - started) / 1000) }));
  return parts.join(" · ");
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

// ---------------------------------------------------------------- history

const actions = {
  onOpen: (entry, index) => openLightbox(entry, index),
  onRerun: (entry) => {
    applyJob(entry);
    savePrefs();
    start();
  },
  onDelete: async (entry) => {
    entries = entries.filter((e) => e.id !== entry.id);
    await history.remove(entry.id);
    renderHistory();
  },
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
    if (entry) translateEntry(card, entry);
  }
  renderHistory();
}

function redraw(entry) {
  const card = ui.gallery.querySelector(`[data-id="${entry.id}"]`);
  if (card) updateEntry(card, entry, actions);
}

async function loadHistory() {
  history = await openHistory();
  entries = await history.list().catch(() => []);
  for (const entry of entries.filter((e) => e.state === "running")) {
    entry.state = "interrupted"; // the page was closed mid-generation
    history.put(entry).catch(() => {});
  }
  renderHistory();
}

// ---------------------------------------------------------------- a generation

function setBusy(busy) {
  ui.generate.disabled = busy;
  ui.generate.textContent = t(busy ? "action.generating" : "action.generate");
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
  if (running) return;
  showError(null);
  let job;
  let conn;
  try {
    job = readJob();
    conn = connection();
  } catch (err) {
    showError(err);
    return;
  }
  savePrefs();
  const entry = newEntry(job);
  entries.unshift(entry);
  renderHistory();
  history.put(entry).catch(() => {});
  running = { entry, controller: new AbortController(), started: performance.now(), progress: "" };
  setBusy(true);
  setStatus(() => t("status.connecting"), "busy");
  revealResult();
  ticker = setInterval(() => setStatus(busyStatus, "busy"), 1000);

  const onUpdate = ({ urls, progress }) => {
    const grew = urls.length > entry.urls.length;
    entry.urls = urls;
    running.progress = progress;
    setStatus(busyStatus, "busy");
    if (grew) {
      redraw(entry);
      history.put(entry).catch(() => {});
    }
  };
  const { signal } = running.controller;
  try {
    const urls = job.stream ? await streamImages(conn, job, signal, onUpdate) : await generateImages(conn, job, signal);
    finish(entry, "done", { urls });
  } catch (err) {
    if (signal.aborted) finish(entry, "cancelled");
    else finish(entry, "error", { error: err });
  }
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
  if (state === "done") setStatus(() => t("status.done", { count: urls.length, seconds: took }), "done");
  if (state === "cancelled") setStatus(() => t("status.cancelled", { seconds: took }), "cancelled");
  if (state === "error") {
    setStatus(() => t("status.failed", { seconds: took }), "error");
    showError(error);
  }
  redraw(entry);
  history.put(entry).catch(() => {});
}

// ---------------------------------------------------------------- wiring

async function loadModels() {
  try {
    setModels(await listModels(connection()));
  } catch {
    /* keep the built-in list */
  }
}

function wire() {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  ui.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) ui.form.requestSubmit();
  });
  ui.cancel.addEventListener("click", () => {
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
    ui.generate.textContent = t(running ? "action.generating" : "action.generate");
    setStatus(status.render, status.state);
    showError(lastError);
    translateForm();
    translateConnection();
    translateHistory();
    refreshLightbox();
  });
}

initForm();
initLightbox();
initConnection({ onBaseChange: loadModels });
wire();
setLanguage(detectLanguage());
await Promise.all([loadHistory(), loadModels()]);
document.documentElement.dataset.ready = "true";
