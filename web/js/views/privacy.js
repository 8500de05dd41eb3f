// The privacy officer's view: search the access log and the disclosures, the client access
// report (printable), the log's verification with the latest signed checkpoint, anomaly flags
// and statistics. Each part appears only when the service offers its API.

import { api, download, may, offers, query, saveBlob } from "../api.js";
import { field, h, replace, select, table, uid } from "../dom.js";
import { formatDate, formatDateTime, formatNumber, keysWith, label, language, locale, orgName, t } from "../i18n.js";
import { actionText, basisWords, errorBox, errorText, heading, knownNames, loading, plain, statusArea, subnav } from "./common.js";
import { hetuField } from "./advisor.js";
import { session } from "../session.js";
import { helsinkiToIso } from "../time.js";
import { policyView } from "./policy.js";
import { statsView } from "./stats.js";

const SECTIONS = [
  ["events", "GET", "/api/v1/audit/events"],
  ["disclosures", "GET", "/api/v1/audit/disclosures"],
  ["report", "GET", "/api/v1/clients/{ref}/access-report"],
  ["log", "GET", "/api/v1/audit/verify"],
  ["anomalies", "GET", "/api/v1/audit/anomalies"],
  ["stats", "GET", "/api/v1/stats"],
  ["policy", "GET", "/api/v1/policy"],
];

export async function privacyView(ctx) {
  const { main } = ctx;
  const available = SECTIONS.filter(([, method, path]) => offers(method, path));
  const active = available.some(([key]) => key === ctx.params[0]) ? ctx.params[0] : available[0]?.[0];
  main.append(heading(t("privacy.title")));
  names = await knownNames();
  if (!available.length) {
    main.append(h("p", { text: t("privacy.none") }));
    return null;
  }
  main.append(subnav(t("privacy.sections"), available.map(([key]) => [key, `#/privacy/${key}`, t(`privacy.${key}`)]), active));
  const body = h("div", { class: "section-body" });
  main.append(body);
  const render = {
    events: () => searchSection(body, ctx, "events"),
    disclosures: () => searchSection(body, ctx, "disclosures"),
    report: () => reportSection(body),
    log: () => logSection(body),
    anomalies: () => anomaliesSection(body),
    stats: () => statsView(body),
    policy: () => policyView(body),
  }[active];
  await render();
  return null;
}

// User id → display name, for log rows that carry only the id (filled when the view opens).
let names = new Map();

function actorText(actor) {
  if (!actor) return "";
  const id = actor.id || actor.user_id;
  return [actor.name || names.get(id) || id, orgName(actor.org), actor.role ? label("role", actor.role) : null].filter(Boolean).join(" · ");
}

function basisText(row) {
  const parts = [];
  if (row.basis) parts.push(basisWords(row.basis));
  if (row.rule_id && !String(row.basis || "").includes(row.rule_id)) parts.push(t("basis.rule", { rule: row.rule_id }));
  if (row.consent && row.consent.id) parts.push(`${t("privacy.consent")} ${row.consent.id.slice(0, 8)}@${row.consent.version}`);
  return parts.join(" · ");
}

function flagsText(row) {
  return (row.flags || []).map((f) => label("flag", f)).join(", ");
}

// Words under "action." that name no action of the log (parts of the composer's preview).
const NOT_ACTIONS = new Set(["live", "checked_per_recipient", "removed", "replaced_by_client_link"]);

/** The actions of the log in words, for choosing one (sorted by their words). */
function actionChoices() {
  return keysWith("action.").filter((a) => !NOT_ACTIONS.has(a))
    .map((a) => [a, actionText(a)]).sort((x, y) => x[1].localeCompare(y[1], locale()));
}

