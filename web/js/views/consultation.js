// One consultation, for every participant: the question, the conversation as this reader may
// see it (withheld items say why), live updates and read receipts, and a composer that shows
// before sending what the policy will withhold from whom. Experts claim here; anyone closes.
// Participants attach files (downloaded with the token, never a token in a URL) and add
// colleagues; after closing, an expert who took part writes an anonymised knowledge entry.

import { api, download, may, offers, query, saveBlob, upload } from "../api.js";
import { debounce, field, h, replace, select, uid } from "../dom.js";
import { formatDateTime, formatNumber, label, language, orgName, t } from "../i18n.js";
import { subscribe } from "../live.js";
import { session } from "../session.js";
import { dismiss } from "../alerts.js";
import { markSeen, routingLines, routingOf, routingRead, routingText } from "../notify.js";
import { errorBox, errorText, flaggedMark, heading, knownNames, sensitiveConfirm, sensitiveList, statusArea, statusBadge,
  urgencyBadge } from "./common.js";
import { scanNotices } from "./advisor.js";
import { loadPolicyTexts, policyText } from "../policytext.js";

const REFERRAL_CATEGORIES = new Set(["service_need.referral", "housing.risk"]);
const ATTACHMENT = "application.attachment";
const PREVIEWABLE = /\.(png|jpe?g|pdf)$/i;
const PDF_SIGNATURE = "%PDF-";

