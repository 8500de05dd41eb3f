// Token renewal: a fresh token is fetched before the current one expires and sent on the open
// live socket, so neither the API nor the live channel is interrupted. In development mode the
// server renews a demo user's token (POST /api/v1/dev/token/renew); a token from the
// organisation's identity provider is not renewed here, and its user signs in again at expiry.

import { api } from "./api.js";
import { reauthenticate } from "./live.js";
import { session } from "./session.js";

const RETRY_MS = 5000;
let timer = null;

const renewers = {
  dev: async () => (await api("POST", "/api/v1/dev/token/renew")).token,
};

/** Keep the session's token fresh, if the way it was obtained can renew it. */
export function startRenewal() {
  stopRenewal();
  if (renewers[session.via]) schedule();
}

export function stopRenewal() {
  clearTimeout(timer);
  timer = null;
}

function schedule(delay) {
  const expires = session.expiresAt();
  if (!expires) return;
  const left = expires - Date.now();
  if (left <= 0) return;
  // Renew a minute before expiry; a short-lived token after two thirds of what is left.
  const wait = delay !== undefined ? Math.min(delay, left / 2) : (left > 180000 ? left - 60000 : (left * 2) / 3);
  timer = setTimeout(renew, wait);
}

async function renew() {
  const renewer = renewers[session.via];
  if (!renewer) return;
  let token;
  try {
    token = await renewer();
  } catch {
    schedule(RETRY_MS); // the old token still holds for a while: try again
    return;
  }
  if (!session.user) return; // signed out meanwhile
  session.renew(token);
  reauthenticate();
  schedule();
}