function filterForm(kind, onSearch) {
  const clientRef = h("input", { type: "text", name: "client_ref", autocomplete: "off" });
  // A user id is typed or picked by name from the people the app knows.
  const peopleId = uid("people");
  const actor = h("input", { type: "text", name: "actor", autocomplete: "off", list: peopleId, spellcheck: "false" });
  const people = h("datalist", { id: peopleId },
    [...names].map(([id, name]) => h("option", { value: id, label: name })));
  const outcome = select([["permit", label("outcome", "permit")], ["deny", label("outcome", "deny")]], { emptyLabel: t("privacy.any") });
  const category = select([], { emptyLabel: t("privacy.any") });
  const from = h("input", { type: "date", name: "from" });
  const to = h("input", { type: "date", name: "to" });
  const fromTime = h("input", { type: "time", name: "from_time" });
  const toTime = h("input", { type: "time", name: "to_time" });
  const action = select(actionChoices(), { name: "action", emptyLabel: t("privacy.any") });
  const basis = h("input", { type: "text", name: "basis", autocomplete: "off" });
  return {
    fill(categories) {
      for (const c of categories) category.append(h("option", { value: c, text: label("category", c) }));
    },
    form: h("form", {
      class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        // A day alone counts whole; with a time of day, from that moment (Helsinki time).
        const at = (date, time) => (date && time ? helsinkiToIso(date, time) : date);
        onSearch({ client_ref: clientRef.value.trim(), actor: actor.value.trim(), outcome: outcome.value,
          category: category.value, from: at(from.value, fromTime.value), to: at(to.value, toTime.value),
          action: action.value, basis: basis.value.trim() });
      },
    }, h("div", { class: "row" },
      field(t("privacy.client_ref"), clientRef), field(t("privacy.actor"), actor, { hint: t("privacy.actor.help") }), people,
      kind === "events" ? field(t("privacy.action"), action) : field(t("privacy.basis"), basis),
      field(t("privacy.outcome"), outcome), field(t("privacy.category"), category)),
    h("div", { class: "row" },
      field(t("privacy.from"), from), field(t("privacy.fromtime"), fromTime, { hint: t("privacy.time.help") }),
      field(t("privacy.to"), to), field(t("privacy.totime"), toTime, { hint: t("privacy.time.help") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("privacy.search") }))),
  };
}

async function searchSection(body, ctx, kind) {
  // Busy while a search runs; only the latest search's answer is shown.
  const results = h("div", { class: "results", "aria-busy": "false" });
  const status = statusArea();
  let searches = 0;
  let filters = {};
  let next = null;
  let rows = [];
  const columns = kind === "events"
    ? [
      [t("privacy.when"), (r) => formatDateTime(r.at)],
      [t("privacy.actor"), (r) => actorText(r.actor)],
      [t("privacy.action"), (r) => actionText(r.action)],
      [t("privacy.outcome"), (r) => label("outcome", r.outcome)],
      [t("privacy.client_ref"), (r) => r.client_ref || ""],
      [t("privacy.category"), (r) => (r.categories || []).map((c) => label("category", c)).join(", ")],
      [t("privacy.purpose"), (r) => label("purpose", r.purpose)],
      [t("privacy.basis"), basisText],
      [t("privacy.flags"), flagsText],
    ]
    : [
      [t("privacy.when"), (r) => formatDateTime(r.at)],
      [t("privacy.fromwho"), (r) => actorText(r.from)],
      [t("privacy.towho"), (r) => actorText(r.to)],
      [t("privacy.category"), (r) => (r.categories || []).map((c) => label("category", c)).join(", ")],
      [t("privacy.outcome"), (r) => label("outcome", r.outcome)],
      [t("privacy.client_ref"), (r) => r.client_ref || ""],
      [t("privacy.purpose"), (r) => label("purpose", r.purpose)],
      [t("privacy.basis"), basisText],
      [t("privacy.flags"), flagsText],
    ];
  const path = kind === "events" ? "/api/v1/audit/events" : "/api/v1/audit/disclosures";
  // The officer's own searches and reports are logged too and would crowd the list: hidden by
  // default, counted, and shown again with one click.
  const ownId = uid("own");
  const hideOwn = h("input", { type: "checkbox", id: ownId, name: "hide_own", checked: true });
  const hidden = h("p", { class: "hint", role: "status" });
  // The officer's own log searches and reports, with the client lookups a report starts from.
  const ownReads = (r) => r.actor && session.user && (r.actor.id || r.actor.user_id) === session.user.id
    && (String(r.action || "").startsWith("audit.") || r.action === "client.lookup");
  const show = () => {
    const shown = kind === "events" && hideOwn.checked ? rows.filter((r) => !ownReads(r)) : rows;
    hidden.textContent = shown.length < rows.length ? t("privacy.ownhidden", { count: formatNumber(rows.length - shown.length) }) : "";
    const more = next ? h("button", { type: "button", class: "secondary", onclick: () => load(true), text: t("privacy.more") }) : null;
    replace(results, table(t(`privacy.${kind}.caption`, { count: formatNumber(shown.length) }), columns, shown,
      { empty: t("privacy.noresults") }), more);
  };
  hideOwn.addEventListener("change", show);
  const load = async (append = false) => {
    const search = ++searches;
    results.setAttribute("aria-busy", "true");
    try {
      const page = await api("GET", query(path, { ...filters, limit: 50, cursor: append ? next : undefined }));
      if (search !== searches) return;
      rows = append ? rows.concat(page.items) : page.items;
      next = page.next;
      show();
      status.show(h("p", { text: t("privacy.found", { count: formatNumber(rows.length) }) }));
    } catch (error) {
      if (search === searches) status.show(errorBox(error));
    } finally {
      if (search === searches) results.setAttribute("aria-busy", "false");
    }
  };
  const form = filterForm(kind, (values) => {
    filters = values;
    load();
  });
  form.fill(ctx.config.categories);
  replace(body, h("section", { class: "card", "aria-labelledby": "search-h" },
    h("h2", { id: "search-h", text: t(`privacy.${kind}`) }),
    h("p", { class: "hint", text: t("privacy.logged") }), form.form,
    kind === "events" ? h("div", { class: "check own-reads" }, hideOwn, h("label", { for: ownId, text: t("privacy.hideown") })) : null,
    kind === "events" ? hidden : null,
    kind === "events" && offers("GET", "/api/v1/audit/export") ? exportPart(() => filters) : null,
    status, results));
  await load();
}

