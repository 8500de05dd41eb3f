// The admin's view: name experts and their pools, topics and languages; the roster; agreements
// between organisations (when the service offers them); the policy, read-only; and key status.

import { api, offers, query } from "../api.js";
import { checkboxes, field, h, replace, table } from "../dom.js";
import { LANGUAGES, formatDate, formatNumber, label, t } from "../i18n.js";
import { session } from "../session.js";
import { errorBox, heading, loading, plain, statusArea, subnav } from "./common.js";
import { rosterView } from "./expert.js";
import { policyView } from "./policy.js";

const SECTIONS = [
  ["experts", "GET", "/api/v1/experts"],
  ["roster", "GET", "/api/v1/experts"],
  ["agreements", "GET", "/api/v1/agreements"],
  ["policy", "GET", "/api/v1/policy"],
  ["keys", "GET", "/api/v1/keys/status"],
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
    roster: async () => {
      const experts = await api("GET", query("/api/v1/experts", { org: session.user.org })).then((p) => p.items).catch(() => null);
      replace(body, h("section", { class: "card", "aria-labelledby": "roster-h" },
        h("h2", { id: "roster-h", text: t("roster.title") }), await rosterView(experts, { org: session.user.org })));
    },
    agreements: () => agreementsSection(body),
    policy: () => policyView(body),
    keys: () => keysSection(body),
  }[active]();
  return null;
}

async function expertsSection(body, ctx) {
  const list = h("div", {}, loading());
  const editor = h("div");
  replace(body, h("section", { class: "card", "aria-labelledby": "experts-h" },
    h("h2", { id: "experts-h", text: t("admin.experts") }), list), editor);
  const refresh = async () => {
    let experts;
    try {
      experts = (await api("GET", query("/api/v1/experts", { org: session.user.org }))).items;
    } catch (error) {
      replace(list, errorBox(error));
      return;
    }
    replace(list, table(t("admin.experts.caption", { org: session.user.org }), [
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
    replace(editor, expertForm(ctx, expert, async () => {
      await refresh();
      replace(editor);
    }));
    editor.querySelector("h2").focus();
  };
  await refresh();
}

function expertForm(ctx, expert, done) {
  const userId = h("input", { type: "text", autocomplete: "off", value: expert ? expert.id : `${session.user.org}.`, disabled: Boolean(expert) });
  const name = h("input", { type: "text", autocomplete: "off", value: expert ? expert.name : "" });
  const topics = checkboxes(t("expert.topics"), ctx.config.topics.map((x) => [x, label("topic", x)]), { checked: expert ? expert.topics : [] });
  const pools = h("input", { type: "text", autocomplete: "off", value: expert ? expert.pools.join(", ") : "" });
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
          pools: pools.value.split(",").map((p) => p.trim()).filter(Boolean) };
        try {
          await api("PUT", `/api/v1/experts/${encodeURIComponent(id)}`, body);
          ctx.announce(t("admin.saved"));
          await done();
        } catch (error) {
          status.show(errorBox(error));
        }
      },
    },
    h("div", { class: "row" }, field(t("admin.userid"), userId), field(t("admin.name"), name)),
    topics, field(t("expert.pools"), pools, { hint: t("admin.pools.help") }), languages,
    h("div", { class: "check" }, onDuty, h("label", { for: "edit-on-duty", text: t("roster.onduty") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("admin.save") }))),
    status);
}

async function agreementsSection(body) {
  const out = h("div", {}, loading());
  replace(body, h("section", { class: "card", "aria-labelledby": "agreements-h" },
    h("h2", { id: "agreements-h", text: t("admin.agreements") }), out));
  try {
    const items = (await api("GET", "/api/v1/agreements")).items || [];
    replace(out, table(t("admin.agreements"), [
      [t("agreements.parties"), (a) => (a.parties || [a.org_a, a.org_b]).filter(Boolean).join(" – ")],
      [t("agreements.valid"), (a) => `${formatDate(a.valid_from)} – ${a.valid_until ? formatDate(a.valid_until) : "…"}`],
      [t("agreements.scope"), (a) => plain({ topics: a.topics, pools: a.pools })],
      [t("agreements.reference"), (a) => a.reference || ""],
      [t("mine.status"), (a) => plain(a.status ?? a.in_force)],
    ], items, { empty: t("agreements.none") }));
  } catch (error) {
    replace(out, errorBox(error));
  }
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
        [t("mine.status"), (v) => label("keystatus", v.status)],
        [t("keys.datakeys"), (v) => formatNumber(v.data_keys)],
      ], status.versions || []));
  } catch (error) {
    replace(out, errorBox(error));
  }
}
