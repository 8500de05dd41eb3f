// What the user must not miss outside the view they are in: answers to their consultations
// (an unread count per consultation, the count in the document title, a polite banner with a
// link and a polite announcement), the routing outcome of the questions they sent, and what the
// tabs of one browser profile agree on (one tab sounds an alert; signing out signs out all).
//
// Unread counts and routing outcomes are kept in sessionStorage (identifiers and numbers only,
// no content), so that they survive a reload of the tab and die with it.

import { h, replace } from "./dom.js";
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

// One session for the tabs of a browser profile: a tab opened while another is signed in takes
// that tab's session (asked for over the channel, as sessionStorage is per tab), and a token
// renewed in one tab is taken by the others of the same user.
let sessionOffers = [];
let onTokenElsewhere = () => {};

/** A signed-in tab's session ({token, user, via}), or null if none answers within ``wait`` ms. */
export function sessionFromOtherTabs(wait = 300) {
  if (!channel) return Promise.resolve(null);
  return new Promise((resolve) => {
    const take = (offer) => {
      sessionOffers = sessionOffers.filter((f) => f !== take);
      clearTimeout(timer);
      resolve(offer);
    };
    const timer = setTimeout(() => take(null), wait);
    sessionOffers.push(take);
    channel.postMessage({ type: "session?" });
  });
}

/** Tell the other tabs of this user the renewed token. */
export function broadcastToken() {
  if (session.user && session.token) channel?.postMessage({ type: "token", user: session.user.id, token: session.token });
}

export function whenTokenElsewhere(callback) {
  onTokenElsewhere = callback;
}

channel?.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "signout" && session.user) onSignOutElsewhere();
  if (data.type === "seen" && session.user && data.user === session.user.id) seenElsewhere.add(data.key);
  if (data.type === "session?" && session.user && session.token) {
    // The way of renewing goes as "shared": the refresh token stays in the tab that holds it.
    channel.postMessage({ type: "session", token: session.token, user: session.user,
      via: session.via === "dev" ? "dev" : "shared" });
  }
  if (data.type === "session" && typeof data.token === "string" && data.user) {
    for (const take of [...sessionOffers]) take({ token: data.token, user: data.user, via: data.via });
  }
  if (data.type === "token" && session.user && data.user === session.user.id && typeof data.token === "string"
      && data.token !== session.token) {
    onTokenElsewhere(data.token);
  }
});

// -- system notifications -----------------------------------------------------------------------
//
// Asked for only when the user presses the button (never on page load). An answer or an offer
// that arrives while no tab of the user is in view gives one system notification: a tab that
// shows it tells the others so ("seen", over the BroadcastChannel); of the hidden tabs only the
// one that sounds (the Web Lock holder) notifies, after a short wait for such a word. The text
// says who answered or what kind of question came, never the message or the question.

const SEEN_WAIT_MS = 400;
const seenElsewhere = new Set();

export function notificationPermission() {
  return typeof Notification === "function" ? Notification.permission : "unsupported";
}

/** Ask the browser for permission (from a button press only). */
export async function askNotifications() {
  if (typeof Notification !== "function") return "unsupported";
  try {
    return await Notification.requestPermission();
  } catch {
    return Notification.permission;
  }
}

/** Something the user must not miss (``key`` names it the same in every tab): notified by the
 * system when no tab of the user is in view. ``open`` runs when the notification is clicked. */
export function notifyOutside(key, title, body, open) {
  const user = session.user && session.user.id;
  if (!user) return;
  if (!document.hidden) {
    channel?.postMessage({ type: "seen", user, key });
    return;
  }
  if (!soundsHere() || notificationPermission() !== "granted") return;
  setTimeout(() => {
    if (seenElsewhere.has(key) || !document.hidden || !session.user || session.user.id !== user) return;
    try {
      const shown = new Notification(title, { body, tag: key, lang: document.documentElement.lang || "fi" });
      shown.addEventListener("click", () => {
        window.focus();
        open();
        shown.close();
      });
    } catch {
      // Notifications refused by the platform: the title count and the banner remain.
    }
  }, SEEN_WAIT_MS);
}

/** The user's switch for alerts outside the page: a button that asks for permission and turns the
 * tone on (a press is what lets the page play sound), or what the browser allows now. */
export function alertSettings({ unlockSound, soundOn, announce }) {
  const box = h("div", { class: "alert-settings", id: "alert-settings" });
  const draw = () => {
    const permission = notificationPermission();
    if (permission === "granted" && soundOn()) {
      replace(box, h("p", { class: "hint", text: t("notify.on") }));
      return;
    }
    const parts = [h("button", { type: "button", class: "secondary", id: "alerts-enable", text: t("notify.enable"),
      onclick: async () => {
        unlockSound();
        const answer = permission === "default" ? await askNotifications() : permission;
        draw();
        announce(answer === "granted" ? t("notify.on") : t("notify.soundonly"));
        document.getElementById("alert-settings")?.querySelector("button, p")?.focus?.();
      } })];
    if (permission === "denied") parts.push(h("p", { class: "hint", text: t("notify.denied") }));
    replace(box, parts);
  };
  draw();
  return box;
}

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
