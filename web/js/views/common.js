// Pieces shared by the views: error messages, status badges, sub-navigation and the
// rendering of a consultation's headline.

import { api } from "../api.js";
import { h, uid } from "../dom.js";
import { label, t } from "../i18n.js";
import { session } from "../session.js";

/** A translated message for an API error; the server's own (English) detail follows it. */
export function errorText(error) {
  const status = error && error.status;
  const key = { 0: "error.network", 400: "error.400", 401: "error.401", 403: "error.403", 404: "error.404",
    409: "error.409", 413: "error.413", 415: "error.400", 422: "error.422", 429: "error.429" }[status];
  return key ? t(key) : t("error.generic");
}

export function errorBox(error) {
  // A network error is marked: it is no longer true once the live connection is back.
  const box = h("div", { class: "error", role: "alert", dataset: status0(error) ? { network: "true" } : {} },
    h("p", { text: errorText(error) }));
  if (error && error.message && error.status) box.append(h("p", { class: "detail", lang: "en", text: error.message }));
  return box;
}

function status0(error) {
  return Boolean(error) && error.status === 0;
}

/** A region where a form's outcome is shown and announced. */
export function statusArea() {
  const area = h("div", { class: "status-area", role: "status" });
  area.show = (node) => area.replaceChildren(node);
  area.clear = () => area.replaceChildren();
  return area;
}

export function badge(kind, text) {
  return h("span", { class: ["badge", `badge-${kind}`], text });
}

export function urgencyBadge(urgency) {
  return badge(urgency === "immediate" ? "urgent" : "plain", label("urgency", urgency));
}

export function statusBadge(status) {
  return badge(`status-${status}`, label("status", status));
}

/** Sub-navigation of a view (privacy officer, admin): links with aria-current on the active one. */
export function subnav(labelText, items, active) {
  return h("nav", { class: "subnav", "aria-label": labelText },
    h("ul", {}, items.map(([key, href, text]) =>
      h("li", {}, h("a", { href, text, "aria-current": key === active ? "page" : null })))));
}

export function heading(text, level = 1) {
  return h(`h${level}`, { tabindex: level === 1 ? "-1" : null, text });
}

export function loading() {
  return h("p", { class: "loading", text: t("app.loading") });
}

/** Values of any shape as short readable text (objects as key: value pairs). */
export function plain(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(plain).join(", ");
  if (typeof value === "object") {
    return Object.entries(value).filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => `${k}: ${plain(v)}`).join("; ");
  }
  return String(value);
}

/**
 * Free text that looks like a category withheld from a recipient in another organisation
 * (the server's `sensitive` passages): shown before sending, and after a refused send a
 * confirmation with a written reason, which the server records in the audit log.
 */
export function sensitiveList(flags, text) {
  // The server counts code points; a string slice counts UTF-16 units.
  const chars = Array.from(text || "");
  return h("ul", { class: "sensitive-list" }, flags.map((f) => h("li", {},
    h("strong", { text: label("category", f.category) }), ": ",
    h("q", { text: chars.slice(f.start, f.end).join("") }))));
}

/** Whether an API error is a send refused for flagged text (409 `sensitive_text`). */
export function isSensitiveRefusal(error) {
  return Boolean(error && error.status === 409 && error.code === "sensitive_text"
    && error.details && Array.isArray(error.details.flagged));
}

// What each form says about its flagged text (literal keys, so the key check sees them).
const WORDING = {
  message: () => ({ preview: t("sensitive.preview"), help: t("sensitive.help"), required: t("sensitive.reason.required") }),
  note: () => ({ preview: t("sensitive.preview.note"), help: t("sensitive.help.note"),
    required: t("sensitive.reason.required.note") }),
  caption: () => ({ preview: t("sensitive.preview.caption"), help: t("sensitive.help.caption"),
    required: t("sensitive.reason.required") }),
};

/**
 * The confirmation of flagged free text, for any form that sends it to another organisation:
 * hidden until the server refuses a send, then the passages, what to do and a reason field.
 * `kind` chooses the wording: "message" (a message or a question), "note" (a close note) or
 * "caption" (an attachment's covering note).
 */
