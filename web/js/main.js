// The app shell: start-up, sign-in, navigation by role, language switch, routing and the
// live alerts that follow an expert through every view.

import { api, loadCapabilities, may, whenUnauthenticated } from "./api.js";
import { h, replace, select, uid } from "./dom.js";
import { LANGUAGES, label, language, orgName, preferredLanguage, setLanguage, setOrgNames, t } from "./i18n.js";
import { connect, disconnect, forgetEvents, onLiveStatus, onSessionEnded, subscribe } from "./live.js";
import { startRenewal, stopRenewal, tokenFromElsewhere } from "./renewal.js";
import { beginSignIn, completeSignIn, isCallback } from "./oidc.js";
import { expiryOf, session } from "./session.js";
import { alertOffer, catchUpOffers, clearOfferAlerts, liveMark, offerTaken, restoreSound, soundOn, unlockSound } from "./alerts.js";
import { alertSettings, broadcastSignOut, claimSoundLeadership, clearUnread, messageElsewhere, notifyOutside, refreshTitle,
  releaseSoundLeadership, restoreUnread, routingStep, sessionFromOtherTabs, whenSignedOutElsewhere,
  whenTokenElsewhere } from "./notify.js";
import { signinView } from "./views/signin.js";
import { advisorView } from "./views/advisor.js";
import { consultationView } from "./views/consultation.js";
import { consentsView } from "./views/consents.js";
import { expertView } from "./views/expert.js";
import { privacyView } from "./views/privacy.js";
import { adminView } from "./views/admin.js";

// Who sees a view is the server's decision: each view needs one operation the user may call
// (its roles come from the server's action → roles table through the OpenAPI document).
const ASK = ["POST", "/api/v1/consultations"];
const CONSENTS = ["POST", "/api/v1/clients/{ref}/consents"];
// Social workers of a county's intake take statutory contacts (35 §, child welfare) from the same queue.
const QUEUE = ["GET", "/api/v1/queue"];
const SUPERVISE = ["GET", "/api/v1/audit/events"];
const ADMINISTER = ["POST", "/api/v1/roster/rules"];

