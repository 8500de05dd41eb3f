// The expert's view: on or off duty, the live queue of consultations offered to them (an
// immediate one is alerted by sound and a banner from any view), claiming, their own claimed
// and closed consultations (a closed one can become a knowledge entry), the knowledge-base
// entries of colleagues waiting for approval, and who of their organisation is on duty.

import { api, offers, query } from "../api.js";
import { debounce, h, replace, table } from "../dom.js";
import { formatDate, formatDateTime, formatDuration, formatNumber, label, locale, orgName, t } from "../i18n.js";
import { subscribe } from "../live.js";
import { serial } from "../serial.js";
import { countdown, countup } from "../ticker.js";
import { session } from "../session.js";
import { dismiss } from "../alerts.js";
import { onUnread, unread } from "../notify.js";
import { errorBox, heading, loading, statusArea, statusBadge, urgencyBadge } from "./common.js";

export async function expertView(ctx) {
  const { main } = ctx;
  main.append(heading(t("expert.title")));
  const dutyBox = h("section", { class: "card duty-box", "aria-labelledby": "myduty-h" }, h("h2", { id: "myduty-h", text: t("expert.duty") }));
  const queue = h("section", { class: "card", "aria-labelledby": "queue-h" }, h("h2", { id: "queue-h", text: t("queue.title") }));
  const mine = h("section", { class: "card", "aria-labelledby": "claimed-h" }, h("h2", { id: "claimed-h", text: t("expert.claimed") }));
  const roster = h("section", { class: "card", "aria-labelledby": "roster-h" }, h("h2", { id: "roster-h", text: t("roster.title") }));
  const closed = h("section", { class: "card", "aria-labelledby": "closed-h" }, h("h2", { id: "closed-h", text: t("expert.closed") }));
  const drafts = offers("GET", "/api/v1/knowledge/drafts")
    ? h("section", { class: "card", "aria-labelledby": "drafts-h" }, h("h2", { id: "drafts-h", text: t("kb.drafts.title") }),
      h("p", { class: "hint", text: t("kb.drafts.help") }))
    : null;
  main.append(dutyBox, queue, mine, closed, drafts, roster);
  const closedBody = h("div", {}, loading());
  closed.append(closedBody);
  const draftsBody = h("div", {}, loading());
  if (drafts) drafts.append(draftsBody);
  const dutyBody = h("div", {}, loading());
  const queueBody = h("div", {}, loading());
  const mineBody = h("div", {}, loading());
  const rosterBody = h("div", {}, loading());
  dutyBox.append(dutyBody);
  queue.append(queueBody);
  mine.append(mineBody);
  roster.append(rosterBody);

  const refreshQueue = serial(async () => replace(queueBody, await queueTable(ctx, refreshAll)));
  const refreshMine = serial(async () => replace(mineBody, await claimedTable()));
  const refreshClosed = serial(async () => replace(closedBody, await closedTable()));
  const refreshDrafts = async () => {
    if (drafts) replace(draftsBody, await draftsList(ctx, refreshDrafts));
  };
  const refreshRoster = serial(async () => {
    const experts = await api("GET", query("/api/v1/experts", { org: session.user.org })).then((p) => p.items).catch(() => null);
    replace(dutyBody, dutyToggle(ctx, experts, refreshRoster));
    replace(rosterBody, await rosterView(experts));
  });
  async function refreshAll() {
    await Promise.all([refreshQueue(), refreshMine(), refreshClosed()]);
  }
  // Listening starts before the first reads: an offer arriving while they run refreshes after them.
  const later = debounce(refreshAll, 150);
  const laterRoster = debounce(refreshRoster, 300);
  const stopUnread = onUnread(later);
  const stopLive = subscribe((event) => {
    if (event.type.startsWith("consultation.") || event.type === "live.resumed") later();
    if (event.type === "presence" || event.type === "expert.updated" || event.type === "live.resumed") laterRoster();
  });
  await Promise.all([refreshAll(), refreshRoster(), refreshDrafts()]);
  return () => {
    stopUnread();
    stopLive();
  };
}

function dutyToggle(ctx, experts, refresh) {
  const me = (experts || []).find((e) => e.id === session.user.id);
  if (!me) return h("p", { class: "hint", text: t("expert.notnamed") });
  const status = statusArea();
  const box = h("input", { type: "checkbox", id: "on-duty", checked: me.on_duty, role: "switch" });
  box.addEventListener("change", async () => {
    try {
      await api("PUT", `/api/v1/experts/${encodeURIComponent(me.id)}`, { on_duty: box.checked });
      ctx.announce(box.checked ? t("expert.onduty.now") : t("expert.offduty.now"));
      await refresh();
      document.getElementById("on-duty")?.focus();
    } catch (error) {
      box.checked = !box.checked;
      status.show(errorBox(error));
    }
  });
  return h("div", {},
    h("div", { class: "check switch" }, box, h("label", { for: "on-duty", text: t("expert.onduty") })),
    h("p", { class: "hint", text: me.on_duty ? t("expert.onduty.help") : t("expert.offduty.help") }),
    h("p", { class: "hint", text: `${t("expert.pools")}: ${me.pools.join(", ") || "—"} · ${t("expert.topics")}: ${me.topics.map((x) => label("topic", x)).join(", ")}` }),
    status);
}

