"""The identifier scanner of migration 0009_gate, frozen with it.

A migration describes one fixed transformation of the data: it must do the same thing on every
database whatever the code around it has become, so it imports nothing of ``consult`` outside
``consult.migrations``. This is a copy of ``consult/model/hetu.py`` and ``consult/policy/scan.py``
as they were when the migration was frozen (the canonical identity-code form, and identity codes, IBANs, phone numbers
and e-mail addresses found with python-stdnum and libphonenumber). It is never edited: a later
change to the scanner needs a migration of its own if stored data must follow it.
"""

from __future__ import annotations

# -- consult/model/hetu.py ----------------------------------------------------------------
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum.fi import hetu as stdnum_hetu
from stdnum.util import clean as stdnum_clean

__all__ = ["redact", "scan"]

CENTURY_SIGNS: Final = "+-YXWVUABCDEF"
#: A longer input is not an identity code with stray spaces but something else.
MAX_INPUT: Final = 64
#: The version of this form that the client registry records with each blind index: 1 was
#: the code as typed (before migration 0008_hetu), 2 is this canonical form.
FORM: Final = 2

# Dashes that Unicode does not put in the Dash_Punctuation category (Pd) but that people
# (and word processors) type between the birth date and the individual number: the minus
# signs, the soft hyphen, the hyphen bullet. Everything in Pd (U+2010–U+2015, U+FE58,
# U+FE63, U+FF0D, U+2E3A, ...) is a dash by its category.
_OTHER_DASHES: Final = frozenset({
    "\u00ad",  # SOFT HYPHEN
    "\u02d7",  # MODIFIER LETTER MINUS SIGN
    "\u2043",  # HYPHEN BULLET
    "\u2212",  # MINUS SIGN (also what NFKC makes of U+207B and U+208B)
    "\u2796",  # HEAVY MINUS SIGN
})


@lru_cache(maxsize=4096)
def is_dash(char: str) -> bool:
    """Whether one character is a dash, hyphen or minus sign (folded to "-").

    Whatever python-stdnum itself reads as "-" (macron, overline, ...) is a dash here too:
    otherwise the validator would accept a code that the index keeps apart from its ASCII form.
    """
    return (char in _OTHER_DASHES or unicodedata.category(char) == "Pd"
            or stdnum_clean(char) == "-")


def _is_ignorable(char: str) -> bool:
    """White space and invisible format characters (zero-width space, joiners, byte-order
    mark, bidirectional controls): they are never part of a code, only inside one."""
    return char.isspace() or unicodedata.category(char) == "Cf"


def canonical_hetu(value: str) -> str | None:
    """The canonical form of a valid HETU (temporary codes included), or None.

    ``"131052–308t"``, ``" 131052 − 308T"`` and ``"１３１０５２-３０８Ｔ"`` all give
    ``"131052-308T"``; an invalid or over-long value gives None.
    """
    if len(value) > MAX_INPUT:
        return None
    if value.isascii():  # the common case; the same result as _fold_code, faster
        return _validated("".join(value.split()).upper())
    return _validated(_fold_code(value))


def _fold_code(value: str) -> str:
    """Steps 1-4 of the canonical form: dashes, NFKC, ignorables removed, upper case."""
    # Dashes first: NFKC would take some of them apart (a macron becomes a space and a
    # combining mark) before they could be recognised.
    dashed = "".join("-" if is_dash(char) else char for char in value)
    folded = []
    for char in unicodedata.normalize("NFKC", dashed):
        if is_dash(char):
            folded.append("-")
        elif not _is_ignorable(char):
            folded.append(char)
    return "".join(folded).upper()


def _validated(candidate: str) -> str | None:
    if len(candidate) != 11 or not candidate.isascii() or candidate[6] not in CENTURY_SIGNS:
        return None
    if not stdnum_hetu.is_valid(candidate, allow_temporary=True):
        return None
    return candidate


