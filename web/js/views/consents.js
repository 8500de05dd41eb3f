// Consents of a client (docs/capabilities.md C3): find the client by identity code, see and withdraw their
// consents, record a new one, and print its receipt for the client in the chosen language; and
// the client's disclosure prohibitions, recorded and lifted here.

import { api, offers } from "../api.js";
import { checkboxes, field, h, replace, select, table } from "../dom.js";
import { LANGUAGES, formatDate, formatDateTime, label, language, orgName, t } from "../i18n.js";
import { session } from "../session.js";
import { confirmDialog, errorBox, heading, knownNames, statusArea } from "./common.js";
import { hetuField } from "./advisor.js";

export async function consentsView(ctx) {
  const { main, config } = ctx;
  main.append(heading(t("consents.title")), h("p", { class: "lead", text: t("consents.lead") }));
  const found = h("div");
  const status = statusArea();
  const hetu = hetuField({ required: true });
  const lookup = async (event) => {
    event.preventDefault();
    const value = hetu.value();
    if (!value) {
      hetu.input.focus();
      return;
    }
    try {
      const { client_ref: ref } = await api("POST", "/api/v1/clients", { hetu: value });
      hetu.input.value = "";
      await showClient(ref);
    } catch (error) {
      status.show(errorBox(error));
    }
  };
  main.append(h("section", { class: "card", "aria-labelledby": "find-h" },
    h("h2", { id: "find-h", text: t("consents.find") }),
    h("form", { class: "inline-form", onsubmit: lookup, novalidate: true }, hetu,
      h("button", { type: "submit", text: t("consents.find.submit") })), status), found);

  async function showClient(ref) {
    const list = h("div");
    const receipt = h("div", { class: "receipt-area" });
    replace(found,
      h("section", { class: "card", "aria-labelledby": "client-h" },
        h("h2", { id: "client-h", text: t("consents.client", { ref }) }), list),
      h("section", { class: "card", "aria-labelledby": "new-consent-h" },
        h("h2", { id: "new-consent-h", text: t("consents.new") }), consentForm(ref, config, async (consent) => {
          await refresh();
          await showReceipt(consent.id);
        })),
      offers("GET", "/api/v1/clients/{ref}/prohibitions") ? await prohibitionsSection(ctx, ref, config) : null,
      receipt);

    async function showReceipt(id) {
      const langSelect = select(LANGUAGES.map((l) => [l, t(`language.${l}`)]), { value: language() });
      const text = h("pre", { class: "receipt-text", tabindex: "0", "aria-labelledby": "receipt-h" });
      const load = async () => {
        try {
          text.textContent = await api("GET", `/api/v1/consents/${id}/receipt?lang=${langSelect.value}`, undefined, { text: true });
          text.setAttribute("lang", langSelect.value);
        } catch (error) {
          replace(text, errorBox(error));
        }
      };
      langSelect.addEventListener("change", load);
      replace(receipt, h("section", { class: "card printable", "aria-labelledby": "receipt-h" },
        h("h2", { id: "receipt-h", text: t("receipt.title") }),
        h("div", { class: "inline-form no-print" }, field(t("receipt.language"), langSelect),
          h("button", { type: "button", onclick: () => window.print(), text: t("receipt.print") })),
        text));
      await load();
      receipt.querySelector("h2").setAttribute("tabindex", "-1");
      receipt.querySelector("h2").focus();
    }

    async function refresh() {
      let consents;
      let names;
      try {
        [consents, names] = await Promise.all([api("GET", `/api/v1/clients/${ref}/consents`).then((p) => p.items), knownNames()]);
      } catch (error) {
        replace(list, errorBox(error));
        return;
      }
      replace(list, table(t("consents.caption"), [
        [t("consents.categories"), (c) => (c.categories || []).map((x) => label("category", x)).join(", ")],
        [t("consents.discloser"), (c) => orgName(c.disclosing_org) || "–"],
        [t("consents.recipients"), (c) => (c.recipient_orgs || []).map(orgName).join(", ")],
        [t("consents.purposes"), (c) => (c.purposes || []).map((x) => label("purpose", x)).join(", ")],
        [t("consents.valid"), (c) => `${formatDate(c.valid_from)} – ${c.valid_until ? formatDate(c.valid_until) : "…"}`],
        [t("consents.status"), (c) => label("consentstatus", c.status)],
        [t("consents.recorded"), (c) => `${names.get(c.recorded_by) || c.recorded_by || ""} · ${formatDateTime(c.created_at)}`],
        [t("consents.actions"), (c) => [
          h("button", { type: "button", class: "link", onclick: () => showReceipt(c.id), text: t("receipt.show"),
            "aria-label": t("receipt.show.for", { id: c.id.slice(0, 8) }) }),
          c.status === "active" && c.disclosing_org === session.user.org && !c.confirmed_at
            ? h("button", { type: "button", class: "link", text: t("consents.confirm"),
              "aria-label": t("consents.confirm.for", { id: c.id.slice(0, 8) }),
              onclick: async () => {
                try {
                  await api("POST", `/api/v1/consents/${c.id}/confirm`);
                  ctx.announce(t("consents.confirmed"));
                  await refresh();
                } catch (error) {
                  list.prepend(errorBox(error));
                }
              } }) : null,
          c.status === "active"
            ? h("button", { type: "button", class: "link danger", text: t("consents.revoke"),
              "aria-label": t("consents.revoke.for", { id: c.id.slice(0, 8) }),
              onclick: async () => {
                const yes = await confirmDialog({ title: t("consents.revoke.for", { id: c.id.slice(0, 8) }),
                  text: t("consents.revoke.confirm"), confirm: t("consents.revoke.yes"), cancel: t("consents.revoke.keep"), danger: true });
                if (!yes) return;
                try {
                  await api("POST", `/api/v1/consents/${c.id}/revoke`);
                  ctx.announce(t("consents.revoked"));
                  await refresh();
                } catch (error) {
                  list.prepend(errorBox(error));
                }
              } }) : null,
        ]],
      ], consents, { empty: t("consents.none") }));
    }
    await refresh();
    found.querySelector("h2").setAttribute("tabindex", "-1");
    found.querySelector("h2").focus();
  }

  if (ctx.params[0]) await showClient(ctx.params[0]);
  return null;
}

