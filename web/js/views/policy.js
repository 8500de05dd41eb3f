// The data-minimisation policy in force, read-only: every rule with its effect, parties,
// categories and legal citation, filterable by category.

import { api } from "../api.js";
import { field, h, replace, select, table } from "../dom.js";
import { label, orgName, t } from "../i18n.js";
import { errorBox, loading } from "./common.js";
import { loadPolicyTexts, policyText } from "../policytext.js";

function scopeText(scope) {
  if (!scope) return t("policy.anyone");
  const orgs = [...(scope.org_kinds || []).map((k) => label("orgkind", k)), ...(scope.orgs || []).map(orgName)];
  const roles = (scope.roles || []).map((r) => label("role", r));
  return [orgs.length ? orgs.join(", ") : t("policy.anyorg"), roles.length ? roles.join(", ") : t("policy.anyrole")].join(" · ");
}

export async function policyView(body) {
  const out = h("div", {}, loading());
  replace(body, h("section", { class: "card", "aria-labelledby": "policy-h" },
    h("h2", { id: "policy-h", text: t("policy.title") }), h("p", { class: "hint", text: t("policy.help") }), out));
  let policy;
  try {
    [policy] = await Promise.all([api("GET", "/api/v1/policy"), loadPolicyTexts()]);
  } catch (error) {
    replace(out, errorBox(error));
    return;
  }
  const filter = select(policy.categories.map((c) => [c.name, label("category", c.name)]), { emptyLabel: t("policy.allcategories") });
  const list = h("div");
  const show = () => {
    const rules = policy.items.filter((r) => !filter.value || !r.categories || r.categories.includes(filter.value));
    replace(list, table(t("policy.caption", { count: rules.length }), [
      [t("policy.rule"), (r) => h("code", { text: r.id })],
      [t("policy.effect"), (r) => h("span", { class: ["effect", `effect-${r.effect}`], text: label("effect", r.effect) })],
      [t("policy.sender"), (r) => scopeText(r.sender)],
      [t("policy.recipient"), (r) => scopeText(r.recipient)],
      [t("policy.categories"), (r) => (r.categories ? r.categories.map((c) => label("category", c)).join(", ") : t("policy.anycategory"))],
      [t("policy.purposes"), (r) => (r.purposes ? r.purposes.map((p) => label("purpose", p)).join(", ") : t("policy.anypurpose"))],
      [t("policy.citation"), (r) => [h("span", { lang: policyText(r.citation).lang, text: policyText(r.citation).text }),
        r.needs_check ? h("span", { class: "badge badge-warn", text: t("policy.needscheck") }) : null,
        r.statutory ? h("span", { class: "badge badge-plain", text: t("policy.statutory") }) : null]],
      [t("policy.reason"), (r) => h("span", { lang: policyText(r.reason).lang, text: policyText(r.reason).text })],
      [t("policy.source"), (r) => `${r.source}:${r.line}`],
    ], rules));
  };
  filter.addEventListener("change", show);
  replace(out, h("p", {}, `${t("policy.version")}: `, h("code", { class: "hash", text: policy.version })),
    h("div", { class: "inline-form" }, field(t("policy.filter"), filter)), list);
  show();
}