# --- Scanning free text --------------------------------------------------------------------
#
# The scanner must find exactly what canonical_hetu accepts, at offsets of the original text.
# It therefore runs its pattern over a copy of the text folded character by character (same
# length, same offsets): each character becomes its NFKC form when that is one character
# (full-width digits and letters become ASCII), a dash becomes "-", white space becomes " "
# and an invisible format character becomes U+200B. Every candidate is then confirmed by
# canonical_hetu on the original slice, so the two can never disagree about what is a code.

_SPACE: Final = " "
_INVISIBLE: Final = "\u200b"
_ASCII_FOLD: Final = {c: _SPACE for c in range(128) if chr(c).isspace()}


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if is_dash(char):
        return "-"
    if char.isspace():
        return _SPACE
    if unicodedata.category(char) == "Cf":
        return _INVISIBLE
    normal = unicodedata.normalize("NFKC", char)
    if len(normal) == 1 and is_dash(normal):
        return "-"
    return normal if len(normal) == 1 else char


def fold_for_scan(text: str) -> str:
    """``text`` folded character by character for identifier patterns; same length."""
    if text.isascii():
        return text.translate(_ASCII_FOLD)
    return "".join(_fold_char(c) for c in text)


_ALNUM = r"[^\W_]"  # a letter or digit, but not "_" ("hetu_131052-308T" is still found)
_I = f"{_INVISIBLE}*"  # invisible characters may sit anywhere inside a code
_GAP = f"[{_SPACE}{_INVISIBLE}]{{0,3}}"  # and a little white space around the century sign


def _digits(n: int) -> str:
    return _I.join(["[0-9]"] * n)


#: A HETU-shaped run in text folded by ``fold_for_scan``: ddmmyy, century sign, individual
#: number, check character. Whether it is a code is for ``canonical_hetu`` to say.
HETU_SHAPE: Final = re.compile(
    rf"(?<!{_ALNUM}){_digits(6)}{_GAP}[-+A-FU-Y]{_GAP}{_digits(3)}{_I}[0-9A-Y](?!{_ALNUM})",
    re.IGNORECASE,
)


# -- consult/policy/scan.py ---------------------------------------------------------------




KINDS: Final = ("hetu", "iban", "email", "phone")
#: When two findings overlap the one of the earlier kind wins: a HETU or an IBAN contains
#: digit runs that a phone matcher could also take.
_PRIORITY: Final = {kind: rank for rank, kind in enumerate(KINDS)}

# A letter or digit, but not "_" (so "hetu_131052-308T" is still found).
_ALNUM = r"[^\W_]"

# Identity codes are found by the one canonical form of consult/model/hetu.py: its pattern
# runs over the text folded character by character (dash variants, full-width digits,
# invisible characters), and each candidate counts only if canonical_hetu accepts it, which
# checks the date, the century sign (2023 reform letters included) and the check character
# with python-stdnum. What the registry would index as a client, the scanner finds.

# Country code, check digits, then 11-30 alphanumerics, optionally grouped by single spaces.
# The candidate can run on into following words; the longest prefix ending at a group
# boundary that validates is taken.
_IBAN = re.compile(rf"(?<!{_ALNUM})[A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]){{11,30}}", re.IGNORECASE)