export async function consultationView(ctx) {
  const { main, config } = ctx;
  const id = ctx.params[0];
  // Live events are listened to from the start: one that comes while the view is still loading
  // (the expert claims as the advisor's page opens) is held and applied once it is drawn.
  const early = [];
  let onEvent = (event) => early.push(event);
  const stop = subscribe((event) => onEvent(event));
  let consultation;
  let names;
  try {
    [consultation, names] = await Promise.all([api("GET", `/api/v1/consultations/${id}`), knownNames(), loadPolicyTexts()]);
  } catch (error) {
    stop();
    main.append(heading(t("consultation.title")), errorBox(error));
    return null;
  }
  dismiss(id);
  markSeen(id);
  // Where it went and what happens next, as the server reads it now (kept for this tab).
  routingRead(id, consultation.routing);
  // Display names the app knows (the user's own, the directory's experts, the authors of messages).
  const state = { consultation, messages: [], receipts: new Map(), consents: null,
    names, withheld: new Map(), outbox: null };

  const header = h("div", { class: "c-header" });
  // Where the question went and what happens next, while it waits (updated live).
  const routingBox = h("section", { class: "card routing", "aria-labelledby": "routing-h" });
  const actions = h("div", { class: "c-actions" });
  // The conversation is a live region (role log): new messages are read out as they arrive.
  const log = h("ol", { class: "messages" });
  // The secrecy marking comes with the messages, in every language (consult/model/secrecy.py).
  const marking = h("p", { class: "secrecy-mark", hidden: true });
  const composer = h("div", { class: "composer" });
  const extras = h("div", { class: "c-extras" });
  // The log scrolls by itself (and by keyboard): a new message is brought into view unless the
  // reader has scrolled up to read, who is then offered a button to the new ones.
  const scroller = h("div", { class: "messages-log", role: "log", "aria-live": "polite", "aria-labelledby": "conv-h",
    tabindex: "0" }, log);
  const unseen = [];
  const newButton = h("button", { type: "button", class: "secondary new-messages", text: t("thread.new", { count: 0 }),
    onclick: () => {
      const first = unseen[0];
      toEnd();
      if (first) {
        first.setAttribute("tabindex", "-1");
        first.focus({ preventScroll: true });
      }
    } });
  // In a box of its own: the box's hidden attribute holds whatever the buttons' display is.
  const newBox = h("div", { class: "new-messages-box", hidden: true }, newButton);
  const atEnd = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  const toEnd = () => {
    scroller.scrollTop = scroller.scrollHeight;
    unseen.length = 0;
    newBox.hidden = true;
  };
  scroller.addEventListener("scroll", () => {
    if (unseen.length && atEnd()) {
      unseen.length = 0;
      newBox.hidden = true;
    }
  });
  main.append(heading(t("consultation.title")), header, routingBox, actions,
    h("section", { class: "card", "aria-labelledby": "conv-h" }, marking, h("h2", { id: "conv-h", text: t("consultation.conversation") }),
      scroller, newBox),
    composer, extras);

  let shownStatus = null;
  const renderRouting = () => {
    const lines = state.consultation.status === "open" ? routingLines(routingOf(id)) : [];
    routingBox.hidden = !lines.length;
    replace(routingBox, lines.length ? [h("h2", { id: "routing-h", text: t("routing.title") }),
      h("ul", { class: "plain-list routing-lines" }, lines.map((line) => h("li", {}, line)))] : []);
  };
  const render = () => {
    const c = state.consultation;
    replace(header, headerView(c, state.names));
    renderRouting();
    replace(actions, actionsView(ctx, state, render));
    // The composer and the extras keep what is being typed unless the state really changed.
    const key = `${c.status}:${isParticipant(c)}`;
    if (key === shownStatus) return;
    shownStatus = key;
    replace(composer, c.status === "closed" || !isParticipant(c)
      ? h("p", { class: "hint", text: c.status === "closed" ? t("consultation.closed.help") : t("consultation.claim.help") })
      : composerView(ctx, state, config));
    replace(extras,
      c.status !== "closed" && isParticipant(c) && offers("POST", "/api/v1/consultations/{id}/attachments")
        ? attachmentView(ctx, state) : null,
      c.status === "closed" && canWriteKnowledge(c) ? knowledgeView(ctx, state, config) : null);
  };
  render();

  const renderedIds = new Set();
  // ``arriving``: a message that comes while the conversation is open (not the first load).
  const addMessage = (message, { arriving = false } = {}) => {
    if (renderedIds.has(message.id)) return;
    renderedIds.add(message.id);
    state.messages.push(message);
    const follow = !arriving || atEnd() || message.author.id === session.user.id;
    const el = messageView(message, state);
    // A message being sent stays last until it is sent.
    log.insertBefore(el, log.querySelector("li.pending"));
    if (follow) toEnd();
    else {
      unseen.push(el);
      newButton.textContent = t("thread.new", { count: formatNumber(unseen.length) });
      newBox.hidden = false;
    }
    const author = message.author || {};
    if (author.id && author.name && !state.names.has(author.id)) {
      state.names.set(author.id, author.name);
      replace(header, headerView(state.consultation, state.names));
    }
  };
  // Every page of the conversation; messages already shown are skipped, so this also fetches
  // what was missed while the live connection was down.
  const loadMessages = async () => {
    let cursor = null;
    let added = 0;
    do {
      const page = await api("GET", query(`/api/v1/consultations/${id}/messages`, { limit: 200, cursor }));
      for (const message of page.items) {
        if (!renderedIds.has(message.id)) added += 1;
        addMessage(message);
      }
      if (page.secrecy) {
        marking.textContent = page.secrecy[language()] || page.secrecy.fi;
        marking.hidden = false;
      }
      cursor = page.next;
    } while (cursor);
    if (added) document.getElementById("no-messages")?.remove();
    return added;
  };
  try {
    await loadMessages();
  } catch (error) {
    log.append(h("li", { class: "load-error" }, errorBox(error)));
  }
  if (!state.messages.length) log.append(h("li", { class: "empty", id: "no-messages", text: t("consultation.nomessages") }));
  toEnd();
  markRead(state);

  // The sender's own messages on their way: shown at once as being sent, then as sent (with what
  // the policy withheld from whom), or as not sent with a button to try again.
  state.outbox = (body) => {
    document.getElementById("no-messages")?.remove();
    const status = h("p", { class: "msg-state", text: t("thread.sending") });
    const count = (body.data || []).length;
    const el = h("li", { class: "message mine pending", dataset: { state: "sending" } },
      h("p", { class: "meta" }, h("span", { class: "author", text: session.user.name || session.user.id })),
      body.text ? h("p", { class: "text", text: body.text }) : null,
      count ? h("p", { class: "hint", text: t("thread.items", { count: formatNumber(count) }) }) : null,
      status);
    log.append(el);
    toEnd();
    return {
      sent(message) {
        el.remove();
        const withheld = (message.policy && message.policy.withheld) || [];
        if (withheld.length) state.withheld.set(message.id, withheld);
        // The message as the conversation shows it (the send's own answers stay with the composer).
        const shown = { ...message };
        for (const key of ["policy", "identifiers", "sensitive"]) delete shown[key];
        addMessage(shown, { arriving: true });
        // Already drawn from the live event: the withheld list is added to it.
        const drawn = log.querySelector(`li[data-message="${CSS.escape(message.id)}"]`);
        if (withheld.length && drawn && !drawn.querySelector(".withheld-by")) drawn.append(withheldByView(withheld, state));
      },
      failed(retry) {
        el.dataset.state = "failed";
        replace(status, h("span", { text: t("thread.failed") }), " ",
          h("button", { type: "button", class: "secondary retry", text: t("thread.retry"), onclick: () => {
            el.dataset.state = "sending";
            replace(status, t("thread.sending"));
            retry();
          } }));
      },
      drop() {
        el.remove();
      },
    };
  };

  // Live consultation events applied so far: a read that was answered before one of them came
  // may be older than what is shown, and is made again rather than drawn over it.
  let applied = 0;
  const readAgain = async () => {
    for (;;) {
      const before = applied;
      const fresh = await api("GET", `/api/v1/consultations/${id}`);
      if (applied === before) return fresh;
    }
  };

  const catchUp = async () => {
    try {
      state.consultation = { ...state.consultation, ...await readAgain() };
      routingRead(id, state.consultation.routing);
      render();
      log.querySelectorAll("li.load-error").forEach((el) => el.remove());
      const added = await loadMessages();
      if (added) {
        ctx.announce(t("consultation.caughtup", { count: formatNumber(added) }));
        markRead(state);
      }
    } catch (error) {
      log.querySelectorAll("li.load-error").forEach((el) => el.remove());
      log.append(h("li", { class: "load-error" }, errorBox(error)));
    }
  };

  onEvent = (event) => {
    if (event.type === "live.resumed") {
      // Replayed in full by the server (each event once), nothing is re-read unless loading failed.
      if (!event.complete || log.querySelector("li.load-error")) catchUp();
    } else if ((event.type === "consultation.reoffered" || event.type === "consultation.escalated") && event.consultation_id === id) {
      // Recorded by the app shell (main.js) whichever view is open; shown here, then read again
      // for the wait and the place in the queue as they are now.
      renderRouting();
      ctx.announce(routingText(routingOf(id)).slice(-2).join(" "));
      readAgain().then((fresh) => {
        state.consultation = { ...state.consultation, ...fresh };
        routingRead(id, fresh.routing);
        renderRouting();
      }).catch(() => {});
    } else if (event.type === "message.created" && event.message && event.message.consultation_id === id) {
      document.getElementById("no-messages")?.remove();
      addMessage(event.message, { arriving: true });
      if (event.message.author.id !== session.user.id) {
        ctx.announce(t("consultation.newmessage", { name: event.message.author.name }));
        markRead(state);
      }
    } else if (event.type === "message.read" && event.consultation_id === id && event.user_id !== session.user.id) {
      for (const message of state.messages) {
        if (message.author.id === session.user.id) {
          const receipts = message.read_by || (message.read_by = []);
          if (!receipts.some((r) => r.user_id === event.user_id)) receipts.push({ user_id: event.user_id, read_at: event.read_at });
          state.receipts.get(message.id)?.update();
        }
        if (message.id === event.message_id) break;
      }
    } else if (event.type === "consultation.claimed" && !event.consultation && event.consultation_id === id) {
      // Another expert took it: this user is told who, not shown the consultation again.
      applied += 1;
      state.consultation = { ...state.consultation, status: event.status, claimed_by: event.claimed_by, claimed_at: event.claimed_at };
      render();
      ctx.announce(t("consultation.claimed.announce"));
    } else if (event.type.startsWith("consultation.") && event.consultation && event.consultation.id === id) {
      applied += 1;
      state.consultation = { ...state.consultation, ...event.consultation };
      const c = state.consultation;
      // A claim event may come without the participant list: the claiming expert has joined.
      if (event.type === "consultation.claimed" && c.claimed_by && !(c.participants || []).some((p) => p.user_id === c.claimed_by)) {
        c.participants = [...(c.participants || []), { user_id: c.claimed_by, org: c.target_org, role: "expert" }];
      }
      render();
      if (event.type === "consultation.claimed") ctx.announce(t("consultation.claimed.announce"));
      if (event.type === "consultation.closed") ctx.announce(t("consultation.closed.announce"));
    }
  };
  // What came while loading may be older than what was read: the messages are added (each once)
  // and the consultation is read again rather than overwritten with an older state.
  const held = early.splice(0);
  for (const event of held) if (event.type === "message.created" || event.type === "message.read") onEvent(event);
  if (held.some((event) => event.type.startsWith("consultation.") || event.type === "live.resumed")) catchUp();
  return stop;
}

