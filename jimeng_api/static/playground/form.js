// The image form: model, ratio, resolution, count and reference images follow
// the chosen model's capabilities; the settings (not the images) are remembered
// between visits.

import { t } from "./i18n.js";
import { localError } from "./api.js";
import { FALLBACK_MODELS, PREFERRED_MODEL, RATIOS, imageModels } from "./models.js";
import { createPicker } from "./refs.js";
import { loadJSON, save } from "./storage.js";

const PREFS_KEY = "jimeng-playground.prefs";
const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"),
  caps: $("model-caps"),
  ratios: $("ratio-options"),
  resolutions: $("resolution-options"),
  counts: $("n-options"),
  prompt: $("prompt"),
  negativePrompt: $("negative-prompt"),
  stream: $("stream"),
  references: $("references"),
  referencesCount: $("references-count"),
  referencesHint: $("references-hint"),
  unsupported: $("references-unsupported"),
};
let references = null; // the picker, made in initForm()

let models = imageModels(FALLBACK_MODELS);

const checked = (name) => {
  const input = document.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
};

export function chip(name, value, label, selected) {
  const wrapper = document.createElement("label");
  wrapper.className = "chip";
  const input = Object.assign(document.createElement("input"), { type: "radio", name, value, checked: selected });
  const text = document.createElement("span");
  text.textContent = label;
  if (name.endsWith("ratio")) {
    const glyph = document.createElement("i");
    glyph.className = "ratio-glyph";
    glyph.style.aspectRatio = value.replace(":", " / ");
    text.prepend(glyph);
  }
  wrapper.append(input, text);
  return wrapper;
}

export function fillChips(container, name, values, wanted, fallback, label = (v) => v) {
  const value = values.includes(wanted) ? wanted : fallback;
  container.replaceChildren(...values.map((v) => chip(name, v, label(v), v === value)));
}

function current() {
  return models.find((m) => m.id === ui.model.value) || models[0];
}

/** Redraw ratio/resolution/count for the selected model, keeping what still fits. */
function applyCapabilities(wanted = {}) {
  const caps = current();
  const ratio = wanted.ratio ?? checked("ratio");
  const resolution = wanted.resolution ?? checked("resolution");
  const n = String(Math.min(Number(wanted.n ?? checked("n") ?? 4), caps.maxN));
  fillChips(ui.ratios, "ratio", caps.ratios, ratio, caps.ratios.includes("1:1") ? "1:1" : caps.ratios[0]);
  fillChips(ui.resolutions, "resolution", caps.resolutions, resolution, caps.defaultResolution, (v) => v.toUpperCase());
  const counts = Array.from({ length: caps.maxN }, (_, i) => String(i + 1));
  fillChips(ui.counts, "n", counts, n, String(Math.min(4, caps.maxN)));
  if (references) references.setMax(caps.maxReferences);
  translateForm();
}

/** The reference section: shown for models with image to image, else a note if images were added. */
function showReferences() {
  const caps = current();
  const count = references ? references.count() : 0;
  ui.references.hidden = caps.maxReferences === 0;
  ui.referencesCount.textContent = caps.maxReferences && count ? t("refs.count", { count: Math.min(count, caps.maxReferences), max: caps.maxReferences }) : "";
  ui.referencesHint.textContent = caps.maxReferences === 1 ? t("refs.hintOne") : t("refs.hint", { max: caps.maxReferences });
  ui.unsupported.hidden = !(caps.maxReferences === 0 && count > 0);
  ui.unsupported.textContent = ui.unsupported.hidden ? "" : t("refs.unsupported", { model: caps.id, count });
}

export function translateForm() {
  const caps = current();
  if (!caps) return;
  const maxResolution = caps.resolutions[caps.resolutions.length - 1].toUpperCase();
  const refs = caps.maxReferences ? t("model.capsRefs", { max: caps.maxReferences }) : t("model.capsNoRefs");
  ui.caps.textContent = `${t("model.caps", { maxN: caps.maxN, maxResolution })} · ${refs}`;
  if (references) references.translate();
  showReferences();
}

/** Use the models of GET /v1/models (raw objects). */
export function setModels(list) {
  const wanted = { model: ui.model.value || loadJSON(PREFS_KEY).model, ratio: checked("ratio"), resolution: checked("resolution"), n: checked("n") };
  models = imageModels(list.length ? list : FALLBACK_MODELS);
  const ids = models.map((m) => m.id);
  ui.model.replaceChildren(...ids.map((id) => Object.assign(document.createElement("option"), { value: id, textContent: id })));
  ui.model.value = [wanted.model, PREFERRED_MODEL].find((id) => id && ids.includes(id)) || ids[0];
  applyCapabilities(wanted);
}

/** Wait until the reference images picked so far are ready to send. */
export function settleReferences() {
  return references ? references.settled() : Promise.resolve();
}

export function readJob() {
  const prompt = ui.prompt.value.trim();
  if (!prompt) throw localError("error.prompt");
  const caps = current();
  return {
    kind: "image",
    model: ui.model.value,
    ratio: checked("ratio") || RATIOS[0],
    resolution: checked("resolution") || current().defaultResolution,
    n: Number(checked("n") || 1),
    prompt,
    negativePrompt: ui.negativePrompt.value.trim(),
    stream: ui.stream.checked,
    references: caps.maxReferences && references ? references.sendable() : [],
  };
}

/** Put a job's settings back in the form (re-run, or the remembered settings). */
export function applyJob(job) {
  if (job.model && [...ui.model.options].some((o) => o.value === job.model)) ui.model.value = job.model;
  applyCapabilities(job);
  if (typeof job.prompt === "string") ui.prompt.value = job.prompt;
  if (typeof job.negativePrompt === "string") ui.negativePrompt.value = job.negativePrompt;
  if (typeof job.stream === "boolean") ui.stream.checked = job.stream;
  if (Array.isArray(job.references) && references) {
    references.set(job.references);
    showReferences();
  }
}

export function savePrefs() {
  const prefs = { model: ui.model.value, ratio: checked("ratio"), resolution: checked("resolution"), n: checked("n") };
  save(PREFS_KEY, JSON.stringify({ ...prefs, negativePrompt: ui.negativePrompt.value, stream: ui.stream.checked }));
}

export function initForm() {
  references = createPicker(ui.references, { onChange: showReferences });
  setModels(FALLBACK_MODELS);
  applyJob(loadJSON(PREFS_KEY));
  ui.model.addEventListener("change", () => {
    applyCapabilities();
    savePrefs();
  });
  for (const el of [ui.ratios, ui.resolutions, ui.counts, ui.negativePrompt, ui.stream]) el.addEventListener("change", savePrefs);
}