_LOCAL_CHARS = r"[\w!#$%&'*+/=?^`{|}~-]"
_LABEL = rf"{_ALNUM}(?:(?:{_ALNUM}|-){{0,61}}{_ALNUM})?"
_EMAIL = re.compile(
    rf"(?<![\w.!#$%&'*+/=?^`{{|}}~-])"
    rf"({_LOCAL_CHARS}+(?:\.{_LOCAL_CHARS}+)*)"
    rf"@((?:{_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[a-z0-9-]{{1,59}}))"
    rf"(?![\w-]|\.{_ALNUM})",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """An identifier found in text: its kind and ``text[start:end]``. Holds no value."""

    kind: str
    start: int
    end: int


def scan(text: str) -> list[Finding]:
    """All identifiers in ``text``, without overlaps, in order of position."""
    shaped = [(m.start(), m.end()) for m in HETU_SHAPE.finditer(fold_for_scan(text))]
    found = _hetus(text, shaped) + _ibans(text) + _emails(text) + _phones(text, shaped)
    return _resolve_overlaps(found)


def redact(text: str, findings: list[Finding],
           replacement_for_kind: Mapping[str, str] | Callable[[str], str]) -> str:
    """``text`` with each finding replaced by the replacement for its kind, e.g.
    ``{"hetu": "[henkilötunnus]"}`` or a function of the kind. Findings that overlap an
    earlier one are skipped; a kind missing from a mapping is replaced by ``[<kind>]``."""
    if callable(replacement_for_kind):
        replace_kind = replacement_for_kind
    else:
        mapping = replacement_for_kind
        replace_kind = lambda kind: mapping.get(kind, f"[{kind}]")  # noqa: E731
    parts, pos = [], 0
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if f.start < pos:
            continue
        parts.append(text[pos:f.start])
        parts.append(replace_kind(f.kind))
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


def _hetus(text: str, shaped: list[tuple[int, int]]) -> list[Finding]:
    # Temporary identity codes (individual number 900-999) identify a person as well.
    return [Finding("hetu", start, end) for start, end in shaped
            if canonical_hetu(text[start:end]) is not None]


def _ibans(text: str) -> list[Finding]:
    found, pos = [], 0
    while (m := _IBAN.search(text, pos)) is not None:
        candidate = m.group()
        ends = [i for i, ch in enumerate(candidate) if ch == " "] + [len(candidate)]
        for end in reversed(ends):
            after = m.start() + end
            if after < len(text) and text[after].isalnum():
                continue  # runs on into a word: not an IBAN boundary
            if stdnum_iban.is_valid(candidate[:end]):
                found.append(Finding("iban", m.start(), after))
                pos = after
                break
        else:
            pos = m.start() + 1
    return found


def _emails(text: str) -> list[Finding]:
    found = []
    for m in _EMAIL.finditer(text):
        local, domain = m.group(1), m.group(2)
        if len(local) <= 64 and len(domain) <= 253:
            found.append(Finding("email", m.start(), m.end()))
    return found


#: No valid phone number anywhere has fewer digits than this (country code included), so a text
#: with fewer digits holds none and libphonenumber's matcher, the costliest part of a scan, is
#: not run on it (tests/policy/test_scan.py checks the bound against libphonenumber itself).
PHONE_MIN_DIGITS: Final = 5
_DIGIT = re.compile(r"\d")  # any Unicode decimal digit, as libphonenumber reads them


def _phones(text: str, hetu_shaped: list[tuple[int, int]]) -> list[Finding]:
    if len(_DIGIT.findall(text)) < PHONE_MIN_DIGITS:
        return []
    found = []
    for match in phonenumbers.PhoneNumberMatcher(text, "FI",
                                                 leniency=phonenumbers.Leniency.VALID):
        start, end = match.start, match.end
        # Archive and diary codes ("1234/02.05.01/2024") are digit groups joined by "/"
        # and "."; libphonenumber can read a tail of one as a number.
        if "/" in match.raw_string or _joined(text, start - 1, -1) or _joined(text, end, 1):
            continue
        # A string shaped like an identity code but failing its check is a mistyped code,
        # not a phone number ("071160-7820" would otherwise read as one).
        if any(start < e and s < end for s, e in hetu_shaped):
            continue
        found.append(Finding("phone", start, end))
    return found


def _joined(text: str, i: int, away: int) -> bool:
    """Whether ``text[i]`` is a "/" or "." that joins the match to more digits beyond it."""
    j = i + away
    return 0 <= i < len(text) and text[i] in "/." and 0 <= j < len(text) and text[j].isdigit()


def _resolve_overlaps(found: list[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (_PRIORITY[f.kind], -(f.end - f.start), f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)