function isParticipant(consultation) {
  return (consultation.participants || []).some((p) => p.user_id === session.user.id);
}

async function markRead(state) {
  const last = [...state.messages].reverse().find((m) => m.author.id !== session.user.id);
  if (!last || !isParticipant(state.consultation)) return;
  try {
    await api("POST", `/api/v1/consultations/${state.consultation.id}/read`, { message_id: last.id });
  } catch {
    // A receipt is a courtesy; the conversation goes on without it.
  }
}

/** A person by display name where the app knows it, else by user id. */
function person(names, userId) {
  return (userId && names && names.get(userId)) || userId || "";
}

function headerView(c, names) {
  const facts = [
    [t("ask.topic"), label("topic", c.topic)],
    [t("ask.urgency"), urgencyBadge(c.urgency)],
    [t("mine.status"), statusBadge(c.status)],
    [t("ask.purpose"), label("purpose", c.purpose)],
    [t("consultation.from"), `${orgName(c.origin_org)} · ${person(names, c.created_by)}`],
    [t("ask.target"), [orgName(c.target_org), c.pool ? ` · ${c.pool}` : ""].join("")],
    [t("mine.created"), formatDateTime(c.created_at)],
  ];
  if (c.claimed_by) facts.push([t("consultation.claimedby"), `${person(names, c.claimed_by)} · ${formatDateTime(c.claimed_at)}`]);
  if (c.client_ref) facts.push([t("consultation.client"), c.client_ref]);
  if (c.case_ref) facts.push([t("ask.caseref"), c.case_ref]);
  if ((c.participants || []).length) {
    facts.push([t("participants.title"), h("ul", { class: "plain-list participants" }, c.participants.map((p) =>
      h("li", { dataset: { user: p.user_id }, text: `${person(names, p.user_id)} · ${orgName(p.org)} · ${label("role", p.role)}` })))]);
  }
  if (c.outcome) {
    facts.push([t("consultation.outcome"), [`${label("outcome", c.outcome)}${c.outcome_note ? ` – ${c.outcome_note}` : ""}`,
      flaggedMark(c.outcome_flagged_categories, "note")]]);
  }
  return h("div", { class: "card" },
    h("dl", { class: "facts" }, facts.map(([term, value]) => [h("dt", { text: term }), h("dd", {}, value)])),
    h("h2", { class: "question-h", text: t("ask.question") }),
    h("p", { class: "question", text: c.question }),
    flaggedMark(c.flagged_categories),
    c.content_destroyed ? h("p", { class: "hint", text: t("consultation.shredded") }) : null);
}

function actionsView(ctx, state, render) {
  const c = state.consultation;
  const out = [];
  const status = statusArea();
  if (c.status === "open" && may("POST", "/api/v1/consultations/{id}/claim") && !isParticipant(c)) {
    out.push(h("button", {
      type: "button", class: "claim",
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          state.consultation = await api("POST", `/api/v1/consultations/${c.id}/claim`);
          render();
          ctx.announce(t("queue.claimed"));
          document.querySelector(".composer textarea")?.focus();
        } catch (error) {
          status.show(errorBox(error.status === 409 ? { status: 409 } : error));
          event.target.disabled = false;
        }
      },
      text: t("queue.claim"),
    }));
  }
  if (c.client_ref && may("POST", "/api/v1/clients/{ref}/consents")) {
    out.push(h("a", { class: "button-link secondary", href: `#/consents?ref=${c.client_ref}`, text: t("consultation.consents") }));
  }
  if (c.status !== "closed" && isParticipant(c)) {
    // The forms survive a re-render (a live event, another's claim) with what is being typed and
    // a confirmation being asked for; they are built anew only when what they offer changed.
    const forms = state.forms || (state.forms = new Map());
    const kept = (name, key, build) => {
      const held = forms.get(name);
      if (held && held.key === key) return held.el;
      const el = build();
      forms.set(name, { key, el });
      return el;
    };
    const people = (c.participants || []).map((p) => p.user_id).join(",");
    if (offers("POST", "/api/v1/consultations/{id}/participants")) {
      out.push(kept("participants", `${c.id}:${people}`, () => participantForm(c, state, render, ctx)));
    }
    out.push(kept("close", c.id, () => closeForm(c, state, render, ctx)));
  }
  out.push(status);
  return out;
}

