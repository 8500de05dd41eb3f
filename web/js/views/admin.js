// The admin's view: name experts and their pools, topics and languages; the pools' service
// levels; the roster (weekly rules and periods); agreements between organisations; the policy,
// read-only; and key status. Each part appears when the service offers its API.

import { api, offers, query } from "../api.js";
import { checkboxes, field, h, replace, select, table, uid } from "../dom.js";
import { LANGUAGES, formatDate, formatDateTime, formatDuration, formatNumber, label, orgName, t } from "../i18n.js";
import { session } from "../session.js";
import { helsinkiDate, helsinkiToIso, helsinkiToday, nextDay } from "../time.js";
import { confirmDialog, errorBox, heading, loading, statusArea, subnav } from "./common.js";
import { rosterView } from "./expert.js";
import { policyView } from "./policy.js";
import { rosterEditor } from "./roster.js";

const SECTIONS = [
  ["experts", "GET", "/api/v1/experts"],
  ["pools", "GET", "/api/v1/pools"],
  ["roster", "GET", "/api/v1/experts"],
  ["agreements", "GET", "/api/v1/agreements"],
  ["policy", "GET", "/api/v1/policy"],
  ["keys", "GET", "/api/v1/keys/status"],
  ["sessions", "POST", "/api/v1/sessions/end"],
];

export async function adminView(ctx) {
  const { main } = ctx;
  const available = SECTIONS.filter(([, method, path]) => offers(method, path));
  const active = available.some(([key]) => key === ctx.params[0]) ? ctx.params[0] : "experts";
  main.append(heading(t("admin.title")),
    subnav(t("admin.sections"), available.map(([key]) => [key, `#/admin/${key}`, t(`admin.${key}`)]), active));
  const body = h("div", { class: "section-body" });
  main.append(body);
  await {
    experts: () => expertsSection(body, ctx),
    pools: () => poolsSection(body, ctx),
    roster: async () => {
      if (offers("POST", "/api/v1/roster/rules") && offers("GET", "/api/v1/roster")) {
        await rosterEditor(body, ctx);
        return;
      }
      const experts = await api("GET", query("/api/v1/experts", { org: session.user.org })).then((p) => p.items).catch(() => null);
      replace(body, h("section", { class: "card", "aria-labelledby": "roster-h" },
        h("h2", { id: "roster-h", text: t("roster.title") }), await rosterView(experts, { org: session.user.org })));
    },
    agreements: () => agreementsSection(body, ctx),
    policy: () => policyView(body),
    keys: () => keysSection(body),
    sessions: () => sessionsSection(body, ctx),
  }[active]();
  return null;
}

async function expertsSection(body, ctx) {
  const list = h("div", {}, loading());
  const editor = h("div");
  replace(body, h("section", { class: "card", "aria-labelledby": "experts-h" },
    h("h2", { id: "experts-h", text: t("admin.experts") }), list), editor);
  let pools = [];
  const refresh = async () => {
    let experts;
    try {
      experts = (await api("GET", query("/api/v1/experts", { org: session.user.org }))).items;
      pools = await ownPools();
    } catch (error) {
      replace(list, errorBox(error));
      return;
    }
    replace(list, table(t("admin.experts.caption", { org: orgName(session.user.org) }), [
      [t("roster.expert"), (e) => e.name],
      [t("admin.userid"), (e) => h("code", { text: e.id })],
      [t("expert.topics"), (e) => e.topics.map((x) => label("topic", x)).join(", ")],
      [t("expert.pools"), (e) => e.pools.join(", ")],
      [t("admin.languages"), (e) => e.languages.map((l) => t(`language.${l}`)).join(", ")],
      [t("roster.onduty"), (e) => (e.on_duty ? t("app.yes") : t("app.no"))],
      [t("roster.presence"), (e) => label("presence", e.presence)],
      [t("consents.actions"), (e) => h("button", { type: "button", class: "link", text: t("admin.edit"),
        "aria-label": t("admin.edit.for", { name: e.name }), onclick: () => edit(e) })],
    ], experts, { empty: t("roster.none") }), h("button", { type: "button", class: "secondary", onclick: () => edit(null), text: t("admin.new") }));
  };
  const edit = (expert) => {
    replace(editor, expertForm(ctx, expert, pools, async () => {
      await refresh();
      replace(editor);
    }));
    editor.querySelector("h2").focus();
  };
  await refresh();
}

