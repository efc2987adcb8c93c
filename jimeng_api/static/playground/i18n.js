// One language at a time: Chinese or English, the browser's choice until the
// user picks one with the switch (remembered in localStorage).

import { MESSAGES } from "./messages.js";
import { load, save } from "./storage.js";

export const LANGUAGES = ["zh", "en"];
const STORE_KEY = "jimeng-playground.lang";
const HTML_LANG = { zh: "zh-CN", en: "en" };

let current = "en";
const listeners = [];

/** The stored choice, else the first browser language we speak, else English. */
export function detectLanguage() {
  const stored = load(STORE_KEY);
  if (LANGUAGES.includes(stored)) return stored;
  const tags = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const tag of tags) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return "en";
}

export function language() {
  return current;
}

/** The text for `key` in the current language, with {name} placeholders filled in. */
export function t(key, vars = {}) {
  const text = MESSAGES[current][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Translate the static page: data-i18n (text) and data-i18n-<attribute>. */
export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const attribute of ["placeholder", "title", "aria-label"]) {
    const data = `data-i18n-${attribute}`;
    for (const el of root.querySelectorAll(`[${data}]`)) el.setAttribute(attribute, t(el.getAttribute(data)));
  }
  document.title = t("page.title");
  document.documentElement.lang = HTML_LANG[current];
}

export function setLanguage(lang, { remember = false } = {}) {
  if (!LANGUAGES.includes(lang)) return;
  current = lang;
  if (remember) save(STORE_KEY, lang);
  translatePage();
  for (const listener of listeners) listener(lang);
}

/** Call `listener(lang)` after every switch (to redraw what scripts wrote). */
export function onLanguageChange(listener) {
  listeners.push(listener);
}