function closeForm(c, state, render, ctx) {
  const outcome = select(ctx.config.outcomes.map((o) => [o, label("outcome", o)]), { name: "outcome", value: "advice_given" });
  const note = h("input", { type: "text", name: "note", maxlength: "2000" });
  const status = statusArea();
  // A note that looks like a category withheld from a participant of another organisation is
  // refused until rephrased or confirmed with a reason, as a message is.
  const confirm = sensitiveConfirm("note");
  return h("details", { class: "close-box" },
    h("summary", { text: t("consultation.close") }),
    h("form", {
      class: "close-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        status.clear();
        const body = { outcome: outcome.value };
        if (note.value.trim()) body.note = note.value.trim();
        const confirmation = body.note ? confirm.confirmation() : null;
        if (confirmation === undefined) return;
        if (confirmation) body.sensitive_confirmation = confirmation;
        const button = event.submitter;
        if (button) button.disabled = true;
        try {
          state.consultation = await api("POST", `/api/v1/consultations/${c.id}/close`, body);
          render();
          ctx.announce(t("consultation.closed.announce"));
        } catch (error) {
          if (!confirm.refused(error, body.note)) status.show(errorBox(error));
        } finally {
          if (button) button.disabled = false;
        }
      },
    }, h("div", { class: "inline-form" }, field(t("consultation.outcome"), outcome), field(t("consultation.note"), note)),
    confirm.el,
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("consultation.close.submit") }))), status);
}

function messageView(message, state) {
  const mine = message.author.id === session.user.id;
  const items = (message.data || []).map((item) => itemView(item));
  const receipt = h("p", { class: "receipt" });
  let el = null;
  // The sender's own message is sent, then read by the other party.
  const updateReceipt = () => {
    const others = (message.read_by || []).filter((r) => r.user_id !== session.user.id);
    receipt.textContent = !mine ? "" : others.length
      ? t("consultation.read", { when: formatDateTime(others[others.length - 1].read_at) }) : t("thread.sent");
    receipt.hidden = !receipt.textContent;
    if (el && mine) el.dataset.state = others.length ? "read" : "sent";
  };
  updateReceipt();
  state.receipts.set(message.id, { update: updateReceipt });
  // The author's own reading carries what was withheld at send time (kept by the server).
  const withheld = mine ? state.withheld.get(message.id) || (message.policy && message.policy.withheld) : null;
  el = h("li", { class: ["message", mine ? "mine" : "theirs"], dataset: { message: message.id } },
    h("p", { class: "meta" },
      h("span", { class: "author", text: message.author.name || message.author.id }),
      h("span", { class: "author-org", text: ` · ${orgName(message.author.org)} · ${label("role", message.author.role)} · ` }),
      h("time", { datetime: message.created_at, text: formatDateTime(message.created_at) })),
    message.text ? h("p", { class: "text", text: message.text }) : null,
    flaggedMark(message.flagged_categories),
    items.length ? h("ul", { class: "items", "aria-label": t("items.label") }, items) : null,
    message.content_destroyed ? h("p", { class: "hint", text: t("consultation.shredded") }) : null,
    withheld && withheld.length ? withheldByView(withheld, state) : null,
    receipt);
  updateReceipt();
  return el;
}

/** For the sender: what each recipient could not see of their message, and why (the policy's
 * answer to the send, which the author's later readings of the conversation carry too). */
function withheldByView(withheld, state) {
  return h("details", { class: "withheld-by" },
    h("summary", { text: t("thread.withheldby", { count: formatNumber(withheld.length) }) }),
    h("ul", { class: "plain-list" }, withheld.map((w) => h("li", {},
      h("strong", { text: person(state.names, w.recipient && w.recipient.user_id)
        || [w.recipient && w.recipient.org, w.recipient && label("role", w.recipient.role)].filter(Boolean).join(" · ") }),
      ": ", h("span", { text: w.category ? label("category", w.category) : t("preview.text") }),
      " – ", policySpan("reason", w.reason)))));
}

/** A reason or citation of the policy in the UI language (marked as English if it has no translation). */
function policySpan(cls, text) {
  const shown = policyText(text || "");
  return h("span", { class: cls, lang: shown.lang, text: shown.text });
}

function itemView(item) {
  const name = h("span", { class: "item-category", text: `${label("category", item.category)}: ` });
  if (item.withheld) {
    return h("li", { class: "item withheld" }, name,
      item.category === ATTACHMENT ? h("span", { class: "attachment-placeholder", role: "img",
        "aria-label": t("attachments.placeholder"), text: "🔒 " }) : null,
      h("strong", { text: t("items.withheld") }), " ",
      policySpan("reason", item.reason),
      item.consent ? h("span", { class: "consent-note",
        text: ` ${t("items.consentstatus", { status: label("consentstatus", item.consent.status), since: formatDateTime(item.consent.since) })}` }) : null,
      item.rule ? h("details", { class: "why" }, h("summary", { text: t("items.why") }),
        h("p", { text: `${t("policy.rule")}: ${item.rule}` }),
        item.citation ? h("p", {}, `${t("policy.citation")}: `, policySpan("citation", item.citation)) : null) : null);
  }
  return h("li", { class: "item" }, name, h("span", { class: "item-value", text: String(item.value) }),
    item.attachment_id ? [" ", downloadButton(item), PREVIEWABLE.test(String(item.value)) ? [" ", previewButton(item)] : null] : null,
    item.referral ? h("span", { class: "hint", text: ` (${t("referral.title")}: ${label("referral", item.referral.condition)})` }) : null);
}

