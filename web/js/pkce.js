// Proof Key for Code Exchange (RFC 7636) with the S256 method.

export function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A code verifier: 32 random bytes → 43 characters of the unreserved set (RFC 7636 §4.1). */
export function codeVerifier() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** code_challenge = BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2). */
export async function codeChallenge(verifier) {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) throw new Error("invalid code verifier");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export function randomToken() {
  return base64url(crypto.getRandomValues(new Uint8Array(24)));
}
