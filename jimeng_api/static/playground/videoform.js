// The video form: model, duration, ratio, resolution and the optional first and
// last frame follow the chosen video model of GET /v1/models (kind "video");
// the settings (not the frames) are remembered between visits.

import { localError } from "./api.js";
import { chip, fillChips } from "./form.js";
import { t } from "./i18n.js";
import { videoModels, videoSize } from "./models.js";
import { createPicker } from "./refs.js";
import { loadJSON, save } from "./storage.js";

const PREFS_KEY = "jimeng-playground.video-prefs";
const $ = (id) => document.getElementById(id);
const ui = {
  model: $("video-model"),
  caps: $("video-caps"),
  seconds: $("seconds-options"),
  ratios: $("video-ratio-options"),
  resolutions: $("video-resolution-options"),
  prompt: $("prompt"),
  frames: $("frames"),
  framesTitle: $("frames-title"),
  framesHint: $("frames-hint"),
};

let models = [];
let frames = null;

const checked = (name) => {
  const input = document.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
};

function current() {
  return models.find((m) => m.id === ui.model.value) || models[0];
}

function frameLabel(index) {
  return t(index === 0 ? "frames.first" : "frames.last");
}

function applyCapabilities(wanted = {}) {
  const caps = current();
  if (!caps) return;
  const seconds = String(wanted.seconds ?? checked("seconds") ?? caps.defaultSeconds);
  const ratio = wanted.ratio ?? checked("video-ratio");
  const resolution = wanted.resolution ?? checked("video-resolution");
  const secondsList = caps.seconds.map(String);
  ui.seconds.replaceChildren(
    ...secondsList.map((v) => chip("seconds", v, t("video.secondsChip", { seconds: v }), v === (secondsList.includes(seconds) ? seconds : String(caps.defaultSeconds)))),
  );
  fillChips(ui.ratios, "video-ratio", caps.ratios, ratio, caps.ratios[0]);
  fillChips(ui.resolutions, "video-resolution", caps.resolutions, resolution, caps.defaultResolution, (v) => v.toUpperCase());
  ui.frames.hidden = caps.frames === 0;
  if (frames) frames.setMax(Math.max(caps.frames, 1));
  translateVideoForm();
}

export function translateVideoForm() {
  const caps = current();
  if (!caps) return;
  const first = caps.seconds[0];
  const last = caps.seconds[caps.seconds.length - 1];
  const span = caps.seconds.length > 2 && last - first === caps.seconds.length - 1 ? `${first}–${last}` : caps.seconds.join(" / ");
  const maxResolution = caps.resolutions[caps.resolutions.length - 1].toUpperCase();
  ui.caps.textContent = t("video.caps", { seconds: span, maxResolution });
  for (const label of ui.seconds.querySelectorAll(".chip")) {
    label.querySelector("span").textContent = t("video.secondsChip", { seconds: label.querySelector("input").value });
  }
  const two = caps.frames >= 2;
  ui.framesTitle.textContent = t(two ? "frames.label" : "frames.labelOne");
  ui.framesHint.textContent = t(two ? "frames.hint" : "frames.hintOne");
  if (frames) frames.translate();
}

/** Use the video models of GET /v1/models (raw objects); returns how many there are. */
export function setVideoModels(list) {
  const prefs = loadJSON(PREFS_KEY);
  const now = currentChoice();
  const wanted = {
    model: ui.model.value || prefs.model,
    seconds: now.seconds ?? prefs.seconds,
    ratio: now.ratio ?? prefs.ratio,
    resolution: now.resolution ?? prefs.resolution,
  };
  models = videoModels(list);
  const ids = models.map((m) => m.id);
  ui.model.replaceChildren(...ids.map((id) => Object.assign(document.createElement("option"), { value: id, textContent: id })));
  if (ids.length) {
    ui.model.value = ids.includes(wanted.model) ? wanted.model : ids[0];
    applyCapabilities(wanted);
  }
  return ids.length;
}

function currentChoice() {
  return { seconds: checked("seconds"), ratio: checked("video-ratio"), resolution: checked("video-resolution") };
}

/** Wait until the frames picked so far are ready to send. */
export function settleFrames() {
  return frames ? frames.settled() : Promise.resolve();
}

export function readVideoJob() {
  const prompt = ui.prompt.value.trim();
  if (!prompt) throw localError("error.prompt");
  const caps = current();
  const ratio = checked("video-ratio") || caps.ratios[0];
  const resolution = checked("video-resolution") || caps.defaultResolution;
  return {
    kind: "video",
    model: caps.id,
    prompt,
    duration: Number(checked("seconds") || caps.defaultSeconds),
    ratio,
    resolution,
    size: videoSize(ratio, resolution),
    frames: caps.frames && frames ? frames.sendable() : [],
    n: 1,
  };
}

/** Put a video job's settings back in the form (re-run, or the remembered settings). */
export function applyVideoJob(job) {
  if (job.model && [...ui.model.options].some((o) => o.value === job.model)) ui.model.value = job.model;
  applyCapabilities(job);
  if (typeof job.prompt === "string") ui.prompt.value = job.prompt;
  if (frames && Array.isArray(job.frames)) frames.set(job.frames);
}

export function saveVideoPrefs() {
  if (!models.length) return;
  save(PREFS_KEY, JSON.stringify({ model: ui.model.value, ...currentChoice() }));
}

export function initVideoForm() {
  frames = createPicker(ui.frames, { label: frameLabel, removeLabel: "frames.remove" });
  ui.model.addEventListener("change", () => {
    applyCapabilities();
    saveVideoPrefs();
  });
  for (const el of [ui.seconds, ui.ratios, ui.resolutions]) el.addEventListener("change", saveVideoPrefs);
}