/** An image attachment shown in the conversation on request (fetched with the token, shown as a
 * data: URL, which the page's CSP allows for images; a PDF is downloaded, as the CSP embeds no
 * documents). Asked for, not fetched with every view: each fetch is an audited read. */
function previewButton(item) {
  const box = h("span", { class: "preview-box" });
  let frameUrl = null; // a PDF's Blob URL, revoked when the preview closes
  const close = () => {
    box.replaceChildren();
    if (frameUrl) URL.revokeObjectURL(frameUrl);
    frameUrl = null;
  };
  const button = h("button", {
    type: "button", class: "link preview", dataset: { attachment: item.attachment_id },
    "aria-label": t("attachments.preview.for", { name: String(item.value) }), text: t("attachments.preview"),
    "aria-expanded": "false",
    onclick: async () => {
      if (box.firstChild) {
        close();
        button.setAttribute("aria-expanded", "false");
        return;
      }
      button.disabled = true;
      try {
        const { blob } = await download(`/api/v1/attachments/${encodeURIComponent(item.attachment_id)}`);
        if (blob.type === "application/pdf") {
          // Framed from a Blob this page makes (the CSP allows frames from blob: only), typed as a
          // PDF whatever else it claims, and only if it begins as a PDF does: the browser's own
          // viewer shows it, never as a page of this origin.
          const head = new Uint8Array(await blob.slice(0, PDF_SIGNATURE.length).arrayBuffer());
          if (String.fromCharCode(...head) !== PDF_SIGNATURE) {
            box.replaceChildren(h("span", { class: "hint", text: t("attachments.nopreview") }));
            return;
          }
          frameUrl = URL.createObjectURL(new Blob([blob], { type: "application/pdf" }));
          box.replaceChildren(h("iframe", { class: "attachment-preview pdf-preview", src: frameUrl,
            title: t("attachments.preview.alt", { name: String(item.value) }) }));
          button.setAttribute("aria-expanded", "true");
          return;
        }
        if (!/^image\/(png|jpeg)$/.test(blob.type)) {
          box.replaceChildren(h("span", { class: "hint", text: t("attachments.nopreview") }));
          return;
        }
        const url = await new Promise((resolve, reject) => {
          const reader = new FileReader();
          reader.onload = () => resolve(reader.result);
          reader.onerror = () => reject(reader.error);
          reader.readAsDataURL(blob);
        });
        box.replaceChildren(h("img", { class: "attachment-preview", src: url, alt: t("attachments.preview.alt", { name: String(item.value) }) }));
        button.setAttribute("aria-expanded", "true");
      } catch (error) {
        box.replaceChildren(h("span", { class: "hint", text: error.status === 404 ? t("attachments.gone") : errorText(error) }));
      } finally {
        button.disabled = false;
      }
    },
  });
  return [button, box];
}

/** Fetched with the bearer token and handed over as a Blob: a token never goes into a URL. */
function downloadButton(item) {
  const status = h("span", { class: "download-status", role: "status" });
  const button = h("button", {
    type: "button", class: "link download", dataset: { attachment: item.attachment_id },
    "aria-label": t("attachments.download.for", { name: String(item.value) }), text: t("attachments.download"),
    onclick: async () => {
      button.disabled = true;
      status.textContent = "";
      try {
        const { blob, filename } = await download(`/api/v1/attachments/${encodeURIComponent(item.attachment_id)}`);
        saveBlob(blob, filename || String(item.value));
        status.textContent = t("attachments.downloaded");
      } catch (error) {
        status.textContent = error.status === 404 ? t("attachments.gone") : errorText(error);
      } finally {
        button.disabled = false;
      }
    },
  });
  return h("span", { class: "download-box" }, button, " ", status);
}

function participantForm(c, state, render, ctx) {
  const listId = uid("people");
  const user = h("input", { type: "text", name: "user_id", autocomplete: "off", spellcheck: "false", list: listId,
    maxlength: "128" });
  const people = h("datalist", { id: listId });
  const userField = field(t("participants.user"), user, { hint: t("participants.user.help") });
  const status = statusArea();
  const orgs = [...new Set([c.origin_org, c.target_org].filter(Boolean))];
  Promise.all(orgs.map((org) => api("GET", query("/api/v1/experts", { org })).then((p) => p.items).catch(() => [])))
    .then((lists) => {
      const present = new Set((state.consultation.participants || []).map((p) => p.user_id));
      for (const expert of lists.flat().filter((e) => !present.has(e.id))) {
        people.append(h("option", { value: expert.id, text: `${expert.name} · ${orgName(expert.org)}` }));
      }
    });
  return h("details", { class: "participant-box" },
    h("summary", { text: t("participants.add") }),
    h("form", {
      class: "inline-form participant-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        status.clear();
        const id = user.value.trim();
        userField.setError(id ? "" : t("participants.user.required"));
        if (!id) {
          user.focus();
          return;
        }
        try {
          state.consultation = await api("POST", `/api/v1/consultations/${c.id}/participants`, { user_id: id });
          render();
          ctx.announce(t("participants.added", { user: id }));
          document.querySelector(`.participants li[data-user="${CSS.escape(id)}"]`)?.setAttribute("tabindex", "-1");
        } catch (error) {
          status.show(participantError(error));
        }
      },
    }, userField, people, h("button", { type: "submit", text: t("participants.submit") })), status);
}