/** The names of the organisation's pools (configured, or named by one of its experts). */
async function ownPools() {
  const org = session.user.org;
  const items = (await api("GET", query("/api/v1/pools", { org }))).items || [];
  return items.filter((p) => p.org === org).map((p) => p.name);
}

/** Pools are chosen from those that exist: a typing error can never make a new, empty pool. A
 * pool the expert is in but the list lacks stays listed (and checked). */
function poolChoices(legend, known, checked, hint) {
  const names = [...new Set([...known, ...checked])].sort();
  const set = checkboxes(legend, names.map((n) => [n, n]), { name: "pools", checked });
  set.classList.add("pool-choices");
  set.append(h("p", { class: "hint", text: names.length ? hint : t("pools.none") }));
  return set;
}

function expertForm(ctx, expert, knownPools, done) {
  const userId = h("input", { type: "text", autocomplete: "off", value: expert ? expert.id : `${session.user.org}.`, disabled: Boolean(expert) });
  const name = h("input", { type: "text", autocomplete: "off", value: expert ? expert.name : "" });
  const topics = checkboxes(t("expert.topics"), ctx.config.topics.map((x) => [x, label("topic", x)]), { checked: expert ? expert.topics : [] });
  const pools = poolChoices(t("expert.pools"), knownPools, expert ? expert.pools : [], t("admin.pools.help"));
  const languages = checkboxes(t("admin.languages"), LANGUAGES.map((l) => [l, t(`language.${l}`)]), { checked: expert ? expert.languages : ["fi"] });
  const onDuty = h("input", { type: "checkbox", id: "edit-on-duty", checked: expert ? expert.on_duty : false });
  const status = statusArea();
  return h("section", { class: "card", "aria-labelledby": "edit-h" },
    h("h2", { id: "edit-h", tabindex: "-1", text: expert ? t("admin.edit.title", { name: expert.name }) : t("admin.new") }),
    h("form", {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const id = userId.value.trim();
        if (!id) {
          userId.focus();
          return;
        }
        const body = { name: name.value.trim() || id, topics: topics.values(), languages: languages.values(), on_duty: onDuty.checked,
          pools: pools.values() };
        try {
          await api("PUT", `/api/v1/experts/${encodeURIComponent(id)}`, body);
          ctx.announce(t("admin.saved"));
          await done();
        } catch (error) {
          const box = errorBox(error);
          // A pool that does not exist (the list here is older than the organisation's pools):
          // it is created in the Pools section, never by naming an expert to it.
          if (error.code === "unknown_pool") box.firstChild.textContent = t("admin.pools.unknown");
          status.show(box);
        }
      },
    },
    h("div", { class: "row" }, field(t("admin.userid"), userId), field(t("admin.name"), name)),
    topics, pools, languages,
    h("div", { class: "check" }, onDuty, h("label", { for: "edit-on-duty", text: t("roster.onduty") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("admin.save") }))),
    status);
}

// -- pools ------------------------------------------------------------------------------------

const URGENCIES = ["immediate", "today", "normal"];

