// The admin's roster editor: weekly rules (Helsinki time, off on public holidays) and on-duty
// periods (any day, holidays included) of the organisation's named experts, each removable, and
// the Finnish public holidays of a year.

import { api, offers, query } from "../api.js";
import { checkboxes, field, h, replace, select, table } from "../dom.js";
import { formatDate, formatDateTime, formatNumber, locale, t } from "../i18n.js";
import { session } from "../session.js";
import { helsinkiToIso, helsinkiToday } from "../time.js";
import { confirmDialog, errorBox, loading, statusArea } from "./common.js";

const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7];

function weekday(n, style = "short") {
  // 2024-01-01 was a Monday: ISO weekday n is 2024-01-0n.
  return new Intl.DateTimeFormat(locale(), { weekday: style, timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, n)));
}

function ruleText(rule) {
  const valid = rule.valid_from || rule.valid_until
    ? ` (${formatDate(rule.valid_from) || "…"} – ${formatDate(rule.valid_until) || "…"})` : "";
  return `${weekday(rule.weekday)} ${rule.start}–${rule.end}${valid}`;
}

function periodText(period) {
  return `${formatDateTime(period.starts_at)} – ${formatDateTime(period.ends_at)}`;
}

export async function rosterEditor(body, ctx) {
  const org = session.user.org;
  const overview = h("div", {}, loading());
  const status = statusArea();
  const forms = h("div");
  const holidays = h("div");
  replace(body,
    h("section", { class: "card", "aria-labelledby": "roster-h" },
      h("h2", { id: "roster-h", text: t("roster.title") }),
      h("p", { class: "hint", text: t("roster.edit.help") }), status, overview),
    forms, holidays);

  let experts = [];
  const refresh = async () => {
    let roster;
    try {
      // A month ahead (the service allows a window of up to 62 days), so new periods show.
      const now = Date.now();
      roster = await api("GET", query("/api/v1/roster", { org, from: new Date(now - 86400000).toISOString(),
        to: new Date(now + 31 * 86400000).toISOString() }));
    } catch (error) {
      replace(overview, errorBox(error));
      return;
    }
    experts = roster.experts || [];
    const remove = (kind, item, expert, text) => h("button", {
      type: "button", class: "link danger", text: t("roster.remove"),
      "aria-label": t("roster.remove.for", { what: text, name: expert.name }),
      dataset: { remove: item.id },
      onclick: async () => {
        // A removal takes the expert off duty at once: it is confirmed first.
        const yes = await confirmDialog({ title: t("roster.remove.confirm.title"),
          text: t("roster.remove.confirm", { what: text, name: expert.name }), confirm: t("roster.remove"), danger: true });
        if (!yes) return;
        try {
          await api("DELETE", `/api/v1/roster/${kind}/${encodeURIComponent(item.id)}`);
          ctx.announce(t("roster.removed"));
          status.show(h("p", { class: "ok", text: t("roster.removed") }));
          await refresh();
          document.getElementById("roster-h")?.setAttribute("tabindex", "-1");
          document.getElementById("roster-h")?.focus();
        } catch (error) {
          status.show(errorBox(error));
        }
      },
    });
    const list = (items, kind, expert, text) => (items.length
      ? h("ul", { class: "plain-list roster-items" }, items.map((item) =>
        h("li", {}, h("span", { text: text(item) }), " ", remove(kind, item, expert, text(item)))))
      : "—");
    replace(overview,
      h("p", { class: "hint", text: t("roster.window", { from: formatDateTime(roster.from), to: formatDateTime(roster.to) }) }),
      table(t("roster.caption"), [
        [t("roster.expert"), (e) => e.name],
        [t("roster.pool"), (e) => e.pools.join(", ")],
        [t("roster.onduty"), (e) => (e.on_duty ? t("app.yes") : t("app.no"))],
        [t("roster.rules"), (e) => list(e.rules, "rules", e, ruleText)],
        [t("roster.periods"), (e) => list(e.periods, "periods", e, periodText)],
        [t("roster.next"), (e) => (e.on_duty_intervals.length
          ? `${formatDateTime(e.on_duty_intervals[0].from)} – ${formatDateTime(e.on_duty_intervals[0].to)}` : "—")],
      ], experts, { empty: t("roster.none") }),
      (roster.holidays || []).length ? h("p", { class: "hint" }, `${t("roster.holidays")}: `,
        h("span", { lang: "fi", text: roster.holidays.map((d) => `${formatDate(d.date)} ${d.name}`).join(", ") })) : null);
  };
  await refresh();
  if (experts.length) replace(forms, ruleForm(ctx, experts, refresh), periodForm(ctx, experts, refresh));
  if (offers("GET", "/api/v1/holidays")) await holidaysSection(holidays);
}

function expertSelect(experts) {
  return select(experts.map((e) => [e.id, `${e.name} (${e.id})`]), { name: "user_id" });
}

