"""The one canonical form of a Finnish personal identity code (HETU, henkilötunnus), used
before the blind index of the client registry and by the free-text scanner alike, so that a
code typed with an en dash, a minus sign or full-width digits is the same person as the code
typed in ASCII.

The canonical form: every dash, hyphen and minus character folded to "-"; Unicode NFKC;
white space and invisible format characters removed; letters upper-cased; then validated with
python-stdnum (``stdnum.fi.hetu``: date, century sign and check character, temporary
individual numbers 900–999 included). The century signs are those of the 2023 reform (Act on
the population information system 661/2009 as amended, in force 1.1.2023): "+" (1800s),
"-" "Y" "X" "W" "V" "U" (1900s), "A"–"F" (2000s). A dash variant becomes "-" and nothing
else: it never stands for a letter sign or "+".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

from stdnum.fi import hetu as stdnum_hetu
from stdnum.util import clean as stdnum_clean

__all__ = ["CENTURY_SIGNS", "FORM", "HETU_SHAPE", "MAX_INPUT", "canonical_hetu", "fold_for_scan", "is_dash"]

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
