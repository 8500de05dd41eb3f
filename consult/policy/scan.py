"""Finds personal identifiers in free text with real validators, not loose patterns:
Finnish identity codes (HETU, checksum and date), IBANs (ISO 13616 mod-97 and the country's
format), phone numbers (libphonenumber, valid numbers only) and e-mail addresses. A
``Finding`` holds only the kind and the offsets, never the matched text."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import phonenumbers
from stdnum import iban as stdnum_iban

from consult.model.hetu import HETU_SHAPE, canonical_hetu, fold_for_scan

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
