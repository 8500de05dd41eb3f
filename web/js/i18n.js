// Finnish first, Swedish and English complete. Only the language choice is stored.

export const LANGUAGES = ["fi", "sv", "en"];
const LOCALES = { fi: "fi-FI", sv: "sv-FI", en: "en-GB" };
const STORE = "konsulta.lang";
const tables = {};
let current = "fi";

export function language() {
  return current;
}

export function preferredLanguage() {
  const stored = localStorage.getItem(STORE);
  if (LANGUAGES.includes(stored)) return stored;
  const browser = (navigator.language || "fi").slice(0, 2);
  return LANGUAGES.includes(browser) ? browser : "fi";
}

export async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) lang = "fi";
  if (!tables[lang]) {
    const response = await fetch(`/static/i18n/${lang}.json`, { credentials: "omit" });
    tables[lang] = await response.json();
  }
  if (!tables.fi && lang !== "fi") await setLanguageTable("fi");
  current = lang;
  document.documentElement.lang = lang;
  localStorage.setItem(STORE, lang);
}

async function setLanguageTable(lang) {
  const response = await fetch(`/static/i18n/${lang}.json`, { credentials: "omit" });
  tables[lang] = await response.json();
}

export function has(key) {
  return Boolean(tables[current] && key in tables[current]);
}

/** The names after ``prefix`` of every string key that starts with it (a vocabulary's codes). */
export function keysWith(prefix) {
  return Object.keys(tables.fi || {}).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
}

/** The text for ``key`` in the current language, with {placeholders} filled in. */
export function t(key, params = {}) {
  const text = tables[current]?.[key] ?? tables.fi?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** A vocabulary label (category, purpose, topic…); a name with no translation is shown as it is. */
export function label(prefix, name) {
  if (name === null || name === undefined || name === "") return "";
  const key = `${prefix}.${name}`;
  return has(key) ? t(key) : String(name);
}

let orgNames = {};

/** The organisations' names by language, from the service's configuration (``org_names``). */
export function setOrgNames(names) {
  orgNames = names || {};
}

/** An organisation's name in the current language (Finnish if it has none); an id the service
 * does not name is shown as it is. */
export function orgName(org) {
  if (!org) return "";
  const names = orgNames[org];
  return (names && (names[current] || names.fi)) || String(org);
}

export function locale() {
  return LOCALES[current];
}

export function formatDateTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short", timeZone: "Europe/Helsinki" })
    .format(date);
}

export function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeZone: "Europe/Helsinki" }).format(date);
}

export function formatNumber(value, options = {}) {
  if (value === null || value === undefined || value === "") return "";
  return new Intl.NumberFormat(locale(), options).format(Number(value));
}

/** A duration in seconds in the largest fitting unit (seconds, minutes, hours or days), in the
 * user's locale: 454 670 s is "5,3 päivää", not thousands of minutes. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const value = Number(seconds);
  const unit = (name, amount, digits) => new Intl.NumberFormat(locale(), { style: "unit", unit: name, unitDisplay: "long",
    maximumFractionDigits: digits }).format(amount);
  if (value < 60) return unit("second", value, 0);
  if (value < 3600) return unit("minute", Math.round(value / 60), 0);
  if (value < 48 * 3600) return unit("hour", value / 3600, 1);
  return unit("day", value / 86400, 1);
}
