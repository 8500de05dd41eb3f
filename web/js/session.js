// The signed-in user's token lives in memory and in sessionStorage, which dies with the tab —
// never in localStorage, cookies or URLs.

const KEY = "konsulta.session";

/** When ``token`` expires (ms since the epoch), read from its exp claim; null if unreadable. */
export function expiryOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "="))).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

export const session = {
  token: null,
  user: null,
  // How the token was obtained ("dev": the development issuer, which can renew it; "oidc").
  via: null,

  restore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (saved && typeof saved.token === "string") {
        this.token = saved.token;
        this.user = saved.user;
        this.via = saved.via || null;
      }
    } catch {
      sessionStorage.removeItem(KEY);
    }
  },

  start(token, user, via = null) {
    this.token = token;
    this.user = user;
    this.via = via;
    this.save();
  },

  /** A fresh token for the same user (renewal): the user and the way of signing in stay. */
  renew(token) {
    this.token = token;
    this.save();
  },

  save() {
    sessionStorage.setItem(KEY, JSON.stringify({ token: this.token, user: this.user, via: this.via }));
  },

  /** When the token expires (ms since the epoch), read from its exp claim; null if unreadable. */
  expiresAt() {
    return expiryOf(this.token);
  },

  end() {
    this.token = null;
    this.user = null;
    this.via = null;
    sessionStorage.removeItem(KEY);
  },

  has(role) {
    return Boolean(this.user && this.user.roles && this.user.roles.includes(role));
  },
};