/** Downloads of the log export (JSON Lines or CSV) for the current search; the export is logged. */
function exportPart(currentFilters) {
  const status = h("span", { class: "download-status", role: "status" });
  const button = (format) => h("button", { type: "button", class: "secondary", dataset: { format },
    text: t(`privacy.export.${format}`),
    onclick: async (event) => {
      const clicked = event.currentTarget;
      clicked.disabled = true;
      status.textContent = t("privacy.export.working");
      try {
        const { blob, filename } = await download(query("/api/v1/audit/export", { ...currentFilters(), format }));
        saveBlob(blob, filename || `audit-export.${format}`);
        status.textContent = t("privacy.export.done");
      } catch (error) {
        status.textContent = errorText(error);
      } finally {
        clicked.disabled = false;
      }
    } });
  return h("div", { class: "actions export" },
    h("p", { class: "hint", text: t("privacy.export.help") }), button("jsonl"), " ", button("csv"), " ", status);
}

async function reportSection(body) {
  const hetu = hetuField();
  const ref = h("input", { type: "text", name: "client_ref", autocomplete: "off" });
  const from = h("input", { type: "date" });
  const to = h("input", { type: "date" });
  const reason = h("textarea", { rows: "2", maxlength: "2000" });
  const status = statusArea();
  const out = h("div");
  const run = async (event) => {
    event.preventDefault();
    status.clear();
    let clientRef = ref.value.trim();
    try {
      if (!clientRef) {
        const value = hetu.value();
        if (!value) {
          hetu.input.focus();
          return;
        }
        try {
          clientRef = (await api("POST", lookupPath, { hetu: value })).client_ref;
        } catch (error) {
          if (error.status !== 404) throw error;
          // A lookup registers nobody: an unknown code simply has no report.
          hetu.setError(t("report.unknownclient"));
          replace(out);
          status.show(h("p", { class: "error", text: t("report.unknownclient") }));
          hetu.input.focus();
          return;
        }
        hetu.input.value = "";
        hetu.input.dispatchEvent(new Event("input"));
      }
      const params = { from: from.value, to: to.value, reason: reason.value.trim() };
      const base = `/api/v1/clients/${encodeURIComponent(clientRef)}`;
      const report = await api("GET", query(`${base}/access-report`, params));
      const extract = offers("GET", "/api/v1/clients/{ref}/log-extract")
        ? (lang) => api("GET", query(`${base}/log-extract`, { ...params, lang })) : null;
      replace(out, reportView(report, extract));
      out.querySelector("h2")?.focus();
    } catch (error) {
      status.show(errorBox(error));
    }
  };
  // An identity code becomes the client reference through the lookup, which never registers
  // anyone (or, where the service has no lookup, through registration by staff who may register).
  const canRegister = may("POST", "/api/v1/clients");
  const lookupPath = offers("POST", "/api/v1/clients/lookup") ? "/api/v1/clients/lookup" : (canRegister ? "/api/v1/clients" : null);
  replace(body, h("section", { class: "card no-print", "aria-labelledby": "report-h" },
    h("h2", { id: "report-h", text: t("privacy.report") }),
    h("p", { class: "hint", text: t("privacy.report.help") }),
    h("form", { onsubmit: run, novalidate: true },
      h("p", { class: "hint", text: lookupPath ? t("report.either") : t("report.refonly") }),
      h("div", { class: "row" }, field(t("privacy.client_ref"), ref), lookupPath ? hetu : null),
      h("div", { class: "row" }, field(t("privacy.from"), from), field(t("privacy.to"), to)),
      field(t("privacy.reason"), reason, { hint: t("privacy.reason.help") }),
      h("div", { class: "actions" }, h("button", { type: "submit", text: t("privacy.report.make") }))),
    status), out);
}

