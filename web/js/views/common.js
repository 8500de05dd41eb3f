// Pieces shared by the views: error messages, status badges, sub-navigation and the
// rendering of a consultation's headline.

import { h } from "../dom.js";
import { label, t } from "../i18n.js";

/** A translated message for an API error; the server's own (English) detail follows it. */
export function errorText(error) {
  const status = error && error.status;
  const key = { 0: "error.network", 400: "error.400", 401: "error.401", 403: "error.403", 404: "error.404",
    409: "error.409", 413: "error.413", 415: "error.400", 422: "error.422", 429: "error.429" }[status];
  return key ? t(key) : t("error.generic");
}

export function errorBox(error) {
  const box = h("div", { class: "error", role: "alert" }, h("p", { text: errorText(error) }));
  if (error && error.message && error.status) box.append(h("p", { class: "detail", lang: "en", text: error.message }));
  return box;
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
