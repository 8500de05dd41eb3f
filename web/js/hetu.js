// The Finnish personal identity code (HETU), checked as it is typed: date, century sign
// (including the signs Y X W V U and B C D E F in use since 2023), individual number and
// the mod-31 check character.

const CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY";
const CENTURIES = { "+": 1800 };
for (const sign of "-YXWVU") CENTURIES[sign] = 1900;
for (const sign of "ABCDEF") CENTURIES[sign] = 2000;
const SHAPE = /^(\d{2})(\d{2})(\d{2})([-+ABCDEFYXWVU])(\d{3})([0-9A-Y])$/;
const PARTIAL = /^\d{0,6}$|^\d{6}[-+ABCDEFYXWVU]\d{0,3}$/;

/**
 * ``{ok, error}``: ``error`` is null when valid, "incomplete" while it could still become
 * valid, or one of "format", "date", "individual", "check".
 */
export function checkHetu(raw) {
  const value = String(raw || "").trim().toUpperCase();
  if (!value) return { ok: false, error: "empty", value };
  const match = SHAPE.exec(value);
  if (!match) return { ok: false, error: value.length < 11 && PARTIAL.test(value) ? "incomplete" : "format", value };
  const [, dd, mm, yy, sign, individual, check] = match;
  const year = CENTURIES[sign] + Number(yy);
  const date = new Date(Date.UTC(year, Number(mm) - 1, Number(dd)));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== Number(mm) - 1 || date.getUTCDate() !== Number(dd)) {
    return { ok: false, error: "date", value };
  }
  if (Number(individual) < 2) return { ok: false, error: "individual", value };
  if (CHECK[Number(dd + mm + yy + individual) % 31] !== check) return { ok: false, error: "check", value };
  return { ok: true, error: null, value };
}