async function queueTable(ctx, refresh) {
  let items;
  const routing = new Map();
  try {
    items = (await api("GET", query("/api/v1/consultations", { status: "open", limit: 100 }))).items;
    if (offers("GET", "/api/v1/queue")) {
      for (const entry of (await api("GET", query("/api/v1/queue", { limit: 100 }))).items) routing.set(entry.id, entry);
    }
  } catch (error) {
    return errorBox(error);
  }
  const rank = { immediate: 0, today: 1, normal: 2 };
  items.sort((a, b) => (rank[a.urgency] ?? 3) - (rank[b.urgency] ?? 3) || String(a.created_at).localeCompare(String(b.created_at)));
  const status = statusArea();
  return h("div", {}, table(t("queue.caption"), [
    [t("mine.created"), (c) => formatDateTime(c.created_at)],
    [t("ask.urgency"), (c) => urgencyBadge(c.urgency)],
    [t("ask.topic"), (c) => label("topic", c.topic)],
    [t("consultation.from"), (c) => `${orgName(c.origin_org)} · ${c.created_by}`],
    [t("ask.question"), (c) => h("span", { class: "clip", text: c.question })],
    [t("queue.routing"), (c) => routingText(routing.get(c.id), c)],
    [t("consents.actions"), (c) => [
      h("button", { type: "button", class: "claim", dataset: { consultation: c.id },
        "aria-label": t("queue.claim.for", { topic: label("topic", c.topic), when: formatDateTime(c.created_at) }),
        onclick: async (event) => {
          event.target.disabled = true;
          try {
            await api("POST", `/api/v1/consultations/${c.id}/claim`);
            dismiss(c.id);
            ctx.announce(t("queue.claimed"));
            ctx.navigate(`#/c/${c.id}`);
          } catch (error) {
            status.show(errorBox(error));
            await refresh();
          }
        }, text: t("queue.claim") }),
      " ",
      h("a", { href: `#/c/${c.id}`, text: t("queue.open"), "aria-label": t("queue.open.for", { topic: label("topic", c.topic) }) }),
    ]],
  ], items, { empty: t("queue.empty") }), status);
}

/** A text with a node where its ``{name}`` is. */
function withNode(key, name, node) {
  const [before, after] = t(key, { [name]: "\u0001" }).split("\u0001");
  return [before, node, after];
}

/** The pool, how long it has waited and the time left to its deadline, both ticking each second
 * (from the durations the server read, so the browser's clock need not agree with the server's). */
function routingText(entry, c) {
  const parts = [entry && entry.escalated_pool ? t("queue.escalated", { pool: entry.escalated_pool }) : (c.pool || "")];
  if (entry && typeof entry.waiting_seconds === "number") {
    parts.push(h("span", { class: "queue-waited", title: formatDuration(entry.waiting_seconds) },
      withNode("queue.waiting", "time", countup(Date.now() - entry.waiting_seconds * 1000))));
  }
  if (entry && entry.sla_due_at) {
    const span = Date.parse(entry.sla_due_at) - Date.parse(entry.created_at);
    const dueAt = Date.now() + span - (entry.waiting_seconds || 0) * 1000;
    parts.push(h("span", { class: "queue-due" }, t("queue.due", { when: formatDateTime(entry.sla_due_at) }), " (",
      Number.isNaN(span) ? "" : countdown(dueAt, { over: "queue.overdue", className: "clock due-clock" }), ")"));
  }
  return parts.filter(Boolean).flatMap((part, i) => (i ? [" · ", part] : [part]));
}

async function claimedTable() {
  let items;
  try {
    items = (await api("GET", query("/api/v1/consultations", { status: "claimed", limit: 100 }))).items;
  } catch (error) {
    return errorBox(error);
  }
  return table(t("expert.claimed.caption"), [
    [t("mine.created"), (c) => formatDateTime(c.created_at)],
    [t("ask.topic"), (c) => {
      const count = unread(c.id);
      return [h("a", { href: `#/c/${c.id}`, text: label("topic", c.topic) }),
        count ? [" ", h("span", { class: "badge badge-unread", dataset: { unread: c.id }, text: t("mine.unread", { count: formatNumber(count) }) })] : null];
    }],
    [t("ask.urgency"), (c) => urgencyBadge(c.urgency)],
    [t("mine.status"), (c) => statusBadge(c.status)],
    [t("consultation.from"), (c) => `${orgName(c.origin_org)} · ${c.created_by}`],
  ], items, { empty: t("expert.claimed.none") });
}