async function poolsSection(body, ctx) {
  const org = session.user.org;
  const list = h("div", {}, loading());
  const editor = h("div");
  replace(body, h("section", { class: "card", "aria-labelledby": "pools-h" },
    h("h2", { id: "pools-h", text: t("admin.pools") }), h("p", { class: "hint", text: t("pools.help") }), list), editor);
  const canEdit = offers("PUT", "/api/v1/pools/{org}/{name}");
  const refresh = async () => {
    let pools;
    try {
      pools = ((await api("GET", query("/api/v1/pools", { org }))).items || []).filter((p) => p.org === org);
    } catch (error) {
      replace(list, errorBox(error));
      return [];
    }
    const columns = [
      [t("duty.pool"), (p) => h("code", { text: p.name })],
      ...URGENCIES.map((u) => [t("pools.sla.for", { urgency: label("urgency", u) }), (p) => formatDuration(p.sla_seconds[u])]),
      [t("pools.reoffers"), (p) => formatNumber(p.reoffers ?? 0)],
      [t("pools.backup"), (p) => p.backup_pool || "—"],
      [t("pools.maxopen"), (p) => (p.max_open_per_expert ? formatNumber(p.max_open_per_expert) : t("pools.nolimit"))],
      [t("duty.onduty"), (p) => `${formatNumber(p.on_duty)} / ${formatNumber(p.experts)}`],
    ];
    if (canEdit) {
      columns.push([t("consents.actions"), (p) => h("button", { type: "button", class: "link", text: t("admin.edit"),
        "aria-label": t("pools.edit.for", { name: p.name }), dataset: { pool: p.name }, onclick: () => edit(p, pools) })]);
    }
    replace(list, table(t("pools.caption", { org: orgName(org) }), columns, pools, { empty: t("pools.none") }),
      canEdit ? h("button", { type: "button", class: "secondary", id: "pool-new", onclick: () => create(pools),
        text: t("pools.new") }) : null);
    return pools;
  };
  const create = (pools) => {
    replace(editor, newPoolForm(ctx, pools, async (name) => {
      await refresh();
      replace(editor);
      document.querySelector(`button[data-pool="${name}"]`)?.focus();
    }));
    editor.querySelector("h2").focus();
  };
  const edit = (pool, pools) => {
    replace(editor, poolForm(ctx, pool, pools, async () => {
      await refresh();
      replace(editor);
      document.querySelector(`button[data-pool="${pool.name}"]`)?.focus();
    }));
    editor.querySelector("h2").focus();
  };
  await refresh();
}

const POOL_NAME = /^[a-z0-9_-]{1,64}$/;

/** A new pool is an explicit action of its own, confirmed: advisors see every pool at once. */
function newPoolForm(ctx, pools, done) {
  const org = session.user.org;
  const name = h("input", { type: "text", name: "pool_name", autocomplete: "off", spellcheck: "false", maxlength: "64" });
  const nameField = field(t("pools.new.name"), name, { required: true, hint: t("pools.new.help") });
  const status = statusArea();
  return h("section", { class: "card", "aria-labelledby": "pool-new-h" },
    h("h2", { id: "pool-new-h", tabindex: "-1", text: t("pools.new") }),
    h("form", {
      class: "pool-new-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        status.clear();
        const value = name.value.trim();
        const problem = !value ? t("pools.new.required") : !POOL_NAME.test(value) ? t("pools.new.invalid")
          : pools.some((p) => p.name === value) ? t("pools.new.exists", { name: value }) : "";
        nameField.setError(problem);
        if (problem) {
          name.focus();
          return;
        }
        const yes = await confirmDialog({ title: t("pools.new.confirm.title", { name: value }),
          text: t("pools.new.confirm", { name: value }), confirm: t("pools.new.confirm.yes") });
        if (!yes) return;
        try {
          await api("PUT", `/api/v1/pools/${encodeURIComponent(org)}/${encodeURIComponent(value)}`, {});
          ctx.announce(t("pools.new.done", { name: value }));
          await done(value);
        } catch (error) {
          status.show(errorBox(error));
        }
      },
    }, nameField, h("div", { class: "actions" }, h("button", { type: "submit", text: t("pools.new.submit") }))),
    status);
}

