// What each model allows, from GET /v1/models. The server's own fields win
// (max_n, resolutions, ratios, default_resolution, max_references /
// image_to_image; for video models, kind: "video" or video: true, seconds,
// default_seconds, resolutions, ratios, frames, needs_browser_tokens); without
// them the README's rules apply: 4.x and newer take 1-8 images, 4k and 1-10
// reference images, 3.0/3.1 1-4 images, 2k and one reference, older models
// 1-4 images, 2k and no reference. So the form never offers what the server refuses.

export const RATIOS = ["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9"];
export const RESOLUTIONS = ["1k", "2k", "4k"];
export const PREFERRED_MODEL = "jimeng-4.0";
export const MAX_REFERENCES = 10; // the API's limit per request

export const VIDEO_RATIOS = ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"];
const VIDEO_RESOLUTION = /^\d{3,4}p$/; // 480p 720p 768p 1080p ...
// OpenAI's durations: the server maps them to the nearest one a model makes
const FALLBACK_SECONDS = [4, 8, 12];

// used until (or if never) GET /v1/models answers
export const FALLBACK_MODELS = [
  "jimeng-5.0", "jimeng-4.7", "jimeng-4.6", "jimeng-4.5", "jimeng-4.1", "jimeng-4.0",
  "jimeng-3.1", "jimeng-3.0", "jimeng-2.1", "jimeng-2.0-pro", "jimeng-2.0", "jimeng-1.4", "jimeng-xl-pro",
].map((id) => ({ id }));

function major(id) {
  const match = /^jimeng-(?:image-)?(\d+)\.(\d+)/.exec(id);
  return match ? [Number(match[1]), Number(match[2])] : null;
}

function isModern(id) {
  const version = major(id);
  return Boolean(version) && version[0] >= 4;
}

function positiveInt(value) {
  return Number.isInteger(value) && value > 0 ? value : null;
}

function wholeNumber(value) {
  return Number.isInteger(value) && value >= 0 ? value : null;
}

/** The known values of `list` in `allowed`'s order, or null if there are none. */
function knownValues(list, allowed) {
  if (!Array.isArray(list)) return null;
  const wanted = new Set(list.map((v) => String(v).toLowerCase()));
  const values = allowed.filter((v) => wanted.has(v));
  return values.length ? values : null;
}

/** How many reference images the model blends: the server's word, else the rules. */
function referenceLimit(model) {
  const told = wholeNumber(model.max_references);
  if (told !== null) return Math.min(told, MAX_REFERENCES);
  if (model.image_to_image === false) return 0;
  const version = major(model.id);
  const byRule = !version ? 0 : version[0] >= 4 ? MAX_REFERENCES : version[0] === 3 ? 1 : 0;
  if (model.image_to_image === true) return byRule || MAX_REFERENCES;
  return byRule;
}

export const isVideo = (model) => model.video === true || model.kind === "video";

export function capabilities(model) {
  const modern = isModern(model.id);
  const resolutions = knownValues(model.resolutions, RESOLUTIONS) || (modern ? RESOLUTIONS : ["1k", "2k"]);
  const fallbackResolution = modern ? "2k" : "1k";
  const wantedDefault = String(model.default_resolution || fallbackResolution).toLowerCase();
  const maxReferences = referenceLimit(model);
  return {
    id: model.id,
    maxN: positiveInt(model.max_n) || (modern ? 8 : 4),
    resolutions,
    defaultResolution: resolutions.includes(wantedDefault) ? wantedDefault : resolutions[0],
    ratios: knownValues(model.ratios, RATIOS) || RATIOS,
    maxReferences,
    imageToImage: maxReferences > 0,
    video: isVideo(model),
  };
}

/** The models for text-to-image, with their capabilities (video-only ones left out). */
export function imageModels(models) {
  const all = models.map(capabilities);
  const images = all.filter((m) => !m.video);
  return images.length ? images : all;
}

export function videoCapabilities(model) {
  const seconds = Array.isArray(model.seconds) ? model.seconds.filter((s) => positiveInt(s)) : [];
  const list = seconds.length ? [...new Set(seconds)].sort((a, b) => a - b) : FALLBACK_SECONDS;
  const told = Array.isArray(model.resolutions) ? model.resolutions.map((r) => String(r).toLowerCase()).filter((r) => VIDEO_RESOLUTION.test(r)) : [];
  const resolutions = told.length ? [...new Set(told)].sort((a, b) => parseInt(a, 10) - parseInt(b, 10)) : ["720p"];
  const wantedResolution = String(model.default_resolution || "").toLowerCase();
  return {
    id: model.id,
    seconds: list,
    defaultSeconds: list.includes(model.default_seconds) ? model.default_seconds : list[0],
    resolutions,
    defaultResolution: resolutions.includes(wantedResolution) ? wantedResolution : resolutions[resolutions.length > 1 ? 1 : 0],
    ratios: knownValues(model.ratios, VIDEO_RATIOS) || ["16:9", "9:16", "1:1"],
    frames: Math.min(wholeNumber(model.frames) ?? 1, 2), // first frame, and last frame
  };
}

/**
 * The video models the page can use: kind "video", minus the ones that need the
 * browser's anti-bot tokens (the server refuses them with 403 browser_tokens_required).
 */
export function videoModels(models) {
  return models.filter((m) => isVideo(m) && m.needs_browser_tokens !== true).map(videoCapabilities);
}

/** OpenAI's `size` of a ratio at a resolution: the short side is the resolution, even sides. */
export function videoSize(ratio, resolution) {
  const short = Number.parseInt(resolution, 10);
  const [a, b] = ratio.split(":").map(Number);
  const long = 2 * Math.round((short * Math.max(a, b)) / Math.min(a, b) / 2);
  return a >= b ? `${long}x${short}` : `${short}x${long}`;
}