function ruleForm(ctx, experts, refresh) {
  const expert = expertSelect(experts);
  const days = checkboxes(t("roster.weekdays"), WEEKDAYS.map((n) => [String(n), weekday(n, "long")]), { name: "weekday", checked: ["1"] });
  const start = h("input", { type: "time", name: "start", value: "08:00", required: true });
  const end = h("input", { type: "time", name: "end", value: "16:00", required: true });
  const from = h("input", { type: "date", name: "valid_from" });
  const until = h("input", { type: "date", name: "valid_until" });
  const status = statusArea();
  return h("section", { class: "card", "aria-labelledby": "rule-h" },
    h("h2", { id: "rule-h", text: t("roster.rule.new") }),
    h("p", { class: "hint", text: t("roster.rule.help") }),
    h("form", {
      class: "rule-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const chosen = days.values().map(Number);
        if (!chosen.length) {
          status.show(h("p", { class: "error", text: t("roster.weekdays.required") }));
          days.querySelector("input").focus();
          return;
        }
        if (!start.value || !end.value) {
          status.show(h("p", { class: "error", text: t("roster.times.required") }));
          (start.value ? end : start).focus();
          return;
        }
        // One weekly rule per chosen day; if one fails, the message says which days were added.
        const added = [];
        for (const n of chosen) {
          const body = { user_id: expert.value, weekday: n, start: start.value, end: end.value === "00:00" ? "24:00" : end.value };
          if (from.value) body.valid_from = from.value;
          if (until.value) body.valid_until = until.value;
          try {
            await api("POST", "/api/v1/roster/rules", body);
            added.push(weekday(n, "long"));
          } catch (error) {
            status.show(h("div", {}, errorBox(error), added.length
              ? h("p", { text: t("roster.rule.partial", { days: added.join(", "), failed: weekday(n, "long") }) }) : null));
            await refresh();
            return;
          }
        }
        const done = t("roster.rule.added.days", { days: added.join(", ") });
        ctx.announce(done);
        status.show(h("p", { class: "ok", text: done }));
        await refresh();
      },
    },
    field(t("roster.expert"), expert), days,
    h("div", { class: "row" }, field(t("roster.start"), start, { hint: t("roster.helsinki") }),
      field(t("roster.end"), end, { hint: t("roster.end.help") })),
    h("div", { class: "row" }, field(t("roster.validfrom"), from, { hint: t("roster.optional") }),
      field(t("roster.validuntil"), until, { hint: t("roster.optional") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("roster.rule.submit") }))),
    status);
}

function periodForm(ctx, experts, refresh) {
  const today = helsinkiToday();
  const expert = expertSelect(experts);
  const startDate = h("input", { type: "date", name: "start_date", value: today, required: true });
  const startTime = h("input", { type: "time", name: "start_time", value: "08:00", required: true });
  const endDate = h("input", { type: "date", name: "end_date", value: today, required: true });
  const endTime = h("input", { type: "time", name: "end_time", value: "16:00", required: true });
  const status = statusArea();
  return h("section", { class: "card", "aria-labelledby": "period-h" },
    h("h2", { id: "period-h", text: t("roster.period.new") }),
    h("p", { class: "hint", text: t("roster.period.help") }),
    h("form", {
      class: "period-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const startsAt = helsinkiToIso(startDate.value, startTime.value);
        const endsAt = helsinkiToIso(endDate.value, endTime.value);
        if (!startsAt || !endsAt) {
          status.show(h("p", { class: "error", text: t("roster.times.required") }));
          return;
        }
        try {
          await api("POST", "/api/v1/roster/periods", { user_id: expert.value, starts_at: startsAt, ends_at: endsAt });
          ctx.announce(t("roster.period.added"));
          status.show(h("p", { class: "ok", text: t("roster.period.added") }));
          await refresh();
        } catch (error) {
          status.show(errorBox(error));
        }
      },
    },
    field(t("roster.expert"), expert),
    h("div", { class: "row" }, field(t("roster.startdate"), startDate), field(t("roster.start"), startTime, { hint: t("roster.helsinki") })),
    h("div", { class: "row" }, field(t("roster.enddate"), endDate), field(t("roster.end"), endTime, { hint: t("roster.helsinki") })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("roster.period.submit") }))),
    status);
}

async function holidaysSection(container) {
  const year = h("input", { type: "number", name: "year", min: "1900", max: "2200", step: "1",
    value: helsinkiToday().slice(0, 4), class: "year" });
  const out = h("div");
  const load = async () => {
    try {
      const result = await api("GET", query("/api/v1/holidays", { year: year.value }));
      replace(out, table(t("holidays.caption", { year: formatNumber(result.year, { useGrouping: false }) }), [
        [t("holidays.date"), (d) => formatDate(d.date)],
        [t("holidays.weekday"), (d) => weekday(new Date(`${d.date}T12:00:00Z`).getUTCDay() || 7, "long")],
        [t("holidays.name"), (d) => h("span", { lang: "fi", text: d.name })],
      ], result.items || []));
    } catch (error) {
      replace(out, errorBox(error));
    }
  };
  replace(container, h("section", { class: "card", "aria-labelledby": "holidays-h" },
    h("h2", { id: "holidays-h", text: t("holidays.title") }),
    h("p", { class: "hint", text: t("holidays.help") }),
    h("form", { class: "inline-form", onsubmit: (event) => { event.preventDefault(); load(); } },
      field(t("holidays.year"), year), h("button", { type: "submit", class: "secondary", text: t("holidays.show") })),
    out));
  await load();
}
