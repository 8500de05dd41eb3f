// What the user must not miss outside the view they are in: answers to their consultations
// (an unread count per consultation, the count in the document title, a polite banner with a
// link and a polite announcement), the routing outcome of the questions they sent, and what the
// tabs of one browser profile agree on (one tab sounds an alert; signing out signs out all).
//
// Unread counts and routing outcomes are kept in sessionStorage (identifiers and numbers only,
// no content), so that they survive a reload of the tab and die with it.

import { h } from "./dom.js";
import { formatDateTime, formatDuration, formatNumber, t } from "./i18n.js";
import { session } from "./session.js";
import { countdown } from "./ticker.js";

const UNREAD = "konsulta.unread";
const ROUTING = "konsulta.routing";
const counts = new Map();
const unreadListeners = new Set();

function load(key) {
  try {
    const value = JSON.parse(sessionStorage.getItem(key) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function save(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or refused: the counts stay in memory for this page.
  }
}

// -- the document title ---------------------------------------------------------------------

/** Set one source's count for the title ("(3) Konsulta"): offers waiting, unread answers. */
export function setTitleCount(source, count) {
  counts.set(source, count);
  refreshTitle();
}

export function refreshTitle() {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const base = document.title.replace(/^\(\d+\) /, "");
  document.title = total ? `(${total}) ${base}` : base;
}

// -- unread answers -------------------------------------------------------------------------

export function unread(id) {
  return Number(load(UNREAD)[id]?.count || 0);
}

function unreadTotal() {
  return Object.values(load(UNREAD)).reduce((sum, entry) => sum + Number(entry.count || 0), 0);
}

export function onUnread(callback) {
  unreadListeners.add(callback);
  return () => unreadListeners.delete(callback);
}

function unreadChanged() {
  setTitleCount("unread", unreadTotal());
  for (const listener of [...unreadListeners]) listener();
}

/** The consultation is being read: its count goes and so does its banner. */
export function markSeen(id) {
  const all = load(UNREAD);
  if (all[id]) {
    delete all[id];
    save(UNREAD, all);
  }
  document.querySelector(`.notice-message[data-consultation="${CSS.escape(id)}"]`)?.remove();
  unreadChanged();
}

/** A message from someone else in a consultation that is not open in this tab. */
export function messageElsewhere(message, { announce }) {
  const id = message.consultation_id;
  const all = load(UNREAD);
  const entry = all[id] || { count: 0 };
  entry.count += 1;
  all[id] = entry;
  save(UNREAD, all);
  const name = message.author.name || message.author.id;
  const text = t("unread.banner", { name, count: formatNumber(entry.count) });
  const notices = document.getElementById("notices");
  let banner = notices.querySelector(`.notice-message[data-consultation="${CSS.escape(id)}"]`);
  const content = [h("p", { text }), h("a", { href: `#/c/${id}`, class: "button-link", text: t("unread.open") }),
    h("button", { type: "button", class: "secondary", text: t("alert.dismiss"), onclick: () => banner?.remove() })];
  if (banner) banner.replaceChildren(...content);
  else {
    banner = h("div", { class: "notice notice-message", dataset: { consultation: id } }, content);
    notices.append(banner);
  }
  announce(text);
  unreadChanged();
}

export function restoreUnread() {
  unreadChanged();
}

export function clearUnread() {
  sessionStorage.removeItem(UNREAD);
  document.querySelectorAll(".notice-message").forEach((el) => el.remove());
  unreadChanged();
}

// -- where a question went --------------------------------------------------------------------

/** Keep what routing answered for a new consultation (the 201's ``routing``, ``offered_to``). */
export function rememberRouting(id, created) {
  const routing = created.routing || (created.offered_to !== undefined ? { state: created.offered_to ? "offered" : "nobody_on_duty", offered_to: created.offered_to } : null);
  if (!routing) return;
  const all = load(ROUTING);
  all[id] = { ...withWaitUntil(routing), steps: [] };
  save(ROUTING, all);
}

/** The instant (this browser's clock) the expected wait runs out, from the seconds just read. */
function withWaitUntil(routing) {
  return typeof routing.expected_wait_seconds === "number"
    ? { ...routing, wait_until: Date.now() + routing.expected_wait_seconds * 1000 } : routing;
}

/** Where the consultation stands as the server read it now (GET's ``routing``), with the steps
 * seen live in this tab; null once it is claimed or closed. */
export function routingRead(id, routing) {
  const all = load(ROUTING);
  if (!routing) return all[id] || null;
  all[id] = { ...withWaitUntil(routing), steps: (all[id] && all[id].steps) || [] };
  save(ROUTING, all);
  return all[id];
}

/** A re-offer or an escalation (``consultation.reoffered`` / ``.escalated``) of a consultation. */
export function routingStep(event) {
  const id = event.consultation_id;
  if (!id) return null;
  const all = load(ROUTING);
  const entry = all[id] || { state: "offered", steps: [] };
  entry.steps = [...(entry.steps || []), { kind: event.type.split(".")[1], offered_to: event.offered_to, pool: event.pool,
    at: event.at, next_at: event.next_at }].slice(-5);
  all[id] = entry;
  save(ROUTING, all);
  return entry;
}

export function routingOf(id) {
  return load(ROUTING)[id] || null;
}

/** The routing outcome as text keys: to how many it was offered or that nobody is on duty, when
 * the next one is, the expected wait, and each re-offer or escalation since. */
function routingParts(routing) {
  if (!routing) return [];
  const parts = [];
  if (routing.state === "offered") parts.push(["routing.offered", { count: formatNumber(routing.offered_to || 0) }]);
  else if (routing.state === "all_busy") parts.push(["routing.allbusy", { count: formatNumber(routing.on_duty || 0) }]);
  else parts.push(["routing.nobody", {}]);
  if (routing.next_on_duty) parts.push(["routing.next", { when: formatDateTime(routing.next_on_duty) }]);
  if (typeof routing.expected_wait_seconds === "number") {
    parts.push(["routing.wait", { time: formatDuration(routing.expected_wait_seconds) }, "wait"]);
  }
  if (typeof routing.queue_position === "number" && routing.queue_position > 0) {
    parts.push(["routing.position", { position: formatNumber(routing.queue_position) }]);
  }
  const steps = routing.steps || [];
  const next = routing.next_step_at || routing.sla_due_at;
  if (!steps.length && next) parts.push(["routing.nextstep", { when: formatDateTime(next) }]);
  for (const step of steps) {
    const key = step.kind === "escalated" ? "routing.escalated" : "routing.reoffered";
    parts.push([key, { when: formatDateTime(step.at), count: formatNumber(step.offered_to || 0), pool: step.pool || "—" }]);
    if (step.next_at) parts.push(["routing.nextstep", { when: formatDateTime(step.next_at) }]);
  }
  return parts;
}

/** The routing outcome in words (for announcements). */
export function routingText(routing) {
  return routingParts(routing).map(([key, params]) => t(key, params));
}

/** The routing outcome for the page: the expected wait, as read, and a clock that counts it down. */
export function routingLines(routing) {
  return routingParts(routing).map(([key, params, kind]) => {
    if (kind !== "wait" || typeof routing.wait_until !== "number") return t(key, params);
    return [t(key, params), " ", h("span", { class: "wait-left" }, t("routing.left"), " ",
      countdown(routing.wait_until, { className: "clock wait-clock" }))];
  });
}

// -- the tabs of one browser profile -----------------------------------------------------------

const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("konsulta") : null;
let onSignOutElsewhere = () => {};

/** Signing out in one tab signs out every tab of this browser profile (a shared counter PC). */
export function broadcastSignOut() {
  channel?.postMessage({ type: "signout" });
}

export function whenSignedOutElsewhere(callback) {
  onSignOutElsewhere = callback;
}

channel?.addEventListener("message", (event) => {
  if (event.data && event.data.type === "signout" && session.user) onSignOutElsewhere();
});

// One tab per user sounds the alerts: the one holding the user's lock (Web Locks). The others
// show the banner and announce it, silently. Without Web Locks every tab sounds.
let leader = { user: null, held: false, release: null };

export function claimSoundLeadership() {
  const user = session.user && session.user.id;
  if (!user || leader.user === user || !(navigator.locks && navigator.locks.request)) return;
  releaseSoundLeadership();
  const mine = { user, held: false, release: null };
  leader = mine;
  navigator.locks.request(`konsulta.sound.${user}`, () => new Promise((resolve) => {
    if (leader !== mine) {
      resolve();
      return;
    }
    mine.held = true;
    mine.release = resolve;
  })).catch(() => {});
}

export function releaseSoundLeadership() {
  if (leader.release) leader.release();
  leader = { user: null, held: false, release: null };
}

export function soundsHere() {
  if (!(navigator.locks && navigator.locks.request)) return true;
  return leader.held && leader.user === (session.user && session.user.id);
}