function poolForm(ctx, pool, pools, done) {
  const shown = Object.fromEntries(URGENCIES.map((u) => [u, String(Math.round((pool.sla_seconds[u] / 60) * 2) / 2)]));
  const minutes = Object.fromEntries(URGENCIES.map((u) => [u, h("input", {
    type: "number", name: `sla_${u}`, min: "0.5", max: "43200", step: "0.5", inputmode: "decimal", value: shown[u],
  })]));
  const slaFields = URGENCIES.map((u) => field(label("urgency", u), minutes[u]));
  const reoffers = h("input", { type: "number", name: "reoffers", min: "0", max: "10", step: "1", value: String(pool.reoffers ?? 1) });
  const backup = select(pools.filter((p) => p.name !== pool.name).map((p) => [p.name, p.name]),
    { name: "backup_pool", value: pool.backup_pool || "", emptyLabel: t("pools.nobackup") });
  const maxOpen = h("input", { type: "number", name: "max_open_per_expert", min: "0", max: "100", step: "1",
    value: String(pool.max_open_per_expert ?? 0) });
  const status = statusArea();
  const integer = (input, low, high) => {
    const value = Number(input.value);
    return input.value !== "" && Number.isInteger(value) && value >= low && value <= high ? value : null;
  };
  return h("section", { class: "card", "aria-labelledby": "pool-edit-h" },
    h("h2", { id: "pool-edit-h", tabindex: "-1", text: t("pools.edit.title", { name: pool.name }) }),
    h("form", {
      class: "pool-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        status.clear();
        const sla = {};
        for (const [index, u] of URGENCIES.entries()) {
          // An untouched value keeps its exact seconds (the field shows whole or half minutes).
          const seconds = minutes[u].value === shown[u] ? pool.sla_seconds[u] : Math.round(Number(minutes[u].value) * 60);
          const ok = minutes[u].value !== "" && seconds >= 30 && seconds <= 30 * 86400;
          slaFields[index].setError(ok ? "" : t("pools.sla.invalid"));
          if (!ok) {
            minutes[u].focus();
            return;
          }
          sla[u] = seconds;
        }
        const values = { reoffers: integer(reoffers, 0, 10), max_open_per_expert: integer(maxOpen, 0, 100) };
        for (const [name, input] of [["reoffers", reoffers], ["max_open_per_expert", maxOpen]]) {
          if (values[name] === null) {
            status.show(h("p", { class: "error", text: t("pools.integer.invalid") }));
            input.setAttribute("aria-invalid", "true");
            input.focus();
            return;
          }
          input.removeAttribute("aria-invalid");
        }
        try {
          await api("PUT", `/api/v1/pools/${encodeURIComponent(pool.org)}/${encodeURIComponent(pool.name)}`,
            { sla_seconds: sla, ...values, backup_pool: backup.value || null });
          ctx.announce(t("admin.saved"));
          await done();
        } catch (error) {
          status.show(errorBox(error));
        }
      },
    },
    h("fieldset", {}, h("legend", { text: t("pools.sla") }), h("p", { class: "hint", text: t("pools.sla.help") }),
      h("div", { class: "row" }, slaFields)),
    h("div", { class: "row" },
      field(t("pools.reoffers"), reoffers, { hint: t("pools.reoffers.help") }),
      field(t("pools.backup"), backup, { hint: t("pools.backup.help") }),
      field(t("pools.maxopen"), maxOpen, { hint: t("pools.maxopen.help") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("admin.save") }))),
    status);
}

// -- agreements -------------------------------------------------------------------------------

/** The last Helsinki day an agreement is in force (its end is exclusive). */
function lastDay(iso) {
  if (!iso) return "";
  return helsinkiDate(new Date(Date.parse(iso) - 1).toISOString());
}

function scopeText(names, prefix) {
  return names && names.length ? names.map((n) => (prefix ? label(prefix, n) : n)).join(", ") : t("agreements.all");
}

async function agreementsSection(body, ctx) {
  const out = h("div", {}, loading());
  const editor = h("div");
  const canCreate = offers("POST", "/api/v1/agreements");
  const canEdit = offers("PUT", "/api/v1/agreements/{id}");
  replace(body, h("section", { class: "card", "aria-labelledby": "agreements-h" },
    h("h2", { id: "agreements-h", text: t("admin.agreements") }),
    h("p", { class: "hint", text: t("agreements.help") }), out), editor);
  const open = async (agreement) => {
    // Pools are chosen from those that exist in any organisation, never typed.
    const pools = await api("GET", "/api/v1/pools").then((p) => (p.items || []).map((x) => x.name)).catch(() => []);
    replace(editor, agreementForm(ctx, agreement, pools, async (saved) => {
      await refresh();
      replace(editor);
      document.querySelector(`button[data-agreement="${saved.id}"]`)?.focus();
    }));
    editor.querySelector("h2").focus();
  };
  const refresh = async () => {
    try {
      const items = (await api("GET", "/api/v1/agreements")).items || [];
      const columns = [
        [t("agreements.reference"), (a) => a.reference || ""],
        [t("agreements.parties"), (a) => (a.parties || []).map(orgName).join(" – ")],
        [t("agreements.valid"), (a) => `${formatDate(a.valid_from)} – ${a.valid_until ? formatDate(lastDay(a.valid_until)) : "…"}`],
        [t("agreements.topics"), (a) => scopeText(a.topics, "topic")],
        [t("agreements.pools"), (a) => scopeText(a.pools)],
        [t("mine.status"), (a) => h("span", { class: a.in_force ? "ok" : "bad", text: a.in_force ? t("agreements.inforce") : t("agreements.notinforce") })],
        [t("agreements.version"), (a) => formatNumber(a.version)],
      ];
      if (canEdit) {
        columns.push([t("consents.actions"), (a) => h("button", { type: "button", class: "link", text: t("admin.edit"),
          "aria-label": t("agreements.edit.for", { reference: a.reference }), dataset: { agreement: a.id },
          onclick: () => open(a) })]);
      }
      replace(out, table(t("admin.agreements"), columns, items, { empty: t("agreements.none") }),
        canCreate ? h("button", { type: "button", class: "secondary", id: "agreement-new", onclick: () => open(null),
          text: t("agreements.new") }) : null);
    } catch (error) {
      replace(out, errorBox(error));
    }
  };
  await refresh();
}