function consentForm(ref, config, done) {
  const categories = checkboxes(t("consents.categories"),
    config.categories.filter((x) => x !== "identity.hetu").map((x) => [x, label("category", x)]), { name: "categories" });
  // The organisation that discloses (by default the recorder's own) and those that receive.
  const discloser = select(config.orgs.map((o) => [o, orgName(o)]), { name: "disclosing_org", value: session.user.org });
  const orgs = checkboxes(t("consents.recipients"), config.orgs.map((o) => [o, orgName(o)]), { name: "orgs",
    checked: config.orgs.filter((o) => o !== session.user.org).slice(0, 1) });
  const purpose = select(config.purposes.filter((p) => p !== "general").map((p) => [p, label("purpose", p)]), { name: "purpose", value: "tt.application_intake" });
  const method = select(["written", "oral", "e_service"].map((m) => [m, label("method", m)]), { value: "written" });
  const grantor = select(["self", "guardian", "legal_representative"].map((g) => [g, label("grantor", g)]), { value: "self" });
  const maxDays = config.consent_max_days || 365;
  const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
  const until = h("input", { type: "date", value: day(Math.min(90, maxDays - 1)), max: day(maxDays - 1), required: true });
  const witness = h("input", { type: "text", name: "witnessed_by", maxlength: "200", autocomplete: "off" });
  const evidence = h("input", { type: "text", name: "evidence_ref", maxlength: "200", autocomplete: "off" });
  const status = statusArea();
  return h("form", {
    class: "consent-form", novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      const body = { categories: categories.values(), disclosing_org: discloser.value, recipient_orgs: orgs.values(),
        purpose: purpose.value, method: method.value, grantor: grantor.value, valid_until: until.value };
      if (!body.categories.length || !body.recipient_orgs.length || !until.value) {
        status.show(h("p", { class: "error", text: t("consents.incomplete") }));
        return;
      }
      if (witness.value.trim()) body.witnessed_by = witness.value.trim();
      if (evidence.value.trim()) body.evidence_ref = evidence.value.trim();
      try {
        const consent = await api("POST", `/api/v1/clients/${ref}/consents`, body);
        status.show(h("p", { class: "ok", text: t("consents.recorded.ok") }));
        await done(consent);
      } catch (error) {
        status.show(errorBox(error));
      }
    },
  }, categories, h("div", { class: "row" }, field(t("consents.discloser"), discloser)), orgs,
  h("div", { class: "row" }, field(t("consents.purpose"), purpose), field(t("consents.method"), method),
    field(t("consents.grantor"), grantor),
    field(t("consents.until"), until, { required: true, hint: t("consents.until.help", { days: maxDays }) })),
  h("div", { class: "row" }, field(t("consents.witness"), witness, { hint: t("consents.witness.help") }),
    field(t("consents.evidence"), evidence, { hint: t("consents.evidence.help") })),
  h("div", { class: "actions" }, h("button", { type: "submit", text: t("consents.submit") })), status);
}

