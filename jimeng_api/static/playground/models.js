// What each model allows, from GET /v1/models. The server's own fields win
// (max_n, resolutions, ratios, default_resolution, image_to_image, video or
// kind: "video"); without
// them the README's rules apply: 4.x and newer take 1-8 images and 4k, older
// models 1-4 images and up to 2k. So the form never offers what the server refuses.

export const RATIOS = ["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9"];
export const RESOLUTIONS = ["1k", "2k", "4k"];
export const PREFERRED_MODEL = "jimeng-4.0";

// used until (or if never) GET /v1/models answers
export const FALLBACK_MODELS = [
  "jimeng-5.0", "jimeng-4.7", "jimeng-4.6", "jimeng-4.5", "jimeng-4.1", "jimeng-4.0",
  "jimeng-3.1", "jimeng-3.0", "jimeng-2.1", "jimeng-2.0-pro", "jimeng-2.0", "jimeng-1.4", "jimeng-xl-pro",
].map((id) => ({ id }));

function isModern(id) {
  const major = /^jimeng-(?:image-)?(\d+)\./.exec(id);
  return Boolean(major) && Number(major[1]) >= 4;
}

function positiveInt(value) {
  return Number.isInteger(value) && value > 0 ? value : null;
}

/** The known values of `list` in `allowed`'s order, or null if there are none. */
function knownValues(list, allowed) {
  if (!Array.isArray(list)) return null;
  const wanted = new Set(list.map((v) => String(v).toLowerCase()));
  const values = allowed.filter((v) => wanted.has(v));
  return values.length ? values : null;
}

export function capabilities(model) {
  const modern = isModern(model.id);
  const resolutions = knownValues(model.resolutions, RESOLUTIONS) || (modern ? RESOLUTIONS : ["1k", "2k"]);
  const fallbackResolution = modern ? "2k" : "1k";
  const wantedDefault = String(model.default_resolution || fallbackResolution).toLowerCase();
  return {
    id: model.id,
    maxN: positiveInt(model.max_n) || (modern ? 8 : 4),
    resolutions,
    defaultResolution: resolutions.includes(wantedDefault) ? wantedDefault : resolutions[0],
    ratios: knownValues(model.ratios, RATIOS) || RATIOS,
    imageToImage: model.image_to_image === true,
    video: model.video === true || model.kind === "video",
  };
}

/** The models for text-to-image, with their capabilities (video-only ones left out). */
export function imageModels(models) {
  const all = models.map(capabilities);
  const images = all.filter((m) => !m.video);
  return images.length ? images : all;
}