// The secrecy marking the service gives with the answer, in the interface's language.
export function secrecyMark(answer) {
  const marking = answer && answer.secrecy ? answer.secrecy[language()] || answer.secrecy.fi : null;
  return marking ? h("p", { class: "secrecy-mark", text: marking }) : null;
}

// The log extract (lokitieto-ote, loggutdrag) to hand to the client: the service writes the text
// in Finnish or Swedish; the officer prints it.
function extractPart(extract) {
  if (!extract) return null;
  const out = h("div", { class: "extract-out" });
  const status = statusArea();
  const show = async (lang) => {
    status.clear();
    try {
      const result = await extract(lang);
      replace(out, h("section", { class: "extract", "aria-labelledby": "extract-h" },
        h("h3", { id: "extract-h", tabindex: "-1", text: t("extract.title") }),
        h("pre", { class: "receipt-text", lang, tabindex: "0", "aria-labelledby": "extract-h", text: result.text })));
      out.querySelector("h3")?.focus();
    } catch (error) {
      status.show(errorBox(error));
    }
  };
  return h("div", { class: "extract-part" },
    h("h3", { text: t("extract.heading") }),
    h("p", { class: "hint no-print", text: t("extract.help") }),
    h("div", { class: "actions no-print" },
      h("button", { type: "button", onclick: () => show("fi"), text: t("extract.fi") }),
      h("button", { type: "button", onclick: () => show("sv"), text: t("extract.sv") })),
    status, out);
}

/** A summary line of the report in words: people by name, organisations by name, counts in the
 * language's format. */
function summaryText(key, value) {
  if (Array.isArray(value) && value.every((v) => v && typeof v === "object")) return value.map(actorText).join("; ");
  if (key === "organisations" && Array.isArray(value)) return value.map(orgName).join(", ");
  return typeof value === "number" ? formatNumber(value) : plain(value);
}

function reportView(report, extract) {
  const period = report.period || {};
  const summary = report.summary || {};
  const processing = report.processing || [];
  const disclosures = report.disclosures || [];
  return h("section", { class: "card printable report", "aria-labelledby": "report-out-h" },
    secrecyMark(report),
    h("h2", { id: "report-out-h", tabindex: "-1", text: t("report.title", { ref: report.client_ref }) }),
    h("dl", { class: "facts" },
      h("dt", { text: t("report.period") }), h("dd", { text: `${formatDate(period.from)} – ${formatDate(period.to)}` }),
      h("dt", { text: t("report.generated") }), h("dd", { text: formatDateTime(report.generated_at) }),
      report.organisation ? [h("dt", { text: t("report.organisation") }), h("dd", { text: orgName(report.organisation) })] : null,
      Object.entries(summary).map(([key, value]) => [h("dt", { text: label("summary", key) }), h("dd", {
        text: summaryText(key, value) })])),
    h("div", { class: "no-print actions" }, h("button", { type: "button", onclick: () => window.print(), text: t("receipt.print") })),
    h("h3", { text: t("report.processing") }),
    table(t("report.processing"), [
      [t("privacy.when"), (r) => formatDateTime(r.at)],
      [t("privacy.actor"), (r) => actorText(r.actor || r.who)],
      [t("privacy.action"), (r) => actionText(r.action)],
      [t("privacy.category"), (r) => (r.categories || []).map((c) => label("category", c)).join(", ")],
      [t("privacy.purpose"), (r) => label("purpose", r.purpose)],
      [t("privacy.basis"), (r) => basisText(r)],
      [t("privacy.outcome"), (r) => label("outcome", r.outcome)],
    ], processing, { empty: t("report.none") }),
    h("h3", { text: t("report.disclosures") }),
    table(t("report.disclosures"), [
      [t("privacy.when"), (r) => formatDateTime(r.at)],
      [t("privacy.fromwho"), (r) => actorText(r.from)],
      [t("privacy.towho"), (r) => actorText(r.to)],
      [t("privacy.category"), (r) => (r.categories || []).map((c) => label("category", c)).join(", ")],
      [t("privacy.purpose"), (r) => label("purpose", r.purpose)],
      [t("privacy.basis"), (r) => basisText(r)],
      [t("privacy.outcome"), (r) => label("outcome", r.outcome)],
    ], disclosures, { empty: t("report.none") }),
    report.truncated ? h("p", { class: "warn", text: t("report.truncated") }) : null,
    extractPart(extract),
    secrecyMark(report));
}