const ROUTES = [
  { pattern: /^#\/signin$/, view: signinView, public: true },
  { pattern: /^#\/advisor$/, view: advisorView, needs: ASK },
  { pattern: /^#\/consents(?:\?ref=([\w-]+))?$/, view: consentsView, needs: CONSENTS },
  { pattern: /^#\/c\/([\w-]+)$/, view: consultationView },
  { pattern: /^#\/expert$/, view: expertView, needs: QUEUE },
  { pattern: /^#\/privacy(?:\/([\w-]+))?$/, view: privacyView, needs: SUPERVISE },
  { pattern: /^#\/admin(?:\/([\w-]+))?$/, view: adminView, needs: ADMINISTER },
];

// The route of a session that ran out, for after this tab's next sign-in (a hash: view and ids).
const AFTER = "konsulta.after";

const app = { config: null, cleanup: null, liveStatus: "offline", routed: false, drafts: null };

export function announce(text, { assertive = false } = {}) {
  const region = document.getElementById(assertive ? "announce-assertive" : "announce-polite");
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function homeFor(user) {
  if (!user) return "#/signin";
  if (may(...ASK)) return "#/advisor";
  if (may(...QUEUE)) return "#/expert";
  if (may(...SUPERVISE)) return "#/privacy";
  if (may(...ADMINISTER)) return "#/admin";
  return "#/signin";
}

function navItems() {
  if (!session.user) return [];
  const items = [];
  if (may(...ASK)) items.push(["#/advisor", t("nav.ask")]);
  if (may(...CONSENTS)) items.push(["#/consents", t("nav.consents")]);
  if (may(...QUEUE)) items.push(["#/expert", t("nav.queue")]);
  if (may(...SUPERVISE)) items.push(["#/privacy", t("nav.privacy")]);
  if (may(...ADMINISTER)) items.push(["#/admin", t("nav.admin")]);
  return items;
}

function renderChrome() {
  document.getElementById("skip-link").textContent = t("app.skip");
  document.getElementById("notices").setAttribute("aria-label", t("notices.label"));
  const nav = document.getElementById("nav");
  nav.setAttribute("aria-label", t("nav.label"));
  const current = location.hash.split("/").slice(0, 2).join("/");
  replace(nav, h("ul", {}, navItems().map(([href, text]) =>
    h("li", {}, h("a", { href, text, "aria-current": href === current ? "page" : null })))));

  const languageId = uid("lang");
  const languageSelect = select(LANGUAGES.map((l) => [l, t(`language.${l}`)]), { value: language(), id: languageId });
  languageSelect.addEventListener("change", async () => {
    // What is being typed outlives the change of language: the view is drawn again in the new
    // language and its form fields get their values back.
    const drafts = snapshotDrafts(document.getElementById("main"));
    await setLanguage(languageSelect.value);
    renderChrome();
    await route();
    restoreDrafts(document.getElementById("main"), drafts);
    announce(t("language.changed"));
  });
  const tools = [h("div", { class: "lang" }, h("label", { for: languageId, text: t("language.label") }), languageSelect)];
  if (session.user) {
    tools.push(
      h("p", { class: "who" },
        h("span", { class: "who-name", text: session.user.name }),
        h("span", { class: "who-org", text: ` · ${orgName(session.user.org)} · ${session.user.roles.map((r) => t(`role.${r}`)).join(", ")}` })),
      h("p", { class: ["live", `live-${app.liveStatus}`], id: "live-status", text: t(`live.${app.liveStatus}`) }),
      alertSettings({ unlockSound, soundOn, announce }),
      h("button", { type: "button", class: "secondary", onclick: signOut, text: t("signin.signout") }));
  }
  replace(document.getElementById("tools"), tools);
}

const DRAFT_FIELDS = "textarea[name], input[name], select[name]";
const toggles = (el) => el.type === "radio" || el.type === "checkbox";
const draftKey = (el) => `${el.tagName}:${el.name}:${toggles(el) ? el.value : ""}`;
const NOT_DRAFTS = new Set(["hidden", "file", "password", "submit", "button"]);

/** The values of the view's named form fields, keyed by name and place among fields of that name. */
function snapshotDrafts(main) {
  const seen = new Map();
  const drafts = [];
  for (const el of main.querySelectorAll(DRAFT_FIELDS)) {
    if (NOT_DRAFTS.has(el.type)) continue;
    const key = draftKey(el);
    const index = seen.get(key) || 0;
    seen.set(key, index + 1);
    const changed = toggles(el) ? el.checked !== el.defaultChecked
      : el.tagName === "SELECT" ? [...el.options].some((o) => o.selected !== o.defaultSelected) : el.value !== el.defaultValue;
    if (changed) drafts.push({ key, index, value: el.value, checked: el.checked, select: el.tagName === "SELECT" });
  }
  return drafts;
}

/** Puts the drafts back into the view drawn again; selects first, as other fields may depend on them. */
function restoreDrafts(main, drafts) {
  const fields = new Map();
  for (const el of main.querySelectorAll(DRAFT_FIELDS)) {
    const key = draftKey(el);
    if (!fields.has(key)) fields.set(key, []);
    fields.get(key).push(el);
  }
  const ordered = [...drafts.filter((d) => d.select), ...drafts.filter((d) => !d.select)];
  for (const draft of ordered) {
    const el = (fields.get(draft.key) || [])[draft.index];
    if (!el) continue;
    if (toggles(el)) el.checked = draft.checked;
    else if (draft.select && ![...el.options].some((o) => o.value === draft.value)) continue;
    else el.value = draft.value;
    el.dispatchEvent(new Event(draft.select || toggles(el) ? "change" : "input", { bubbles: true }));
  }
}

function signOut() {
  broadcastSignOut();
  signOutHere();
}

/** Sign out this tab (and, through signOut, every tab of this browser profile). */
function signOutHere() {
  sessionStorage.removeItem(AFTER);
  stopRenewal();
  disconnect();
  forgetEvents();
  releaseSoundLeadership();
  clearOfferAlerts();
  clearUnread();
  session.end();
  renderChrome();
  navigate("#/signin");
  announce(t("signin.signedout"));
}

export async function signedIn(token, via = "oidc") {
  const me = await api("GET", "/api/v1/me", undefined, { token });
  session.start(token, me, via);
  startRenewal();
  startLive();
  renderChrome();
  const back = returnRoute(me);
  app.drafts = back && back.drafts.length ? { route: back.route, drafts: back.drafts } : null;
  navigate((back && back.route) || homeFor(me));
}

/** The route the same user was in when their session ran out in this tab, once. */
function returnRoute(me) {
  let after = null;
  try {
    after = JSON.parse(sessionStorage.getItem(AFTER) || "null");
  } catch {
    after = null;
  }
  sessionStorage.removeItem(AFTER);
  if (!after || after.user !== me.id || typeof after.route !== "string") return null;
  if (!ROUTES.some((r) => !r.public && r.pattern.test(after.route))) return null;
  return { route: after.route, drafts: Array.isArray(after.drafts) ? after.drafts : [] };
}

function startLive() {
  // One tab of the user sounds and notifies (for an advisor: answers; for an expert: offers too).
  claimSoundLeadership();
  connect();
}

async function route() {
  if (app.cleanup) {
    try {
      app.cleanup();
    } catch (error) {
      console.error(error);
    }
    app.cleanup = null;
  }
  const hash = location.hash || "";
  if (!session.user) {
    if (hash !== "#/signin") {
      location.replace("#/signin");
      return;
    }
  } else if (!hash || hash === "#/" || hash === "#/signin") {
    location.replace(homeFor(session.user));
    return;
  }
  const found = ROUTES.map((r) => [r, r.pattern.exec(hash)]).find(([, m]) => m);
  const main = document.getElementById("main");
  // Each view draws into a box of its own: a view still loading when the user has gone on draws
  // into its detached box, never beside the next view, and its result is dropped.
  const seq = app.routeSeq = (app.routeSeq || 0) + 1;
  const box = h("div", { class: "view" });
  main.replaceChildren(box);
  renderChrome();
  if (!found || (found[0].needs && !may(...found[0].needs))) {
    box.append(h("h1", { tabindex: "-1", text: t("app.notfound") }),
      h("p", {}, h("a", { href: homeFor(session.user), text: t("app.home") })));
    focusHeading(main);
    return;
  }
  const [entry, match] = found;
  const ctx = { main: box, params: match.slice(1), config: app.config, announce, navigate, signedIn, signinError, beginSignIn };
  let cleanup = null;
  try {
    cleanup = (await entry.view(ctx)) || null;
  } catch (error) {
    console.error(error);
    box.append(h("p", { class: "error", role: "alert", text: t("error.view") }));
  }
  if (seq !== app.routeSeq) {
    if (cleanup) cleanup();
    return;
  }
  app.cleanup = cleanup;
  // The drafts of a session that ran out go back into the view they were written in (and are
  // dropped if the user goes elsewhere first).
  if (app.drafts && app.drafts.route === hash) restoreDrafts(main, app.drafts.drafts);
  if (app.drafts && hash !== "#/signin") app.drafts = null;
  document.title = `${main.querySelector("h1")?.textContent || ""} – Konsulta`;
  refreshTitle();
  // On a change of view, focus moves to its heading; on the first load it stays at the start,
  // so that the skip link is the first stop.
  if (app.routed) focusHeading(main);
  app.routed = true;
}

function focusHeading(main) {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

async function start() {
  await setLanguage(preferredLanguage());
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  app.config = await api("GET", "/api/v1/config");
  setOrgNames(app.config.org_names);
  await loadCapabilities();
  restoreSound();
  whenSignedOutElsewhere(signOutHere);
  const ended = () => {
    // The view the user was in is where the next sign-in of this tab returns to.
    // What was being typed there comes back too (in this tab's sessionStorage until then).
    if (session.user && location.hash && location.hash !== "#/signin") {
      sessionStorage.setItem(AFTER, JSON.stringify({ user: session.user.id, route: location.hash,
        drafts: snapshotDrafts(document.getElementById("main")) }));
    }
    stopRenewal();
    disconnect();
    releaseSoundLeadership();
    session.end();
    navigate("#/signin");
    announce(t("signin.expired"), { assertive: true });
  };
  whenUnauthenticated(ended);
  onSessionEnded(ended);
  onLiveStatus((status) => {
    app.liveStatus = status;
    const el = document.getElementById("live-status");
    if (el) {
      el.textContent = t(`live.${status}`);
      el.className = `live live-${status}`;
    }
  });
  subscribe((event) => {
    if (event.type === "consultation.offered" && may(...QUEUE)) {
      alertOffer(event, { announce, navigate });
      const offered = event.consultation || {};
      if (offered.id) {
        notifyOutside(`offer:${offered.id}:${event.reason || "new"}`, t("notify.offer.title"),
          t("alert.offered", { topic: label("topic", offered.topic), urgency: label("urgency", offered.urgency) }),
          () => navigate("#/expert"));
      }
    }
    if (event.type === "consultation.reoffered" || event.type === "consultation.escalated") routingStep(event);
    // A colleague claimed it, or it was closed: the alert and its count go at once.
    if (event.type === "consultation.claimed" || event.type === "consultation.closed") offerTaken(event);
    // An answer in a consultation that is not open in this tab: counted, titled, bannered, announced.
    const message = event.type === "message.created" && event.message;
    const fromOther = message && session.user && message.author && message.author.id !== session.user.id;
    if (fromOther && location.hash !== `#/c/${message.consultation_id}`) {
      messageElsewhere(message, { announce });
    }
    // Not in view in any tab of the user: one system notification (if they turned them on).
    if (fromOther) {
      notifyOutside(`message:${message.id}`, t("notify.answer.title"),
        t("notify.answer", { name: message.author.name || message.author.id }), () => navigate(`#/c/${message.consultation_id}`));
    }
    // Back after a break: errors of the break are no longer true (the views fetch what was missed).
    if (event.type === "live.resumed") {
      document.querySelectorAll(".error[data-network]").forEach((el) => el.remove());
      if (event.reconnected) announce(t("live.resumed"));
      if (may(...QUEUE)) {
        const asOf = liveMark();
        api("GET", "/api/v1/queue?limit=100")
          .then((page) => catchUpOffers(page.items || [], { announce, navigate }, asOf))
          .catch(() => {});
      }
    }
  });
  restoreUnread();
  if (app.config.oidc && isCallback()) {
    try {
      const token = await completeSignIn(app.config.oidc);
      await signedIn(token);
    } catch (error) {
      console.error(error);
      stopRenewal();
      session.end();
      app.signinError = t("signin.failed");
    }
  } else {
    session.restore();
    if (!session.user) {
      // Another tab of this browser profile may be signed in: this tab joins its session.
      const shared = await sessionFromOtherTabs();
      if (shared && (expiryOf(shared.token) || 0) > Date.now() + 5000) session.start(shared.token, shared.user, shared.via);
    }
    if (session.user) {
      startRenewal();
      startLive();
    }
  }
  whenTokenElsewhere(tokenFromElsewhere);
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "true";
}

export function signinError() {
  const message = app.signinError;
  app.signinError = null;
  return message;
}

start();
