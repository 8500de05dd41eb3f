// The policy's reasons and legal citations in the user's language. The policies are written in
// English; their Finnish and Swedish are kept in web/i18n/policy-texts.json, keyed by the English
// text exactly as the server sends it, so a changed rule is never shown with an outdated
// translation: a text without one is shown as it is, marked as English.

import { language } from "./i18n.js";

const CONSENT_NEEDED = " Needs a valid consent that covers it: ";
let texts = null;

/** Loads the translations once (the views call it before rendering policy texts). */
export async function loadPolicyTexts() {
  if (texts) return;
  try {
    const response = await fetch("/static/i18n/policy-texts.json", { credentials: "omit" });
    texts = response.ok ? (await response.json()).texts || {} : {};
  } catch {
    texts = {};
  }
}

function one(text, lang) {
  if (lang === "en") return text;
  const entry = texts && texts[text];
  return entry && entry[lang] ? entry[lang] : null;
}

/** ``{ text, lang }``: ``text`` in the UI language if it has a translation, else as sent (lang "en"). */
export function policyText(text) {
  const lang = language();
  if (!text) return { text: "", lang };
  const whole = one(text, lang);
  if (whole !== null) return { text: whole, lang };
  // A reason the engine extended with why a consent did not cover the item.
  const at = text.indexOf(CONSENT_NEEDED);
  if (at > 0 && text.endsWith(".")) {
    const rule = one(text.slice(0, at), lang);
    const failure = one(text.slice(at + CONSENT_NEEDED.length, -1), lang);
    const frame = one("Needs a valid consent that covers it: {failure}.", lang);
    if (rule !== null && failure !== null && frame !== null) {
      return { text: `${rule} ${frame.replace("{failure}", failure)}`, lang };
    }
  }
  return { text, lang: "en" };
}