function agreementForm(ctx, agreement, knownPools, done) {
  const own = session.user.org;
  const others = ctx.config.orgs.filter((o) => o !== own);
  const reference = h("input", { type: "text", name: "reference", maxlength: "200", autocomplete: "off",
    value: agreement ? agreement.reference : "" });
  const party = agreement ? null : select(others.map((o) => [o, orgName(o)]), { name: "party" });
  // A new agreement always sends its start; a changed one only what was changed.
  const initialFrom = agreement ? helsinkiDate(agreement.valid_from) : null;
  const initialUntil = agreement ? lastDay(agreement.valid_until) : "";
  const from = h("input", { type: "date", name: "valid_from", value: agreement ? initialFrom : helsinkiToday() });
  const until = h("input", { type: "date", name: "valid_until", value: initialUntil });
  const topics = checkboxes(t("agreements.topics"), ctx.config.topics.map((x) => [x, label("topic", x)]),
    { name: "topics", checked: agreement ? agreement.topics : [] });
  const pools = poolChoices(t("agreements.pools"), knownPools, agreement ? agreement.pools : [], t("agreements.pools.help"));
  topics.append(h("p", { class: "hint", text: t("agreements.topics.help") }));
  const referenceField = field(t("agreements.reference"), reference, { required: true });
  const fromField = field(t("agreements.from"), from, { required: true, hint: t("agreements.from.help") });
  const status = statusArea();
  const history = h("div");
  if (agreement && offers("GET", "/api/v1/agreements/{id}")) {
    api("GET", `/api/v1/agreements/${encodeURIComponent(agreement.id)}`).then((full) => {
      replace(history, table(t("agreements.versions"), [
        [t("agreements.version"), (v) => formatNumber(v.version)],
        [t("agreements.changed"), (v) => formatDateTime(v.at)],
        [t("agreements.by"), (v) => v.by],
        [t("agreements.valid"), (v) => `${formatDate(v.agreement.valid_from)} – ${v.agreement.valid_until ? formatDate(lastDay(v.agreement.valid_until)) : "…"}`],
      ], [...(full.versions || [])].reverse()));
    }).catch((error) => replace(history, errorBox(error)));
  }
  return h("section", { class: "card", "aria-labelledby": "agreement-edit-h" },
    h("h2", { id: "agreement-edit-h", tabindex: "-1",
      text: agreement ? t("agreements.edit.title", { reference: agreement.reference }) : t("agreements.new") }),
    h("form", {
      class: "agreement-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        status.clear();
        referenceField.setError(reference.value.trim() ? "" : t("agreements.reference.required"));
        fromField.setError(from.value ? "" : t("agreements.from.required"));
        if (!reference.value.trim()) {
          reference.focus();
          return;
        }
        if (!from.value) {
          from.focus();
          return;
        }
        const payload = {
          reference: reference.value.trim(),
          topics: topics.values(),
          pools: pools.values(),
        };
        // Dates are sent only when they changed: an unchanged one keeps its exact instant.
        if (from.value !== initialFrom) payload.valid_from = helsinkiToIso(from.value);
        if (until.value !== initialUntil) payload.valid_until = until.value ? helsinkiToIso(nextDay(until.value)) : null;
        try {
          let saved;
          if (agreement) {
            saved = await api("PUT", `/api/v1/agreements/${encodeURIComponent(agreement.id)}`, payload);
          } else {
            saved = await api("POST", "/api/v1/agreements", { ...payload, parties: [own, party.value] });
          }
          ctx.announce(t("agreements.saved"));
          await done(saved);
        } catch (error) {
          status.show(errorBox(error));
        }
      },
    },
    h("div", { class: "row" }, referenceField,
      party ? field(t("agreements.party"), party, { hint: t("agreements.party.help", { org: orgName(own) }) })
        : h("p", { class: "facts-inline" }, h("strong", { text: `${t("agreements.parties")}: ` }), agreement.parties.map(orgName).join(" – "))),
    h("div", { class: "row" }, fromField, field(t("agreements.until"), until, { hint: t("agreements.until.help") })),
    topics,
    pools,
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("admin.save") }))),
    status, history);
}