function participantError(error) {
  const known = { unknown_user: "participants.unknown", wrong_org: "participants.wrongorg",
    not_participant_role: "participants.role", closed: "participants.closed" }[error.code];
  return known ? h("div", { class: "error", role: "alert" }, h("p", { text: t(known) })) : errorBox(error);
}

function attachmentView(ctx, state) {
  const c = state.consultation;
  const file = h("input", { type: "file", name: "file", accept: "application/pdf,image/png,image/jpeg,.pdf,.png,.jpg,.jpeg" });
  const caption = h("input", { type: "text", name: "caption", maxlength: "2000", autocomplete: "off" });
  const consent = h("select", { name: "consent_id" }, h("option", { value: "", text: t("items.noconsent") }));
  const fileField = field(t("attachments.file"), file, { hint: t("attachments.file.help"), required: true });
  const status = statusArea();
  // A caption is free text like a message's: a flagged one needs the sender's confirmation.
  const confirm = sensitiveConfirm("caption");
  const withConsent = c.client_ref && may("POST", "/api/v1/clients/{ref}/consents");
  if (withConsent) loadConsents(state, c, consent);
  return h("section", { class: "card", "aria-labelledby": "attach-h" },
    h("h2", { id: "attach-h", text: t("attachments.title") }),
    h("p", { class: "hint", text: t("attachments.help") }),
    h("form", {
      class: "attachment-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        status.clear();
        const chosen = file.files && file.files[0];
        fileField.setError(chosen ? "" : t("attachments.file.required"));
        if (!chosen) {
          file.focus();
          return;
        }
        const text = caption.value.trim();
        const confirmation = text ? confirm.confirmation() : null;
        if (confirmation === undefined) return;
        const form = new FormData();
        form.append("file", chosen, chosen.name);
        if (text) form.append("text", text);
        if (consent.value) form.append("consent_id", consent.value);
        if (confirmation) form.append("sensitive_confirmation", JSON.stringify(confirmation));
        const button = event.submitter;
        if (button) button.disabled = true;
        try {
          const sent = await upload(`/api/v1/consultations/${c.id}/attachments`, form);
          file.value = "";
          caption.value = "";
          confirm.reset();
          const withheld = (sent.message && sent.message.policy && sent.message.policy.withheld) || [];
          const done = withheld.length ? t("attachments.sentwithheld", { count: formatNumber(withheld.length) })
            : t("attachments.sent", { name: chosen.name });
          status.show(h("p", { class: "ok", text: done }));
          ctx.announce(done);
        } catch (error) {
          if (confirm.refused(error, text)) return;
          const message = attachmentError(error, chosen);
          fileField.setError(message);
          status.show(h("div", { class: "error", role: "alert" }, h("p", { text: message }),
            error.message && error.status ? h("p", { class: "detail", lang: "en", text: error.message }) : null));
          file.focus();
        } finally {
          if (button) button.disabled = false;
        }
      },
    },
    fileField,
    field(t("attachments.caption"), caption, { hint: t("attachments.caption.help") }),
    withConsent ? field(t("items.consent"), consent) : null,
    confirm.el,
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("attachments.submit") }))),
    status);
}

function attachmentError(error, chosen) {
  if (error.status === 413) return t("attachments.toolarge", { size: formatNumber(Math.ceil(chosen.size / 1024)) });
  if (error.status === 422 && error.code === "unsupported_file") return t("attachments.unsupported");
  if (error.status === 403) return t("attachments.withheld");
  // A connection cut while a large file was still being sent is the size limit at work.
  if (error.status === 0 && chosen.size > 1024 * 1024) return t("attachments.toolarge", { size: formatNumber(Math.ceil(chosen.size / 1024)) });
  return errorText(error);
}

// -- the knowledge base ------------------------------------------------------------------------

function canWriteKnowledge(c) {
  return may("POST", "/api/v1/consultations/{id}/knowledge") && isParticipant(c)
    && session.user.org === c.target_org;
}

/** Code-point offsets (as the server counts) → UTF-16 offsets (as the text box counts). */
function utf16Offset(text, codePoints) {
  return Array.from(text).slice(0, codePoints).join("").length;
}

