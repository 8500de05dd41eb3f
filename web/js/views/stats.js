// Statistics for the joint steering meeting (docs/capabilities.md C8): per month and pair of organisations,
// as GET /api/v1/stats reports them. Each chart has the same numbers in a table beside it;
// the CSV export is the service's own. No personal data is in any of it.

import { api, offers } from "../api.js";
import { field, h, replace, table } from "../dom.js";
import { formatDuration, formatNumber, label, orgName, t } from "../i18n.js";
import { errorBox, loading, statusArea } from "./common.js";

function barChart(title, entries) {
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const rowHeight = 26;
  const width = 520;
  const labelWidth = 210;
  const svg = h("svg:svg", { viewBox: `0 0 ${width} ${entries.length * rowHeight + 8}`, role: "img", "aria-label": title, class: "chart" });
  svg.append(h("svg:title", { text: title }));
  entries.forEach(([name, value], index) => {
    const y = index * rowHeight + 4;
    const barWidth = ((width - labelWidth - 60) * value) / max;
    svg.append(
      h("svg:text", { x: labelWidth - 6, y: y + 16, "text-anchor": "end", class: "chart-label", text: name }),
      h("svg:rect", { x: labelWidth, y, width: Math.max(barWidth, 1), height: rowHeight - 8, class: "chart-bar" }),
      h("svg:text", { x: labelWidth + barWidth + 6, y: y + 16, class: "chart-value", text: formatNumber(value) }));
  });
  return svg;
}

function figure(title, entries, nameHeading) {
  if (!entries.length) return null;
  return h("figure", { class: "chart-figure" },
    h("figcaption", { text: title }),
    barChart(title, entries),
    table(title, [[nameHeading, ([k]) => k], [t("stats.value"), ([, v]) => formatNumber(v)]], entries));
}

function sum(rows, pick) {
  const totals = new Map();
  for (const row of rows) {
    for (const [key, value] of Object.entries(pick(row) || {})) {
      if (typeof value === "number") totals.set(key, (totals.get(key) || 0) + value);
    }
  }
  return [...totals.entries()];
}

function percent(share) {
  return share === null || share === undefined ? "—" : formatNumber(share, { style: "percent", maximumFractionDigits: 1 });
}

export async function statsView(body) {
  const out = h("div", {}, loading());
  const from = h("input", { type: "month", name: "from" });
  const to = h("input", { type: "month", name: "to" });
  const status = statusArea();
  const load = async () => {
    let result;
    try {
      result = await api("GET", `/api/v1/stats?${new URLSearchParams(Object.entries({ from: from.value, to: to.value }).filter(([, v]) => v))}`);
    } catch (error) {
      replace(out, errorBox(error));
      return;
    }
    replace(out, report(result));
  };
  const download = async () => {
    try {
      const csv = await api("GET", `/api/v1/stats.csv?${new URLSearchParams(Object.entries({ from: from.value, to: to.value }).filter(([, v]) => v))}`, undefined, { text: true });
      const link = h("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: "konsulta-stats.csv" });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (error) {
      status.show(errorBox(error));
    }
  };
  replace(body, h("section", { class: "card", "aria-labelledby": "stats-h" },
    h("h2", { id: "stats-h", text: t("stats.title") }), h("p", { class: "hint", text: t("stats.help") }),
    h("form", { class: "inline-form", onsubmit: (event) => { event.preventDefault(); load(); } },
      field(t("stats.from"), from), field(t("stats.to"), to),
      h("button", { type: "submit", text: t("stats.show") }),
      offers("GET", "/api/v1/stats.csv") ? h("button", { type: "button", class: "secondary", onclick: download, text: t("stats.csv") }) : null),
    status, out));
  await load();
}

function report(result) {
  const rows = result.rows || [];
  if (!rows.length) return h("p", { class: "empty", text: t("stats.none") });
  const months = new Map();
  for (const row of rows) months.set(row.month, (months.get(row.month) || 0) + (row.consultations || 0));
  const pair = (row) => `${row.month} · ${orgName(row.origin_org)} → ${orgName(row.target_org)}`;
  return [
    figure(t("stats.bymonth"), [...months.entries()], t("stats.month")),
    figure(t("stats.bytopic"), sum(rows, (r) => r.by_topic).map(([k, v]) => [label("topic", k), v]), t("ask.topic")),
    figure(t("stats.byurgency"), sum(rows, (r) => r.by_urgency).map(([k, v]) => [label("urgency", k), v]), t("ask.urgency")),
    figure(t("stats.bycategory"), sum(rows, (r) => r.disclosures && r.disclosures.by_category).map(([k, v]) => [label("category", k), v]), t("privacy.category")),
    figure(t("stats.bybasis"), sum(rows, (r) => r.disclosures && r.disclosures.by_basis).map(([k, v]) => [label("basiskind", k), v]), t("privacy.basis")),
    table(t("stats.permonth"), [
      [t("stats.month"), pair],
      [t("stats.consultations"), (r) => formatNumber(r.consultations)],
      [t("stats.claim"), (r) => `${formatDuration(r.time_to_claim_seconds?.median)} / ${formatDuration(r.time_to_claim_seconds?.p90)}`],
      [t("stats.firstresponse"), (r) => `${formatDuration(r.time_to_first_response_seconds?.median)} / ${formatDuration(r.time_to_first_response_seconds?.p90)}`],
      [t("stats.sla"), (r) => `${percent(r.sla?.kept_share)} (${formatNumber(r.sla?.kept ?? 0)} / ${formatNumber(r.sla?.measured ?? 0)})`],
      [t("stats.escalated"), (r) => formatNumber(r.escalated ?? 0)],
      [t("stats.disclosures"), (r) => formatNumber(r.disclosures?.total ?? 0)],
      [t("stats.referrals"), (r) => `${formatNumber(r.referrals?.referral_items ?? 0)} (${t("stats.withoutconsent", { count: formatNumber(r.referrals?.without_consent ?? 0) })})`],
    ], rows),
  ];
}
