// Clocks that tick each second: the expected wait still to go, how long a question has waited in
// the queue and the time left to its deadline. An element made here carries the instant it counts
// to or from (this browser's clock, set from durations the server gave, so the two clocks need
// not agree) and one timer for the page updates every such element still in the document.

import { h } from "./dom.js";
import { locale, t } from "./i18n.js";

let timer = null;

/** Seconds as a clock face, ``1:05:09`` or ``4:07``, in the UI language's digits. */
export function formatClock(seconds) {
  const total = Math.max(0, Math.round(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  if (typeof Intl.DurationFormat === "function") {
    return new Intl.DurationFormat(locale(), { style: "digital", hoursDisplay: hours ? "always" : "auto" })
      .format({ hours, minutes, seconds: secs });
  }
  const two = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}:${two(minutes)}:${two(secs)}` : `${minutes}:${two(secs)}`;
}

function update(el) {
  const at = Number(el.dataset.tickAt);
  const seconds = el.dataset.tick === "up" ? (Date.now() - at) / 1000 : (at - Date.now()) / 1000;
  if (el.dataset.tick === "down" && seconds < 0 && el.dataset.over) {
    el.textContent = t(el.dataset.over, { time: formatClock(-seconds) });
    el.classList.add("overdue");
  } else {
    el.textContent = formatClock(seconds);
    el.classList.remove("overdue");
  }
}

function tick() {
  const clocks = document.querySelectorAll("[data-tick]");
  for (const el of clocks) update(el);
  if (!clocks.length) {
    clearInterval(timer);
    timer = null;
  }
}

/** A clock counting down to ``at`` (ms since the epoch); past it, ``over`` (a text key with
 * {time}) says by how much, or the clock stays at zero. */
export function countdown(at, { over = null, className = "clock" } = {}) {
  return start(h("span", { class: className, dataset: { tick: "down", tickAt: String(at), ...(over ? { over } : {}) } }));
}

/** A clock counting up from ``at`` (ms since the epoch). */
export function countup(at, { className = "clock" } = {}) {
  return start(h("span", { class: className, dataset: { tick: "up", tickAt: String(at) } }));
}

function start(el) {
  update(el);
  if (!timer) timer = setInterval(tick, 1000);
  return el;
}
