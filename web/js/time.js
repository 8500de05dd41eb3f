// Helsinki wall-clock time and UTC instants. The roster and agreements are entered as Helsinki
// dates and times whatever the browser's own time zone is, and sent as ISO 8601 instants in UTC.

const ZONE = "Europe/Helsinki";
const PARTS = new Intl.DateTimeFormat("en-GB", {
  timeZone: ZONE, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

function partsAt(ms) {
  return Object.fromEntries(PARTS.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
}

/** Helsinki's offset from UTC in milliseconds at the instant ``ms``. */
function offsetAt(ms) {
  const p = partsAt(ms);
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return wall - Math.floor(ms / 1000) * 1000;
}

/** ``YYYY-MM-DD`` and ``HH:MM`` in Helsinki → an ISO 8601 instant in UTC, or null if malformed. */
export function helsinkiToIso(date, time = "00:00") {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
  const t = /^(\d{2}):(\d{2})$/.exec(time || "");
  if (!d || !t) return null;
  const wall = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(t[1]), Number(t[2]));
  if (Number.isNaN(wall)) return null;
  // Twice, so that an instant next to a daylight-saving change takes the offset in force then.
  let ms = wall - offsetAt(wall);
  ms = wall - offsetAt(ms);
  return new Date(ms).toISOString();
}

/** The Helsinki date ``YYYY-MM-DD`` of an ISO instant ("" if none). */
export function helsinkiDate(iso) {
  if (!iso) return "";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "";
  const p = partsAt(ms);
  return `${p.year}-${p.month}-${p.day}`;
}

/** The next Helsinki day after ``YYYY-MM-DD`` (for "valid until the end of this day"). */
export function nextDay(date) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
  if (!d) return null;
  return new Date(Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]) + 1)).toISOString().slice(0, 10);
}

/** The day before ``YYYY-MM-DD``. */
export function previousDay(date) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
  if (!d) return null;
  return new Date(Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]) - 1)).toISOString().slice(0, 10);
}

/** Today's date in Helsinki. */
export function helsinkiToday() {
  return helsinkiDate(new Date().toISOString());
}
