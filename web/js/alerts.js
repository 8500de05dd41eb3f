// The expert's alert for new consultations: an immediate one (client at the counter) sounds a
// tone, shows a banner that stays until dismissed or claimed, and is announced assertively;
// the others are announced politely.

import { h } from "./dom.js";
import { label, t } from "./i18n.js";
import { setTitleCount, soundsHere } from "./notify.js";

const pending = new Map();
// Offers alerted in this tab (so that catching up after a break does not alert them again).
const seen = new Set();
// Live changes to the alerts, counted: a read of the queue answered before one of them must not
// undo it when its answer arrives after it (an offer alerted since stays; one taken since is not
// alerted again). Each consultation keeps the count of its latest live change.
let changes = 0;
const changedAt = new Map();

function changed(id) {
  changes += 1;
  changedAt.set(id, changes);
}

/** The count of live changes so far: taken when a read of the queue is sent, handed to
 * ``catchUpOffers`` with its answer. */
export function liveMark() {
  return changes;
}
let audio = null;
// The user turned the tone on with a press (which lets a page play sound); remembered in this
// browser (a flag, no personal data), so that after a reload the first press anywhere resumes it.
const SOUND = "konsulta.sound";

function remembered() {
  try {
    return localStorage.getItem(SOUND) === "on";
  } catch {
    return false;
  }
}

/** From a user's press: the tone is on, now and after a reload. */
export function unlockSound() {
  try {
    localStorage.setItem(SOUND, "on");
  } catch {
    // Not remembered: on for this page.
  }
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
  } catch {
    // No audio device.
  }
}

export function soundOn() {
  return remembered();
}

/** After a reload: a tone turned on before is ready again, resumed by the first press if the
 * browser holds it until then. */
export function restoreSound() {
  if (!remembered()) return;
  try {
    audio = audio || new AudioContext();
  } catch {
    return;
  }
  if (audio.state !== "suspended") return;
  // The browser holds sound until the page is pressed: say so until then.
  const held = h("div", { class: "notice notice-sound", id: "sound-held" }, h("p", { text: t("notify.soundheld") }));
  document.getElementById("notices").append(held);
  const resume = () => {
    audio.resume().then(() => held.remove()).catch(() => {});
    for (const type of ["pointerdown", "keydown"]) document.removeEventListener(type, resume, true);
  };
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, resume, true);
}

function tone() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const now = audio.currentTime;
    for (const [start, frequency] of [[0, 880], [0.25, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, now + start);
      gain.gain.exponentialRampToValueAtTime(0.2, now + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + start);
      osc.stop(now + start + 0.25);
    }
  } catch {
    // No audio device: the banner and the announcement remain.
  }
}

function updateTitle() {
  setTitleCount("offers", pending.size);
}

/** A live ``consultation.offered``. */
export function alertOffer(event, handlers) {
  const consultation = event.consultation || event;
  if (!consultation || !consultation.id) return;
  changed(consultation.id);
  raise(consultation, handlers);
}

function raise(consultation, { announce, navigate }) {
  seen.add(consultation.id);
  const text = t("alert.offered", { topic: label("topic", consultation.topic), urgency: label("urgency", consultation.urgency) });
  if (consultation.urgency !== "immediate") {
    announce(text);
    return;
  }
  // Every tab shows the banner and announces it; only one tab of the user sounds the tone.
  if (soundsHere()) tone();
  announce(text, { assertive: true });
  if (pending.has(consultation.id)) return;
  const banner = h("div", { class: "notice notice-urgent", dataset: { consultation: consultation.id } },
    h("p", {}, h("strong", { text: t("alert.immediate") }), " ", text),
    h("button", { type: "button", onclick: () => { dismiss(consultation.id); navigate("#/expert"); },
      text: t("alert.open") }),
    h("button", { type: "button", class: "secondary", onclick: () => dismiss(consultation.id), text: t("alert.dismiss") }));
  pending.set(consultation.id, banner);
  document.getElementById("notices").append(banner);
  updateTitle();
}

/** A colleague claimed it (or it was closed): the alert is no longer anyone's to act on. */
export function offerTaken(event) {
  const id = (event.consultation && event.consultation.id) || event.consultation_id;
  if (!id) return;
  changed(id);
  dismiss(id);
}

export function dismiss(id) {
  const banner = pending.get(id);
  if (banner) banner.remove();
  pending.delete(id);
  updateTitle();
}

/** After a break in the live connection, or the first ``ready``: the queue (``GET /api/v1/queue``)
 * as it was when read, ``asOf`` being ``liveMark()`` when the read was sent. An alert whose
 * consultation left the queue goes; an immediate offer missed meanwhile is alerted — except where
 * a live event about the consultation came after the read was sent, which is newer than it. */
export function catchUpOffers(queue, handlers, asOf = changes) {
  const newer = (id) => (changedAt.get(id) || 0) > asOf;
  const open = new Set(queue.map((item) => item.id));
  for (const id of [...pending.keys()]) if (!open.has(id) && !newer(id)) dismiss(id);
  for (const item of queue) {
    if (!seen.has(item.id) && item.urgency === "immediate" && !newer(item.id)) raise(item, handlers);
  }
}

export function clearOfferAlerts() {
  seen.clear();
  changedAt.clear();
  for (const id of [...pending.keys()]) dismiss(id);
}
