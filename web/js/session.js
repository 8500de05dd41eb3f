// The signed-in user's token lives in memory and in sessionStorage, which dies with the tab —
// never in localStorage, cookies or URLs.

const KEY = "konsulta.session";

export const session = {
  token: null,
  user: null,

  restore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (saved && typeof saved.token === "string") {
        this.token = saved.token;
        this.user = saved.user;
      }
    } catch {
      sessionStorage.removeItem(KEY);
    }
  },

  start(token, user) {
    this.token = token;
    this.user = user;
    sessionStorage.setItem(KEY, JSON.stringify({ token, user }));
  },

  end() {
    this.token = null;
    this.user = null;
    sessionStorage.removeItem(KEY);
  },

  has(role) {
    return Boolean(this.user && this.user.roles && this.user.roles.includes(role));
  },
};
