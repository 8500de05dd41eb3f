// OpenID Connect authorization-code flow with PKCE (S256), done by the browser itself:
// discovery, the redirect to the identity provider, and the code exchange on return. The
// code is stripped from the address bar before it is exchanged; the token stays in the session.
// A refresh token, when the provider issues one, is kept in this module's memory only (never in
// any storage): it renews the access token (refresh_token grant) and is replaced when the
// provider rotates it. A reload, sign-out or a refusal forgets it.

import { codeChallenge, codeVerifier, randomToken } from "./pkce.js";

const PENDING = "konsulta.oidc";

// {refreshToken, tokenEndpoint, clientId} of this tab's sign-in, or null.
let held = null;

export class RenewalRefused extends Error {}

function redirectUri() {
  return `${location.origin}/`;
}

export async function discover(authority) {
  const base = authority.replace(/\/+$/, "");
  const response = await fetch(`${base}/.well-known/openid-configuration`, { credentials: "omit" });
  if (!response.ok) throw new Error("discovery");
  const meta = await response.json();
  if (meta.issuer && meta.issuer.replace(/\/+$/, "") !== base) throw new Error("issuer");
  if (!meta.authorization_endpoint || !meta.token_endpoint) throw new Error("discovery");
  if (meta.code_challenge_methods_supported && !meta.code_challenge_methods_supported.includes("S256")) {
    throw new Error("pkce");
  }
  return meta;
}

/** Step 1: remember verifier and state for this tab, and go to the identity provider. */
export async function beginSignIn(oidc, go = (url) => location.assign(url)) {
  const meta = await discover(oidc.authority);
  const verifier = codeVerifier();
  const state = randomToken();
  const nonce = randomToken();
  sessionStorage.setItem(PENDING, JSON.stringify({
    verifier, state, nonce, tokenEndpoint: meta.token_endpoint, redirectUri: redirectUri(),
  }));
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: oidc.client_id,
    redirect_uri: redirectUri(),
    scope: oidc.scope || "openid",
    state,
    nonce,
    code_challenge: await codeChallenge(verifier),
    code_challenge_method: "S256",
  }).toString();
  go(url.toString());
}

/** Whether this page load is the identity provider's answer. */
export function isCallback() {
  const params = new URLSearchParams(location.search);
  return params.has("state") && (params.has("code") || params.has("error"));
}

/** Step 2: strip the answer from the URL, check the state, exchange the code with the verifier. */
export async function completeSignIn(oidc) {
  const params = new URLSearchParams(location.search);
  history.replaceState(null, "", `${location.pathname}${location.hash}`);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (params.has("error")) throw new Error("denied");
  if (!pending || params.get("state") !== pending.state) throw new Error("state");
  const response = await fetch(pending.tokenEndpoint, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: pending.redirectUri,
      client_id: oidc.client_id,
      code_verifier: pending.verifier,
    }).toString(),
  });
  if (!response.ok) throw new Error("token");
  const tokens = await response.json();
  if (tokens.id_token && nonceOf(tokens.id_token) !== pending.nonce) throw new Error("nonce");
  const token = tokens.access_token;
  if (typeof token !== "string" || !token) throw new Error("token");
  held = typeof tokens.refresh_token === "string" && tokens.refresh_token
    ? { refreshToken: tokens.refresh_token, tokenEndpoint: pending.tokenEndpoint, clientId: oidc.client_id }
    : null;
  return token;
}

/** Whether this tab holds a refresh token (from its own sign-in, since its last load). */
export function canRefresh() {
  return held !== null;
}

export function forgetRefreshToken() {
  held = null;
}

/**
 * A fresh access token by the refresh_token grant (a public client: client_id, no secret). A
 * rotated refresh token replaces the old one. The provider's refusal (4xx, or an answer without an
 * access token) forgets the refresh token and throws RenewalRefused; a network failure or a 5xx
 * throws a plain Error (worth another try while the current token holds).
 */
export async function refreshAccessToken() {
  const current = held;
  if (!current) throw new RenewalRefused("none");
  const response = await fetch(current.tokenEndpoint, {
    method: "POST",
    credentials: "omit",
    cache: "no-store",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: current.refreshToken,
      client_id: current.clientId,
    }).toString(),
  });
  if (held !== current) throw new RenewalRefused("signed out");
  if (response.status >= 400 && response.status < 500) {
    held = null;
    throw new RenewalRefused("refused");
  }
  if (!response.ok) throw new Error("token");
  const tokens = await response.json();
  if (typeof tokens.access_token !== "string" || !tokens.access_token) {
    held = null;
    throw new RenewalRefused("token");
  }
  if (typeof tokens.refresh_token === "string" && tokens.refresh_token) {
    current.refreshToken = tokens.refresh_token;
  }
  return tokens.access_token;
}

function nonceOf(idToken) {
  try {
    const payload = idToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "="))).nonce;
  } catch {
    return undefined;
  }
}