async function logSection(body) {
  const out = h("div", {}, loading());
  replace(body, h("section", { class: "card", "aria-labelledby": "log-h" },
    h("h2", { id: "log-h", text: t("privacy.log") }), h("p", { class: "hint", text: t("log.help") }), out));
  const parts = [];
  try {
    const result = await api("GET", "/api/v1/audit/verify");
    parts.push(h("p", { class: ["verdict", result.ok ? "ok" : "bad"], role: "status",
      text: result.ok ? t("log.ok", { size: formatNumber(result.size) }) : t("log.bad", { index: result.first_bad_index ?? "?" }) }),
    h("dl", { class: "facts" },
      h("dt", { text: t("log.size") }), h("dd", { text: formatNumber(result.size) }),
      h("dt", { text: t("log.root") }), h("dd", {}, h("code", { class: "hash", text: result.root_hash })),
      result.checkpoints !== undefined ? [h("dt", { text: t("log.checkpoints") }),
        h("dd", { text: `${formatNumber(result.checkpoints_verified ?? 0)} / ${formatNumber(result.checkpoints)}` })] : null));
    if (result.problems && result.problems.length) {
      parts.push(h("ul", { class: "problems" }, result.problems.map((p) => h("li", { lang: "en", text: plain(p) }))));
    }
  } catch (error) {
    parts.push(errorBox(error));
  }
  if (offers("GET", "/api/v1/audit/checkpoint")) {
    try {
      const note = await api("GET", "/api/v1/audit/checkpoint", undefined, { text: true });
      parts.push(h("h3", { id: "cp-h", text: t("log.checkpoint") }), h("pre", { class: "note", tabindex: "0", "aria-labelledby": "cp-h", text: note }));
    } catch (error) {
      parts.push(errorBox(error));
    }
  }
  if (offers("GET", "/api/v1/audit/verifier-key")) {
    try {
      const key = await api("GET", "/api/v1/audit/verifier-key", undefined, { text: true });
      parts.push(h("h3", { id: "vk-h", text: t("log.verifierkey") }), h("pre", { class: "note", tabindex: "0", "aria-labelledby": "vk-h", text: key }));
    } catch (error) {
      parts.push(errorBox(error));
    }
  }
  replace(out, parts);
}

async function anomaliesSection(body) {
  const out = h("div", {}, loading());
  replace(body, h("section", { class: "card", "aria-labelledby": "anom-h" },
    h("h2", { id: "anom-h", text: t("privacy.anomalies") }), h("p", { class: "hint", text: t("anomalies.help") }), out));
  try {
    const result = await api("GET", query("/api/v1/audit/anomalies", { limit: 100 }));
    replace(out, table(t("privacy.anomalies"), [
      [t("privacy.when"), (r) => formatDateTime(r.at)],
      [t("anomalies.kind"), (r) => label("flag", r.kind)],
      [t("privacy.actor"), (r) => actorText(r.actor)],
      [t("anomalies.detail"), (r) => plain(Object.fromEntries(Object.entries(r)
        .filter(([k]) => !["at", "kind", "actor", "leaf_index"].includes(k))))],
      [t("anomalies.leaf"), (r) => formatNumber(r.leaf_index)],
    ], result.items || [], { empty: t("anomalies.none") }));
  } catch (error) {
    replace(out, errorBox(error));
  }
}