/** The client's disclosure prohibitions: a category, to an organisation, or everything. A
 * prohibition beats a consent; only a statutory rule beats a prohibition. */
async function prohibitionsSection(ctx, ref, config) {
  const list = h("div");
  const status = statusArea();
  const canRecord = offers("POST", "/api/v1/clients/{ref}/prohibitions");
  const category = select(config.categories.filter((x) => x !== "identity.hetu").map((x) => [x, label("category", x)]),
    { name: "prohibition_category", emptyLabel: t("prohibitions.allcategories") });
  const org = select(config.orgs.filter((o) => o !== session.user.org).map((o) => [o, orgName(o)]),
    { name: "prohibition_org", emptyLabel: t("prohibitions.allorgs") });
  const scopeText = (p) => {
    const what = p.category ? label("category", p.category) : t("prohibitions.everything");
    return p.org ? t("prohibitions.to", { what, org: orgName(p.org) }) : what;
  };
  const refresh = async () => {
    let items;
    let names;
    try {
      [items, names] = await Promise.all([api("GET", `/api/v1/clients/${ref}/prohibitions`).then((p) => p.items || []),
        knownNames()]);
    } catch (error) {
      replace(list, errorBox(error));
      return;
    }
    replace(list, table(t("prohibitions.caption"), [
      [t("prohibitions.scope"), scopeText],
      [t("consents.status"), (p) => h("span", { class: p.active ? "bad" : "muted",
        text: p.active ? t("prohibitions.active") : t("prohibitions.lifted", { when: formatDateTime(p.revoked_at) }) })],
      [t("consents.recorded"), (p) => `${names.get(p.created_by) || p.created_by || ""} · ${orgName(p.created_org)} · ${formatDateTime(p.created_at)}`],
      [t("consents.actions"), (p) => (p.active && p.created_org === session.user.org && offers("POST", "/api/v1/prohibitions/{id}/revoke")
        ? h("button", { type: "button", class: "link danger", text: t("prohibitions.lift"), dataset: { prohibition: p.id },
          "aria-label": t("prohibitions.lift.for", { scope: scopeText(p) }),
          onclick: async () => {
            try {
              await api("POST", `/api/v1/prohibitions/${encodeURIComponent(p.id)}/revoke`);
              ctx.announce(t("prohibitions.lifted.now"));
              status.show(h("p", { class: "ok", text: t("prohibitions.lifted.now") }));
              await refresh();
            } catch (error) {
              status.show(errorBox(error));
            }
          } }) : null)],
    ], items, { empty: t("prohibitions.none") }));
  };
  await refresh();
  return h("section", { class: "card", "aria-labelledby": "prohibitions-h" },
    h("h2", { id: "prohibitions-h", text: t("prohibitions.title") }),
    h("p", { class: "hint", text: t("prohibitions.help") }),
    list,
    canRecord ? h("form", {
      class: "prohibition-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const body = {};
        if (category.value) body.category = category.value;
        if (org.value) body.org = org.value;
        try {
          await api("POST", `/api/v1/clients/${ref}/prohibitions`, body);
          ctx.announce(t("prohibitions.recorded"));
          status.show(h("p", { class: "ok", text: t("prohibitions.recorded") }));
          category.value = "";
          org.value = "";
          await refresh();
        } catch (error) {
          status.show(errorBox(error));
        }
      },
    },
    h("h3", { text: t("prohibitions.new") }),
    h("div", { class: "row" }, field(t("prohibitions.category"), category, { hint: t("prohibitions.category.help") }),
      field(t("prohibitions.org"), org, { hint: t("prohibitions.org.help") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("prohibitions.submit") }))) : null,
    status);
}
