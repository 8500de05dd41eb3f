// The live channel: one WebSocket per tab, authenticated by its first frame (never by URL),
// reconnecting with back-off; views subscribe to event types. A renewed token is sent on the
// open socket (reauthenticate), so the connection and its events carry on; the server closes a
// socket whose token ran out with 4401, and one whose session an administrator ended with 4403.
// Either ends the tab's session (4401 only when the token held is no longer valid).
//
// Resuming: each stored event carries an ``event_id``; the tab keeps the last one it processed
// (in memory and in sessionStorage, so a reload resumes too) and sends it in its first frame.
// The server then replays what came since and says ``live.resumed`` (``complete: false`` when
// some of it was pruned). An event already processed (id not above the last) is dropped. Views
// re-read what they show after a ``live.resumed`` that is not ``complete``: the server's own
// when it could not replay everything, or one made here when the server does not resume by id
// (its ``ready`` names no ``last_event_id``, or no ``live.resumed`` follows in time), and after
// the first ``ready`` of a page with nothing to resume from (its views may have read before it).

import { session } from "./session.js";

const listeners = new Set();
let socket = null;
let retry = 0;
let wanted = false;
let statusListener = () => {};
let pinger = null;
// Whether this tab has been live before: a later "ready" is a reconnection, after which views
// fetch what they may have missed (a synthetic event "live.resumed" follows the "ready").
let wasLive = false;
let sessionEnded = () => {};
// The last event processed in this tab (by the user it was for), or null: none yet.
const LAST = "konsulta.live.last";
let lastEventId = null;
let awaitingResume = null;
// Whether the resumption under way follows a break in this page (not the page's first connection).
let reconnected = false;
const RESUME_WAIT_MS = 5000;

function loadLast() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(LAST) || "null");
    return saved && session.user && saved.user === session.user.id && Number.isInteger(saved.id) ? saved.id : null;
  } catch {
    return null;
  }
}

function saveLast(id) {
  lastEventId = id;
  try {
    if (session.user) sessionStorage.setItem(LAST, JSON.stringify({ user: session.user.id, id }));
  } catch {
    // Storage refused: the id stays in memory for this page.
  }
}

/** The last event id this tab processed (null before the first). */
export function lastEvent() {
  return lastEventId;
}

function deliver(item) {
  for (const listener of [...listeners]) {
    try {
      listener(item);
    } catch (error) {
      console.error(error);
    }
  }
}

export function onSessionEnded(callback) {
  sessionEnded = callback;
}

/** Send the session's current token on the open socket (after a renewal). */
export function reauthenticate() {
  if (socket && socket.readyState === 1 && session.token) {
    socket.send(JSON.stringify({ type: "auth", token: session.token }));
  }
}

export function onLiveStatus(callback) {
  statusListener = callback;
}

export function subscribe(callback) {
  listeners.add(callback);
  return () => listeners.delete(callback);
}

export function connect() {
  wanted = true;
  if (socket || !session.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
  socket = ws;
  statusListener("connecting");
  if (lastEventId === null) lastEventId = loadLast();
  // The id sent is the one this connection resumes from (a reload of the tab resumes too).
  const from = lastEventId;
  ws.addEventListener("open", () => {
    const frame = { type: "auth", token: session.token };
    if (from !== null) frame.last_event_id = from;
    ws.send(JSON.stringify(frame));
  });
  ws.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.type === "ready") {
      retry = 0;
      statusListener("live");
      clearInterval(pinger);
      pinger = setInterval(() => ws.readyState === 1 && ws.send(JSON.stringify({ type: "ping" })), 25000);
      deliver(event);
      ready(event, from);
      return;
    }
    if (event.type === "live.resumed") {
      clearTimeout(awaitingResume);
      awaitingResume = null;
      deliver({ ...event, complete: event.complete === true, reconnected });
      return;
    }
    if (Number.isInteger(event.event_id)) {
      if (lastEventId !== null && event.event_id <= lastEventId) return; // processed already
      saveLast(event.event_id);
    }
    deliver(event);
  });
  ws.addEventListener("close", (event) => {
    if (socket === ws) socket = null;
    clearInterval(pinger);
    clearTimeout(awaitingResume);
    awaitingResume = null;
    if (event.code === 4403 && wanted) {
      statusListener("offline");
      sessionEnded();
      return;
    }
    // 4401 with a token that is still good (renewed just as the old one ran out): connect again.
    const fresh = (session.expiresAt() || 0) > Date.now() + 1000;
    if ((event.code === 4401 && !fresh) || !wanted) {
      statusListener("offline");
      // The token ran out without a renewal: the session is over, the user signs in again.
      if (event.code === 4401 && wanted) sessionEnded();
      return;
    }
    statusListener("reconnecting");
    retry = Math.min(retry + 1, 6);
    setTimeout(() => wanted && connect(), 500 * 2 ** retry);
  });
}

/** After ``ready``: whether the server resumes by event id, and if not, what views must re-read. */
function ready(event, from) {
  const resumes = Number.isInteger(event.last_event_id);
  const again = wasLive;
  wasLive = true;
  reconnected = again;
  if (!resumes) {
    // A server that does not resume: after a break every open view re-reads what it shows.
    if (again) deliver({ type: "live.resumed", complete: false, reconnected });
    return;
  }
  if (from !== null && event.last_event_id < from) {
    // The server counts from lower than this tab has seen (its store was replaced): start over
    // from its count, and re-read.
    saveLast(event.last_event_id);
    deliver({ type: "live.resumed", complete: false, reconnected });
    return;
  }
  if (from === null) {
    // Nothing to resume from (the first connection of this tab): what follows is new, but what
    // happened between the views' first reads and this "ready" came by neither. The views read
    // again (the shell catches up the queue), without announcing a reconnection.
    if (lastEventId === null) saveLast(event.last_event_id);
    deliver({ type: "live.resumed", complete: false, reconnected });
    return;
  }
  // The server replays what came after ``from`` and then says so; if it never does, re-read.
  clearTimeout(awaitingResume);
  awaitingResume = setTimeout(() => {
    awaitingResume = null;
    deliver({ type: "live.resumed", complete: false, reconnected });
  }, RESUME_WAIT_MS);
}

/** Signed out: the next user of this tab starts from nothing. */
export function forgetEvents() {
  lastEventId = null;
  try {
    sessionStorage.removeItem(LAST);
  } catch {
    // Nothing stored.
  }
}

export function disconnect() {
  wanted = false;
  wasLive = false;
  // Read again from storage at the next connection, for whoever signs in then.
  lastEventId = null;
  clearTimeout(awaitingResume);
  awaitingResume = null;
  clearInterval(pinger);
  if (socket) socket.close(1000);
  socket = null;
}
