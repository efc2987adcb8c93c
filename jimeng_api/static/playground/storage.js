// localStorage that never throws (private mode, storage disabled, file://).

export function load(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function save(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    /* the value is simply not remembered */
  }
}

export function loadJSON(key) {
  try {
    const value = JSON.parse(load(key) || "null");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}