/** What a key version does: the current one wraps new data keys and opens its own; an older
 * active one only opens the data keys still wrapped under it; a retired one opens nothing. */
function keyRole(version, current) {
  if (version.version === current) return t("keyrole.current");
  return version.status === "retired" ? t("keyrole.retired") : t("keyrole.active");
}

async function keysSection(body) {
  const out = h("div", {}, loading());
  replace(body, h("section", { class: "card", "aria-labelledby": "keys-h" },
    h("h2", { id: "keys-h", text: t("admin.keys") }), h("p", { class: "hint", text: t("keys.help") }), out));
  try {
    const status = await api("GET", "/api/v1/keys/status");
    replace(out,
      h("dl", { class: "facts" },
        h("dt", { text: t("keys.current") }), h("dd", { text: formatNumber(status.current) }),
        h("dt", { text: t("keys.destroyed") }), h("dd", { text: formatNumber(status.destroyed_data_keys ?? 0) })),
      table(t("keys.caption"), [
        [t("keys.version"), (v) => formatNumber(v.version)],
        [t("keys.does"), (v) => keyRole(v, status.current)],
        [t("keys.datakeys"), (v) => formatNumber(v.data_keys)],
      ], status.versions || []));
  } catch (error) {
    replace(out, errorBox(error));
  }
}

/** Ending every session of a user of the organisation (a lost device, a person who left): typed
 * or picked by name, confirmed, and said when it took effect. */
async function sessionsSection(body, ctx) {
  const org = session.user.org;
  const experts = await api("GET", query("/api/v1/experts", { org })).then((p) => p.items || []).catch(() => []);
  const peopleId = uid("people");
  const user = h("input", { type: "text", name: "user_id", autocomplete: "off", spellcheck: "false", list: peopleId });
  const userField = field(t("sessions.user"), user, { required: true, hint: t("sessions.user.help") });
  const status = statusArea();
  replace(body, h("section", { class: "card", "aria-labelledby": "sessions-h" },
    h("h2", { id: "sessions-h", text: t("admin.sessions") }),
    h("p", { class: "hint", text: t("sessions.help") }),
    h("form", {
      class: "sessions-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        status.clear();
        const id = user.value.trim();
        userField.setError(id ? "" : t("sessions.user.required"));
        if (!id) {
          user.focus();
          return;
        }
        const name = experts.find((e) => e.id === id)?.name || id;
        const yes = await confirmDialog({ title: t("sessions.confirm.title", { name }), text: t("sessions.confirm"),
          confirm: t("sessions.end"), danger: true });
        if (!yes) return;
        try {
          const ended = await api("POST", "/api/v1/sessions/end", { user_id: id });
          const done = t("sessions.ended", { name, when: formatDateTime(ended.ended_at) });
          ctx.announce(done);
          status.show(h("p", { class: "ok", text: done }));
        } catch (error) {
          if (error.status === 404) {
            userField.setError(t("sessions.unknown"));
            user.focus();
          } else {
            status.show(errorBox(error));
          }
        }
      },
    }, userField, h("datalist", { id: peopleId }, experts.map((e) => h("option", { value: e.id, label: e.name }))),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "danger", text: t("sessions.end.button") }))),
    status));
}