function knowledgeView(ctx, state, config) {
  const c = state.consultation;
  const question = h("textarea", { name: "kb_question", rows: "4", maxlength: "4000" });
  const answer = h("textarea", { name: "kb_answer", rows: "6", maxlength: "8000" });
  const topic = select(config.topics.map((x) => [x, label("topic", x)]), { name: "kb_topic", value: c.topic });
  const fields = {
    question: field(t("kb.entry.question"), question, { required: true, hint: t("kb.entry.question.help") }),
    answer: field(t("kb.entry.answer"), answer, { required: true, hint: t("kb.entry.answer.help") }),
  };
  const controls = { question, answer };
  const findingsBox = h("div", { class: "findings" });
  const status = statusArea();
  const clearFindings = () => {
    findingsBox.replaceChildren();
    for (const name of Object.keys(fields)) fields[name].setError("");
  };
  const showFindings = (found) => {
    const byField = { question: [], answer: [] };
    for (const f of found) (byField[f.field] || (byField[f.field] = [])).push(f);
    for (const [name, list] of Object.entries(byField)) {
      if (fields[name]) fields[name].setError(list.length ? t("kb.findings.field", { count: formatNumber(list.length) }) : "");
    }
    replace(findingsBox, h("div", { class: "error findings-box", role: "alert", tabindex: "-1", id: "kb-findings" },
      h("p", { class: "findings-title", text: t("kb.findings.title") }),
      h("ol", { class: "findings-list" }, found.map((f) => {
        const control = controls[f.field];
        const where = t("kb.findings.where", { field: t(`kb.entry.${f.field}`), from: formatNumber(f.start + 1), to: formatNumber(f.end) });
        return h("li", { dataset: { kind: f.kind, field: f.field } },
          h("strong", { text: label("identifier", f.kind) }), ` – ${where} `,
          control ? h("button", { type: "button", class: "link", text: t("kb.findings.select"),
            "aria-label": t("kb.findings.select.for", { kind: label("identifier", f.kind), where }),
            onclick: () => {
              control.focus();
              control.setSelectionRange(utf16Offset(control.value, f.start), utf16Offset(control.value, f.end));
            } }) : null);
      })),
      h("p", { class: "hint", text: t("kb.findings.help") })));
    findingsBox.querySelector("#kb-findings").focus();
  };
  for (const control of [question, answer]) control.addEventListener("input", () => status.clear());
  return h("section", { class: "card", "aria-labelledby": "kb-entry-h" },
    h("h2", { id: "kb-entry-h", text: t("kb.entry.title") }),
    h("p", { class: "hint", text: t("kb.entry.help") }),
    h("form", {
      class: "knowledge-form", novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        clearFindings();
        status.clear();
        let missing = null;
        for (const [name, control] of Object.entries(controls)) {
          const empty = !control.value.trim();
          fields[name].setError(empty ? t("kb.entry.required") : "");
          if (empty && !missing) missing = control;
        }
        if (missing) {
          missing.focus();
          return;
        }
        const button = event.submitter;
        if (button) button.disabled = true;
        try {
          const entry = await api("POST", `/api/v1/consultations/${c.id}/knowledge`,
            { question: question.value, answer: answer.value, topic: topic.value });
          question.value = "";
          answer.value = "";
          status.show(h("p", { class: "ok", dataset: { entry: entry.id }, text: t("kb.entry.saved") }));
          ctx.announce(t("kb.entry.saved"));
        } catch (error) {
          if (error.status === 422 && error.code === "personal_data_found" && Array.isArray(error.details.findings)) {
            showFindings(error.details.findings);
          } else if (error.status === 409) {
            status.show(h("div", { class: "error", role: "alert" }, h("p", { text: t("kb.entry.notclosed") })));
          } else {
            status.show(errorBox(error));
          }
        } finally {
          if (button) button.disabled = false;
        }
      },
    },
    field(t("ask.topic"), topic), fields.question, fields.answer, findingsBox,
    h("div", { class: "actions" }, h("button", { type: "submit", text: t("kb.entry.submit") }))),
    status);
}

function composerView(ctx, state, config) {
  const c = state.consultation;
  const text = h("textarea", { name: "text", rows: "4", maxlength: "10000" });
  const itemsList = h("ol", { class: "item-rows" });
  const preview = h("div", { class: "preview", role: "status", "aria-live": "polite" });
  const status = statusArea();
  const confirm = sensitiveConfirm();
  const rows = [];
  const categories = config.categories.filter((x) => x !== "identity.hetu");

  const collect = () => {
    const data = [];
    for (const row of rows) {
      const entry = row.value();
      if (entry) data.push(entry);
    }
    return { text: text.value, data };
  };

  const runPreview = debounce(async () => {
    const body = collect();
    if (!body.text.trim() && !body.data.length) {
      preview.replaceChildren();
      return;
    }
    try {
      const result = await api("POST", `/api/v1/consultations/${c.id}/messages/preview`, body);
      replace(preview, previewView(result, body.text));
    } catch (error) {
      replace(preview, h("p", { class: "hint", text: error.status === 422 ? t("preview.incomplete") : t("preview.unavailable") }));
    }
  }, 350);

  const addRow = (category, referral = false) => {
    const row = itemRow(categories, state, c, runPreview, () => {
      rows.splice(rows.indexOf(row), 1);
      row.el.remove();
      runPreview();
      addButton.focus();
    }, category, referral);
    rows.push(row);
    itemsList.append(row.el);
    row.focus();
    runPreview();
  };

  const addButton = h("button", { type: "button", class: "secondary", onclick: () => addRow(), text: t("items.add") });
  // A § 35 referral is made from the asking side, by those who may open consultations.
  const referButton = may("POST", "/api/v1/consultations") && session.user && session.user.org === c.origin_org
    ? h("button", { type: "button", class: "secondary", onclick: () => addRow("service_need.referral", true), text: t("referral.add") })
    : null;
  text.addEventListener("input", runPreview);

  const send = async (event) => {
    event.preventDefault();
    const body = collect();
    if (!body.text.trim() && !body.data.length) {
      status.show(h("p", { class: "error", text: t("composer.empty") }));
      text.focus();
      return;
    }
    const confirmation = confirm.confirmation();
    if (confirmation === undefined) return;
    if (confirmation) body.sensitive_confirmation = confirmation;
    const button = event.submitter;
    if (button) button.disabled = true;
    const outgoing = state.outbox ? state.outbox(body) : null;
    const attempt = async () => {
      try {
        const sent = await api("POST", `/api/v1/consultations/${c.id}/messages`, body);
        outgoing?.sent(sent);
        // The composer is emptied unless something else was typed there meanwhile.
        if (text.value === body.text) {
          text.value = "";
          for (const row of [...rows]) row.el.remove();
          rows.length = 0;
          preview.replaceChildren();
          confirm.reset();
        }
        const withheld = (sent.policy && sent.policy.withheld) || [];
        status.show(h("p", { class: "ok", text: withheld.length ? t("composer.sentwithheld", { count: withheld.length }) : t("composer.sent") }));
        text.focus();
      } catch (error) {
        if (confirm.refused(error, body.text)) {
          outgoing?.drop();
          status.clear();
        } else {
          // A message not sent stays reported as not sent, even when the connection is back.
          outgoing?.failed(attempt);
          const box = errorBox(error);
          delete box.dataset.network;
          status.show(box);
        }
      }
    };
    try {
      await attempt();
    } finally {
      if (button) button.disabled = false;
    }
  };

  return h("section", { class: "card", "aria-labelledby": "compose-h" },
    h("h2", { id: "compose-h", text: t("composer.title") }),
    h("form", { onsubmit: send, novalidate: true },
      field(t("composer.text"), text, { hint: t("composer.text.help") }),
      h("h3", { text: t("items.title") }),
      h("p", { class: "hint", text: t("items.help") }),
      itemsList,
      h("div", { class: "actions" }, addButton, referButton),
      h("h3", { text: t("preview.title") }),
      preview,
      confirm.el,
      h("div", { class: "actions" }, h("button", { type: "submit", text: t("composer.send") }))),
    status);
}