async function closedTable() {
  let items;
  try {
    items = (await api("GET", query("/api/v1/consultations", { status: "closed", limit: 20 }))).items;
  } catch (error) {
    return errorBox(error);
  }
  return table(t("expert.closed.caption"), [
    [t("mine.created"), (c) => formatDateTime(c.created_at)],
    [t("ask.topic"), (c) => h("a", { href: `#/c/${c.id}`, text: label("topic", c.topic),
      "aria-label": t("expert.closed.open", { topic: label("topic", c.topic), when: formatDateTime(c.created_at) }) })],
    [t("consultation.outcome"), (c) => label("outcome", c.outcome)],
    [t("consultation.from"), (c) => `${orgName(c.origin_org)} · ${c.created_by}`],
  ], items, { empty: t("expert.closed.none") });
}

/** Entries of the organisation waiting for approval: another expert than the author approves. */
async function draftsList(ctx, refresh) {
  let items;
  try {
    items = (await api("GET", query("/api/v1/knowledge/drafts", { limit: 50 }))).items || [];
  } catch (error) {
    return errorBox(error);
  }
  if (!items.length) return h("p", { class: "empty", text: t("kb.drafts.none") });
  const status = statusArea();
  return h("div", {}, status, h("ul", { class: "kb-list kb-drafts" }, items.map((entry) => {
    const own = entry.created_by === session.user.id;
    return h("li", { dataset: { entry: entry.id } },
      h("p", { class: "kb-q" }, h("strong", { text: entry.question }), ` (${label("topic", entry.topic)})`),
      h("p", { class: "kb-a", text: entry.answer }),
      h("p", { class: "hint", text: t("kb.drafts.by", { user: entry.created_by || "", when: formatDateTime(entry.created_at) }) }),
      own ? h("p", { class: "hint", text: t("kb.drafts.own") })
        : h("button", {
          type: "button", class: "approve", dataset: { entry: entry.id },
          "aria-label": t("kb.drafts.approve.for", { question: entry.question.slice(0, 60) }),
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              await api("POST", `/api/v1/knowledge/${encodeURIComponent(entry.id)}/approve`);
              ctx.announce(t("kb.drafts.approved"));
              await refresh();
              const heading = document.getElementById("drafts-h");
              heading?.setAttribute("tabindex", "-1");
              heading?.focus();
            } catch (error) {
              event.target.disabled = false;
              status.show(error.status === 422 && error.code === "personal_data_found"
                ? h("div", { class: "error", role: "alert" }, h("p", { text: t("kb.drafts.personal") }))
                : errorBox(error));
            }
          },
          text: t("kb.drafts.approve"),
        }));
  })));
}

const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7];

function weekdayName(n) {
  // 2024-01-01 was a Monday: ISO weekday n is 2024-01-0n.
  return new Intl.DateTimeFormat(locale(), { weekday: "short", timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, n)));
}

/** The roster: weekly rules, periods and the coming on-duty intervals (GET /api/v1/roster), or
 * who is on duty now from the directory when the service has no roster. */
export async function rosterView(experts, { org } = {}) {
  if (offers("GET", "/api/v1/roster")) {
    let roster;
    try {
      roster = await api("GET", query("/api/v1/roster", { org }));
    } catch (error) {
      return errorBox(error);
    }
    const interval = (i) => `${formatDateTime(i.starts_at || i.from)} – ${formatDateTime(i.ends_at || i.to)}`;
    return [
      h("p", { class: "hint", text: t("roster.window", { from: formatDateTime(roster.from), to: formatDateTime(roster.to) }) }),
      table(t("roster.caption"), [
        [t("roster.expert"), (e) => e.name],
        [t("roster.pool"), (e) => e.pools.join(", ")],
        [t("roster.onduty"), (e) => (e.on_duty ? t("app.yes") : t("app.no"))],
        [t("roster.rules"), (e) => (e.rules.length ? h("ul", { class: "plain-list" }, e.rules.map((r) =>
          h("li", { text: `${weekdayName(r.weekday)} ${r.start}–${r.end}` }))) : "—")],
        [t("roster.periods"), (e) => (e.periods.length ? h("ul", { class: "plain-list" }, e.periods.map((p) =>
          h("li", { text: interval(p) }))) : "—")],
        [t("roster.next"), (e) => (e.on_duty_intervals.length ? interval(e.on_duty_intervals[0]) : "—")],
      ], roster.experts || [], { empty: t("roster.none") }),
      (roster.holidays || []).length ? h("p", { class: "hint", text: `${t("roster.holidays")}: ${roster.holidays.map((d) => `${formatDate(d.date)} ${d.name}`).join(", ")}` }) : null,
    ];
  }
  if (!experts) return null;
  return table(t("roster.now"), [
    [t("roster.expert"), (e) => e.name],
    [t("roster.pool"), (e) => e.pools.join(", ")],
    [t("roster.onduty"), (e) => (e.on_duty ? t("app.yes") : t("app.no"))],
    [t("roster.presence"), (e) => label("presence", e.presence)],
  ], experts, { empty: t("roster.none") });
}

export { WEEKDAYS, weekdayName };
