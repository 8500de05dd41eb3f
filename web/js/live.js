// The live channel: one WebSocket per tab, authenticated by its first frame (never by URL),
// reconnecting with back-off; views subscribe to event types. A renewed token is sent on the
// open socket (reauthenticate), so the connection and its events carry on; the server closes a
// socket whose token ran out with 4401, and one whose session an administrator ended with 4403.
// Either ends the tab's session (4401 only when the token held is no longer valid).

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
  ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token: session.token })));
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
    }
    const events = event.type === "ready" && wasLive ? [event, { type: "live.resumed" }] : [event];
    if (event.type === "ready") wasLive = true;
    for (const item of events) {
      for (const listener of [...listeners]) {
        try {
          listener(item);
        } catch (error) {
          console.error(error);
        }
      }
    }
  });
  ws.addEventListener("close", (event) => {
    if (socket === ws) socket = null;
    clearInterval(pinger);
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

export function disconnect() {
  wanted = false;
  wasLive = false;
  clearInterval(pinger);
  if (socket) socket.close(1000);
  socket = null;
}