function itemRow(categories, state, c, changed, remove, initial, referralOpen) {
  const category = select(categories.map((x) => [x, label("category", x)]), { value: initial || "application.status" });
  const value = h("input", { type: "text", maxlength: "4000" });
  const consent = h("select", {}, h("option", { value: "", text: t("items.noconsent") }));
  const condition = select(["unable_to_look_after_self", "child_interest"].map((x) => [x, label("referral", x)]),
    { emptyLabel: t("referral.withconsent") });
  const justification = h("textarea", { rows: "2", maxlength: "2000" });
  const whyNoConsent = h("textarea", { rows: "2", maxlength: "2000", name: "why_no_consent" });
  const referral = h("fieldset", { class: "referral" },
    h("legend", { text: t("referral.title") }),
    h("p", { class: "hint", text: t("referral.help") }),
    field(t("referral.condition"), condition), field(t("referral.justification"), justification),
    field(t("referral.why_no_consent"), whyNoConsent));
  const showReferral = () => {
    referral.hidden = !REFERRAL_CATEGORIES.has(category.value);
  };
  showReferral();
  if (c.client_ref && may("POST", "/api/v1/clients/{ref}/consents")) loadConsents(state, c, consent);
  const consentField = c.client_ref ? field(t("items.consent"), consent) : null;
  for (const el of [category, value, consent, condition, justification, whyNoConsent]) {
    el.addEventListener("input", changed);
    el.addEventListener("change", changed);
  }
  category.addEventListener("change", showReferral);
  const el = h("li", { class: "item-row" },
    h("div", { class: "row" }, field(t("items.category"), category), field(t("items.value"), value), consentField),
    referral,
    h("button", { type: "button", class: "link", onclick: remove, text: t("items.remove") }));
  if (referralOpen) condition.value = "";
  return {
    el,
    focus: () => (referralOpen ? value : category).focus(),
    value: () => {
      if (!value.value.trim()) return null;
      const entry = { category: category.value, value: value.value.trim() };
      if (consent.value) entry.consent_id = consent.value;
      if (!referral.hidden && condition.value) {
        entry.referral = { condition: condition.value, justification: justification.value.trim(),
          why_no_consent: whyNoConsent.value.trim() };
      }
      return entry;
    },
  };
}

async function loadConsents(state, c, selectEl) {
  if (!state.consents) {
    state.consents = api("GET", `/api/v1/clients/${c.client_ref}/consents`).then((p) => p.items).catch(() => []);
  }
  const consents = await state.consents;
  for (const consent of consents.filter((x) => x.status === "active")) {
    selectEl.append(h("option", { value: consent.id,
      text: `${(consent.categories || []).map((x) => label("category", x)).join(", ")} → ${(consent.recipient_orgs || []).map(orgName).join(", ")}` }));
  }
}

function previewView(result, text) {
  const withheld = (result.policy && result.policy.withheld) || [];
  const parts = [];
  if (result.sensitive && result.sensitive.length) {
    parts.push(h("p", { class: "warn", text: t("sensitive.preview") }), sensitiveList(result.sensitive, text),
      h("p", { class: "hint", text: t("sensitive.help") }));
  }
  if (!withheld.length) parts.push(h("p", { class: "ok", text: t("preview.allvisible") }));
  else {
    parts.push(h("p", { class: "warn", text: t("preview.withheld", { count: withheld.length }) }),
      h("ul", { class: "withheld-list" }, withheld.map((w) => h("li", {},
        h("strong", { text: w.category ? label("category", w.category) : t("preview.text") }),
        ` → ${recipientText(w.recipient)}: `,
        h("span", { text: label("effect", w.effect) }), " – ",
        policySpan("reason", w.reason),
        h("span", { class: "rule", text: ` (${w.rule})` })))));
  }
  const notices = scanNotices(result.identifiers);
  if (notices) parts.push(h("p", { class: "scan-title", text: t("scan.title") }), notices);
  return parts;
}

function recipientText(recipient) {
  if (!recipient) return "";
  return [recipient.user_id, orgName(recipient.org), label("role", recipient.role)].filter(Boolean).join(" · ");
}
