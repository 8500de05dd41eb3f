// Token renewal: a fresh token is fetched before the current one expires and sent on the open
// live socket, so neither the API nor the live channel is interrupted. In development mode the
// server renews a demo user's token (POST /api/v1/dev/token/renew); a token from the
// organisation's identity provider is renewed with the refresh token its sign-in brought (the
// refresh_token grant at the provider's token endpoint). Without one (none issued, the tab was
// reloaded, or the provider refused it) the token is not renewed and its user signs in again at
// expiry.

import { api } from "./api.js";
import { reauthenticate } from "./live.js";
import { canRefresh, forgetRefreshToken, refreshAccessToken, RenewalRefused } from "./oidc.js";
import { broadcastToken } from "./notify.js";
import { expiryOf, session } from "./session.js";

const RETRY_MS = 5000;
let timer = null;

const renewers = {
  dev: { can: () => true, renew: async () => (await api("POST", "/api/v1/dev/token/renew")).token },
  oidc: { can: canRefresh, renew: refreshAccessToken },
};

/** Keep the session's token fresh, if the way it was obtained can renew it. */
export function startRenewal() {
  clearTimeout(timer);
  timer = null;
  const renewer = renewers[session.via];
  if (renewer && renewer.can()) schedule();
}

/** Stop renewing (signed out, or the session ended): a refresh token held is forgotten. */
export function stopRenewal() {
  clearTimeout(timer);
  timer = null;
  forgetRefreshToken();
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
  if (!renewer || !renewer.can()) return;
  let token;
  try {
    token = await renewer.renew();
  } catch (error) {
    // Refused: no more tries, the token runs out and the user signs in again. Otherwise (network)
    // the old token still holds for a while: try again.
    if (!(error instanceof RenewalRefused)) schedule(RETRY_MS);
    return;
  }
  if (!session.user) return; // signed out meanwhile
  session.renew(token);
  reauthenticate();
  broadcastToken();
  schedule();
}

/** A token renewed in another tab of the same user: taken here, and this tab's own renewal
 * waits for the new expiry (so the tabs of one session do not each renew it). */
export function tokenFromElsewhere(token) {
  if ((expiryOf(token) || 0) <= (session.expiresAt() || 0)) return; // not newer than the one held
  session.renew(token);
  reauthenticate();
  clearTimeout(timer);
  timer = null;
  const renewer = renewers[session.via];
  if (renewer && renewer.can()) schedule();
}
