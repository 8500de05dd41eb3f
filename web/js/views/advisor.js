// The advisor's view: who is on duty now, the knowledge base (when the service offers it),
// a new consultation with the client's identity code checked as it is typed and free text
// scanned for identifiers, and the advisor's own consultations, kept up to date live.

import { api, offers, query } from "../api.js";
import { debounce, field, h, radios, replace, select, table } from "../dom.js";
import { checkHetu } from "../hetu.js";
import { formatDateTime, formatDuration, formatNumber, label, orgName, t } from "../i18n.js";
import { subscribe } from "../live.js";
import { serial } from "../serial.js";
import { session } from "../session.js";
import { onUnread, rememberRouting, routingText, unread } from "../notify.js";
import { errorBox, heading, loading, sensitiveConfirm, statusArea, statusBadge, urgencyBadge } from "./common.js";

/** How many requests one search makes at most (each looks at up to 500 consultations on the server). */
const SEARCH_ROUNDS = 4;

export async function advisorView(ctx) {
  const { main } = ctx;
  main.append(heading(t("advisor.title")));
  const duty = h("section", { class: "card", "aria-labelledby": "duty-h" }, h("h2", { id: "duty-h", text: t("duty.title") }));
  const knowledge = knowledgeSection();
  const form = h("section", { class: "card", "aria-labelledby": "ask-h" }, h("h2", { id: "ask-h", text: t("ask.title") }));
  const mine = h("section", { class: "card", "aria-labelledby": "mine-h" }, h("h2", { id: "mine-h", text: t("mine.title") }));
  main.append(h("div", { class: "columns" }, h("div", { class: "col-main" }, knowledge, form), h("div", { class: "col-side" }, duty)), mine);

  const dutyBody = h("div", {}, loading());
  duty.append(dutyBody);
  const mineBody = h("div", {}, loading());
  // A search over all of the user's consultations, answered by the server (the questions are
  // sealed there); what the loaded list shows in the user's language (topic, status) is matched here too.
  const filter = h("input", { type: "search", name: "mine_filter", autocomplete: "off", spellcheck: "false", maxlength: "200" });
  const filterStatus = h("p", { class: "hint filter-status", role: "status" });
  mine.append(h("div", { class: "inline-form mine-filter", role: "search", "aria-label": t("mine.filter") }, field(t("mine.filter"), filter, { hint: t("mine.filter.help") })),
    filterStatus, mineBody);
  form.append(askForm(ctx));

  let loaded = null;
  let found = null; // the server's answer for the words now in the box: { key, items, more }
  let asked = 0; // only the latest search's answer is shown
  const wordsOf = () => filter.value.trim().toLocaleLowerCase().split(/\s+/).filter(Boolean);
  const drawMine = () => {
    if (loaded instanceof Node) {
      replace(mineBody, loaded);
      filterStatus.textContent = "";
      return;
    }
    const words = wordsOf();
    if (!words.length) {
      mineBody.removeAttribute("aria-busy");
      replace(mineBody, mineTable(loaded, t("mine.none")));
      filterStatus.textContent = "";
      return;
    }
    if (!found || found.key !== words.join(" ")) {
      mineBody.setAttribute("aria-busy", "true"); // the search's own answer is on its way
      return;
    }
    mineBody.removeAttribute("aria-busy");
    const byId = new Map();
    for (const c of [...found.items, ...loaded.filter((c) => matchesAll(c, words))]) byId.set(c.id, c);
    const shown = [...byId.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
    replace(mineBody, mineTable(shown, t("mine.filter.none")));
    filterStatus.textContent = t(found.more ? "mine.filter.more" : "mine.filter.count", { count: formatNumber(shown.length) });
  };
  const searchMine = async () => {
    const words = wordsOf();
    const mine = ++asked;
    if (!words.length) {
      found = null;
      drawMine();
      return;
    }
    const key = words.join(" ");
    try {
      // The server looks at a bounded number of consultations per request and says where to go
      // on: a few requests reach further back while fewer than a page have been found.
      const items = [];
      let next = null;
      for (let round = 0; round < SEARCH_ROUNDS && items.length < 50; round += 1) {
        // The words go in the body: a URL ends up in proxy logs, the browser's history and Referer.
        const body = { q: key, limit: 50 - items.length };
        if (next) body.cursor = next;
        const answer = await api("POST", "/api/v1/consultations/search", body);
        if (mine !== asked) return;
        items.push(...answer.items);
        next = answer.next;
        if (!next) break;
      }
      found = { key, items, more: Boolean(next) };
      drawMine();
    } catch (error) {
      if (mine !== asked) return;
      found = null;
      mineBody.removeAttribute("aria-busy");
      replace(mineBody, errorBox(error));
      filterStatus.textContent = "";
    }
  };
  const laterSearch = debounce(searchMine, 250);
  filter.addEventListener("input", () => {
    drawMine();
    laterSearch();
  });
  const refreshDuty = serial(async () => replace(dutyBody, await dutyPanel()));
  const refreshMine = serial(async () => {
    loaded = await myConsultations();
    drawMine();
    if (wordsOf().length && !(loaded instanceof Node)) await searchMine();
  });
  // Listening starts before the first reads: an event arriving while they run refreshes after them.
  const later = debounce(refreshDuty, 300);
  const laterMine = debounce(refreshMine, 200);
  const stopUnread = onUnread(laterMine);
  const stopLive = subscribe((event) => {
    if (event.type === "presence" || event.type === "expert.updated" || event.type.startsWith("consultation.")
        || event.type === "live.resumed") later();
    if (event.type.startsWith("consultation.") || event.type === "live.resumed") laterMine();
  });
  await Promise.all([refreshDuty(), refreshMine()]);
  return () => {
    stopUnread();
    stopLive();
  };
}

async function dutyPanel() {
  const own = session.user.org;
  if (offers("GET", "/api/v1/pools")) {
    let pools;
    try {
      const answer = await api("GET", "/api/v1/pools");
      pools = answer.items.filter((p) => p.org !== own);
      // Questions to any on-duty expert of an organisation wait in no pool: a row of their own.
      for (const row of answer.unpooled || []) {
        if (row.org === own || !row.waiting) continue;
        const members = pools.filter((p) => p.org === row.org);
        pools.push({ org: row.org, name: t("duty.anypool"), waiting: row.waiting,
          on_duty: members.reduce((sum, p) => sum + (p.on_duty || 0), 0),
          next_on_duty: members.map((p) => p.next_on_duty).filter(Boolean).sort()[0] || null });
      }
    } catch (error) {
      return errorBox(error);
    }
    const wait = (p, urgency) => {
      const seconds = p.expected_wait_seconds && p.expected_wait_seconds[urgency];
      return typeof seconds === "number" ? formatDuration(seconds) : "—";
    };
    return h("div", {}, table(t("duty.caption"), [
      [t("duty.pool"), (p) => `${orgName(p.org)} · ${p.name}`],
      [t("duty.onduty"), (p) => h("span", { class: p.on_duty ? "ok" : "bad", text: formatNumber(p.on_duty) })],
      [t("duty.waiting"), (p) => formatNumber(p.waiting ?? 0)],
      [t("duty.wait"), (p) => wait(p, "immediate")],
      [t("duty.next"), (p) => (p.on_duty ? "" : formatDateTime(p.next_on_duty) || "—")],
    ], pools, { empty: t("duty.none") }), h("p", { class: "hint", text: t("duty.help") }));
  }
  let experts;
  try {
    experts = (await api("GET", "/api/v1/experts")).items;
  } catch (error) {
    return errorBox(error);
  }
  const groups = new Map();
  for (const expert of experts.filter((e) => e.org !== own)) {
    for (const pool of expert.pools.length ? expert.pools : ["—"]) {
      const key = `${orgName(expert.org)} · ${pool}`;
      const group = groups.get(key) || { key, onDuty: 0 };
      if (expert.on_duty) group.onDuty += 1;
      groups.set(key, group);
    }
  }
  return h("div", {}, table(t("duty.caption"), [
    [t("duty.pool"), (g) => g.key],
    [t("duty.onduty"), (g) => formatNumber(g.onDuty)],
  ], [...groups.values()], { empty: t("duty.none") }), h("p", { class: "hint", text: t("duty.help") }));
}

function knowledgeSection() {
  // The words typed go in the body of a POST, never in a URL (proxy logs, history, Referer).
  const path = "/api/v1/knowledge/search";
  if (!offers("POST", path)) return null;
  const input = h("input", { type: "search", name: "q", autocomplete: "off" });
  const results = h("div", { class: "kb-results", role: "status" });
  const search = async (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    try {
      const found = (await api("POST", path, { q: input.value.trim() })).items || [];
      replace(results, found.length
        ? h("ul", { class: "kb-list" }, found.map((entry) => h("li", {},
          h("p", { class: "kb-q" }, h("strong", { text: entry.question }), entry.topic ? ` (${label("topic", entry.topic)})` : ""),
          h("p", { class: "kb-a", text: entry.answer }))))
        : h("p", { text: t("kb.none") }));
    } catch (error) {
      replace(results, errorBox(error));
    }
  };
  return h("section", { class: "card", "aria-labelledby": "kb-h" },
    h("h2", { id: "kb-h", text: t("kb.title") }),
    h("form", { onsubmit: search, class: "inline-form", role: "search" },
      field(t("kb.query"), input), h("button", { type: "submit", text: t("kb.search") })),
    results);
}

export function hetuMessage(result) {
  return {
    empty: "", incomplete: "", format: t("hetu.format"), date: t("hetu.date"),
    individual: t("hetu.individual"), check: t("hetu.check"),
  }[result.error] ?? "";
}

/** A HETU input that checks as it is typed and says what is wrong; ``value()`` is null unless valid. */
export function hetuField({ required = false } = {}) {
  const input = h("input", { type: "text", name: "hetu", autocomplete: "off", spellcheck: "false",
    maxlength: "11", class: "hetu", inputmode: "text" });
  const wrapper = field(t("hetu.label"), input, { hint: t("hetu.hint"), required });
  const ok = h("p", { class: "ok", id: `${input.id}-ok`, hidden: true, text: t("hetu.valid") });
  wrapper.append(ok);
  const check = (final) => {
    const result = checkHetu(input.value);
    const showError = result.error && result.error !== "empty" && (result.error !== "incomplete" || final);
    wrapper.setError(showError ? (result.error === "incomplete" ? t("hetu.incomplete") : hetuMessage(result)) : "");
    ok.hidden = !result.ok;
    return result;
  };
  input.addEventListener("input", () => check(false));
  input.addEventListener("blur", () => check(true));
  wrapper.input = input;
  wrapper.value = () => {
    const result = check(true);
    return result.ok ? result.value : null;
  };
  wrapper.isEmpty = () => !input.value.trim();
  return wrapper;
}

/** Identifier notices for free text, as the scan reports them (kinds and actions, never values). */
export function scanNotices(identifiers) {
  if (!identifiers || !identifiers.length) return null;
  return h("ul", { class: "scan-notices" }, identifiers.map((found) =>
    h("li", { text: t("scan.found", { kind: label("identifier", found.kind), action: label("action", found.action) }) })));
}

function askForm(ctx) {
  const { config } = ctx;
  const orgs = config.orgs.filter((o) => o !== session.user.org);
  const topic = select(config.topics.map((x) => [x, label("topic", x)]), { name: "topic" });
  const urgency = radios(t("ask.urgency"), config.urgencies.map((x) => [x, `${label("urgency", x)} – ${t(`urgency.help.${x}`)}`]),
    { name: "urgency", value: "immediate" });
  const targetOrg = select(orgs.map((o) => [o, orgName(o)]), { name: "target_org" });
  const pool = select([], { name: "pool", emptyLabel: t("ask.anypool") });
  const purpose = select(config.purposes.map((x) => [x, label("purpose", x)]), { name: "purpose", value: "general" });
  const question = h("textarea", { name: "question", rows: "5", maxlength: "10000" });
  const caseRef = h("input", { type: "text", name: "case_ref", maxlength: "128", autocomplete: "off" });
  const hetu = hetuField();
  const scanArea = h("div", { class: "scan", role: "status" });
  const purposeField = field(t("ask.purpose"), purpose, { hint: t("ask.purpose.help") });
  const questionField = field(t("ask.question"), question, { required: true, hint: t("ask.question.help") });
  const status = statusArea();
  const confirm = sensitiveConfirm();

  const fillPools = async () => {
    try {
      const experts = (await api("GET", query("/api/v1/experts", { org: targetOrg.value }))).items;
      const pools = [...new Set(experts.flatMap((e) => e.pools))].sort();
      replace(pool, h("option", { value: "", text: t("ask.anypool") }), pools.map((p) => h("option", { value: p, text: p })));
    } catch {
      // The list stays "any"; the server routes it.
    }
  };
  targetOrg.addEventListener("change", fillPools);
  fillPools();

  const scan = debounce(async () => {
    const text = question.value;
    if (!text.trim()) {
      scanArea.replaceChildren();
      return;
    }
    try {
      const result = await api("POST", "/api/v1/scan", { text, purpose: purpose.value });
      const notices = scanNotices(result.identifiers);
      replace(scanArea, notices ? [h("p", { class: "scan-title", text: t("scan.title") }), notices] : []);
    } catch {
      scanArea.replaceChildren();
    }
  }, 400);
  question.addEventListener("input", scan);

  const checkPurpose = () => {
    const clientGiven = !hetu.isEmpty();
    purposeField.setError(clientGiven && purpose.value === "general" ? t("ask.purpose.needed") : "");
  };
  purpose.addEventListener("change", () => {
    checkPurpose();
    scan();
  });
  hetu.input.addEventListener("input", checkPurpose);

  const submit = async (event) => {
    event.preventDefault();
    status.clear();
    checkPurpose();
    questionField.setError(question.value.trim() ? "" : t("ask.question.required"));
    let hetuValue = null;
    if (!hetu.isEmpty()) {
      hetuValue = hetu.value();
      if (!hetuValue) {
        hetu.input.focus();
        return;
      }
      if (purpose.value === "general") {
        purpose.focus();
        return;
      }
    }
    if (!question.value.trim()) {
      question.focus();
      return;
    }
    const confirmation = confirm.confirmation();
    if (confirmation === undefined) return;
    const button = event.submitter;
    if (button) button.disabled = true;
    const body = { topic: topic.value, urgency: urgency.value(), question: question.value, purpose: purpose.value,
      target_org: targetOrg.value };
    if (confirmation) body.sensitive_confirmation = confirmation;
    try {
      // A 35 § contact goes at once to the county's social-work intake: the service routes it.
      if (purpose.value === "sh.referral") body.urgency = "immediate";
      else if (pool.value) body.pool = pool.value;
      if (caseRef.value.trim()) body.case_ref = caseRef.value.trim();
      if (hetuValue) body.client_ref = (await api("POST", "/api/v1/clients", { hetu: hetuValue })).client_ref;
      const created = await api("POST", "/api/v1/consultations", body);
      rememberRouting(created.id, created);
      ctx.announce([t("ask.sent"), ...routingText(created.routing || null)].join(" "));
      ctx.navigate(`#/c/${created.id}`);
    } catch (error) {
      if (!confirm.refused(error, body.question)) status.show(errorBox(error));
    } finally {
      if (button) button.disabled = false;
    }
  };

  return h("form", { class: "ask-form", onsubmit: submit, novalidate: true },
    field(t("ask.topic"), topic),
    urgency,
    h("div", { class: "row" }, field(t("ask.target"), targetOrg), field(t("ask.pool"), pool)),
    questionField, scanArea, confirm.el,
    h("fieldset", { class: "client" }, h("legend", { text: t("ask.client") }),
      h("p", { class: "hint", text: t("ask.client.help") }), hetu, purposeField,
      field(t("ask.caseref"), caseRef, { hint: t("ask.caseref.help") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("ask.submit") })),
    status);
}

/** The user's latest consultations (an error box if they could not be read). */
async function myConsultations() {
  try {
    return (await api("GET", query("/api/v1/consultations", { limit: 50 }))).items;
  } catch (error) {
    return errorBox(error);
  }
}

/** Whether every word is found in what the list shows of ``c`` or in its question. */
function matchesAll(c, words) {
  const text = [label("topic", c.topic), label("urgency", c.urgency), label("purpose", c.purpose), label("status", c.status),
    c.question, c.target_org, c.client_ref, c.case_ref, formatDateTime(c.created_at)].filter(Boolean).join(" ").toLocaleLowerCase();
  return words.every((word) => text.includes(word));
}

function mineTable(items, empty) {
  return table(t("mine.caption"), [
    [t("mine.created"), (c) => formatDateTime(c.created_at)],
    [t("ask.topic"), (c) => {
      const count = unread(c.id);
      return [h("a", { href: `#/c/${c.id}`, text: label("topic", c.topic) }),
        count ? [" ", h("span", { class: "badge badge-unread", dataset: { unread: c.id }, text: t("mine.unread", { count: formatNumber(count) }) })] : null];
    }],
    [t("ask.urgency"), (c) => urgencyBadge(c.urgency)],
    [t("mine.status"), (c) => statusBadge(c.status)],
    [t("ask.target"), (c) => orgName(c.target_org)],
    [t("ask.purpose"), (c) => label("purpose", c.purpose)],
  ], items, { empty });
}