export function sensitiveConfirm(kind = "message") {
  const words = WORDING[kind]();
  const reason = h("textarea", { name: "sensitive_reason", rows: "2", maxlength: "1000" });
  const reasonId = uid("sensitive-reason");
  reason.id = reasonId;
  const list = h("div");
  const error = h("p", { class: "error", id: `${reasonId}-error`, hidden: true, text: words.required });
  reason.setAttribute("aria-describedby", error.id);
  const el = h("fieldset", { class: "sensitive-confirm", hidden: true, dataset: { kind } },
    h("legend", { text: t("sensitive.title") }),
    h("p", { class: "warn", text: words.preview }), list,
    h("p", { class: "hint", text: words.help }),
    h("label", { for: reasonId, text: t("sensitive.reason") }), reason, error);
  let categories = [];
  const show = (flags, text) => {
    categories = [...new Set(flags.map((f) => f.category))];
    list.replaceChildren(sensitiveList(flags, text));
    el.hidden = false;
    reason.focus();
  };
  return {
    el,
    /** Show the flags of a refused send (error code sensitive_text) for `text`. */
    show,
    /** If `error` refused the send for flagged `text`, show the confirmation and answer true. */
    refused(error, text) {
      if (!isSensitiveRefusal(error)) return false;
      show(error.details.flagged, text);
      return true;
    },
    /** The `sensitive_confirmation` to send, or null; marks a missing reason (then undefined). */
    confirmation() {
      if (el.hidden) return null;
      const ok = reason.value.trim().length >= 10;
      error.hidden = ok;
      if (ok) reason.removeAttribute("aria-invalid");
      else reason.setAttribute("aria-invalid", "true");
      if (!ok) {
        reason.focus();
        return undefined;
      }
      return { reason: reason.value.trim(), categories };
    },
    reset() {
      el.hidden = true;
      error.hidden = true;
      reason.removeAttribute("aria-invalid");
      reason.value = "";
      categories = [];
    },
  };
}

/**
 * The mark on text that was sent on the sender's confirmation: a message or question
 * ("message"), or a close note ("note").
 */
export function flaggedMark(categories, kind = "message") {
  if (!categories || !categories.length) return null;
  const names = { categories: categories.map((c) => label("category", c)).join(", ") };
  return h("p", { class: "flagged", dataset: { kind },
    text: kind === "note" ? t("sensitive.mark.note", names) : t("sensitive.mark", names) });
}

/** An action of the audit log in words: a delivery over the live connection names its event. */
export function actionText(action) {
  if (!action) return "";
  const live = /^live\.(.+)$/.exec(action);
  if (live) return t("action.live", { event: label("event", live[1]) });
  return label("action", action);
}

/** The basis of a decision in words: ``rule:``, ``statute:``, ``internal:``, ``consent:`` or default deny. */
export function basisWords(basis) {
  if (!basis) return "";
  const found = /^(rule|statute|internal|consent):(.+)$/.exec(basis);
  if (!found) return basis === "default-deny" ? t("basis.default-deny") : basis;
  return found[1] === "consent" ? t("basis.consent") : t(`basis.${found[1]}`, { rule: found[2] });
}

let namesPromise = null;

/** Display names the app can know: the named experts of the directory (any signed-in user may
 * list them) and the user's own. A map of user id → name; empty if the directory is unavailable. */
export function knownNames() {
  if (!namesPromise) {
    namesPromise = api("GET", "/api/v1/experts").then((page) => new Map((page.items || [])
      .filter((e) => e.id && e.name).map((e) => [e.id, e.name]))).catch(() => {
      namesPromise = null;
      return new Map();
    });
  }
  return namesPromise.then((names) => {
    const all = new Map(names);
    if (session.user) all.set(session.user.id, session.user.name);
    return all;
  });
}

/**
 * A confirmation in a modal dialog (the native <dialog>: focus moves into it and stays there,
 * Escape cancels, focus returns to what opened it). Answers true when confirmed.
 */
export function confirmDialog({ title, text, confirm, cancel = t("app.cancel"), danger = false }) {
  const opener = document.activeElement;
  const titleId = uid("dialog-title");
  const textId = uid("dialog-text");
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": titleId, "aria-describedby": textId },
      h("h2", { id: titleId, text: title }),
      h("p", { id: textId, text }),
      h("form", { method: "dialog", class: "actions" },
        h("button", { type: "submit", value: "yes", class: danger ? "danger" : null, text: confirm }),
        h("button", { type: "submit", value: "no", class: "secondary", autofocus: true, text: cancel })));
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(dialog.returnValue === "yes");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
