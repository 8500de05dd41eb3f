// Statistics for the joint steering meeting (SPEC C8), as the service reports them: every
// series of counts becomes a bar chart with the same numbers in a table beside it.

import { api } from "../api.js";
import { h, replace, table } from "../dom.js";
import { formatNumber, label, t } from "../i18n.js";
import { errorBox, loading } from "./common.js";

/** Objects of name → number found in the answer, with the path that names them. */
function series(value, path = []) {
  if (!value || typeof value !== "object") return [];
  const entries = Object.entries(value);
  if (!Array.isArray(value) && entries.length && entries.every(([, v]) => typeof v === "number")) return [[path, value]];
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => series(item, [...path, item && (item.month || item.org || item.name) ? [item.month, item.org].filter(Boolean).join(" ") || item.name : String(index + 1)]));
  }
  return entries.flatMap(([key, v]) => series(v, [...path, key]));
}

function barChart(title, data) {
  const entries = Object.entries(data);
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const rowHeight = 26;
  const width = 480;
  const labelWidth = 190;
  const svg = h("svg:svg", { viewBox: `0 0 ${width} ${entries.length * rowHeight + 8}`, role: "img", "aria-label": title, class: "chart" });
  svg.append(h("svg:title", { text: title }));
  entries.forEach(([name, value], index) => {
    const y = index * rowHeight + 4;
    const barWidth = ((width - labelWidth - 60) * value) / max;
    svg.append(
      h("svg:text", { x: labelWidth - 6, y: y + 16, "text-anchor": "end", class: "chart-label", text: label("stats", name) }),
      h("svg:rect", { x: labelWidth, y, width: Math.max(barWidth, 1), height: rowHeight - 8, class: "chart-bar" }),
      h("svg:text", { x: labelWidth + barWidth + 6, y: y + 16, class: "chart-value", text: formatNumber(value) }));
  });
  return svg;
}

export async function statsView(body) {
  const out = h("div", {}, loading());
  replace(body, h("section", { class: "card", "aria-labelledby": "stats-h" },
    h("h2", { id: "stats-h", text: t("stats.title") }), h("p", { class: "hint", text: t("stats.help") }), out));
  let result;
  try {
    result = await api("GET", "/api/v1/stats");
  } catch (error) {
    replace(out, errorBox(error));
    return;
  }
  const found = series(result).filter(([, data]) => Object.keys(data).length);
  if (!found.length) {
    replace(out, h("p", { class: "empty", text: t("stats.none") }));
    return;
  }
  replace(out, found.map(([path, data]) => {
    const title = path.map((p) => label("stats", p)).join(" · ") || t("stats.title");
    return h("figure", { class: "chart-figure" },
      h("figcaption", { text: title }),
      barChart(title, data),
      table(title, [[t("stats.name"), ([k]) => label("stats", k)], [t("stats.value"), ([, v]) => formatNumber(v)]],
        Object.entries(data)));
  }));
}
