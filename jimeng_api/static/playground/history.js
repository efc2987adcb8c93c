// The history of generations, kept in this browser's IndexedDB (in memory only
// when IndexedDB is unavailable). An entry:
//   {id, createdAt, kind: "image" | "video" (absent: image), prompt, model,
//    ratio, resolution, n, seconds (how long it took), state: "running" | "done"
//    | "cancelled" | "error" | "interrupted", error: ApiError fields | null,
//    images: negativePrompt, stream, references: [{blob, name} | {url, name}],
//    urls: [...];
//    videos: duration, size, frames: [{blob, name}], videoId,
//    video: {status, progress, position}}
// Reference images and frames are kept as Blobs (after refs.js made them
// small), or as the URL a reference was given by, so "Run again" can send them
// again; a video's MP4 is not kept: the
// server has it (GET /v1/videos/{id}/content) for JOB_TTL.

const DB_NAME = "jimeng-playground";
const STORE = "generations";

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDatabase() {
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id" });
  return request(req);
}

function memoryStore() {
  const entries = new Map();
  return {
    persistent: false,
    list: async () => [...entries.values()].sort((a, b) => b.createdAt - a.createdAt),
    put: async (entry) => void entries.set(entry.id, structuredClone(entry)),
    remove: async (id) => void entries.delete(id),
  };
}

/** Open the history: {persistent, list(), put(entry), remove(id)}; never rejects. */
export async function openHistory() {
  let db;
  try {
    db = await openDatabase();
  } catch {
    return memoryStore();
  }
  const store = (mode) => db.transaction(STORE, mode).objectStore(STORE);
  return {
    persistent: true,
    list: async () => (await request(store("readonly").getAll())).sort((a, b) => b.createdAt - a.createdAt),
    put: (entry) => request(store("readwrite").put(entry)),
    remove: (id) => request(store("readwrite").delete(id)),
  };
}

export function newEntry(job) {
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return { id, createdAt: Date.now(), ...job, urls: [], state: "running", error: null, seconds: 0 };
}
