"""The one canonical form of an identity code (consult/model/hetu.py) and the scanner that
uses it: every typed variant of one code is one person, and the scanner finds every variant.
All codes are synthetic (valid check characters computed independently of the validator)."""

from __future__ import annotations

import sys
import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings, strategies as st
from stdnum.fi import hetu as stdnum_hetu
from stdnum.util import clean as stdnum_clean

from consult.model.hetu import CENTURY_SIGNS, _fold_code, canonical_hetu, fold_for_scan, is_dash
from consult.policy.scan import scan
from tests.policy.support import CENTURY_SIGNS as SIGNS_BY_CENTURY, synthetic_hetu
from tests.conftest import examples

#: What people and word processors put between the birth date and the individual number.
DASHES = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\ufe58",
          "\ufe63", "\uff0d", "\u00ad", "\u2043", "\u207b", "\u208b", "\u02d7", "\u00af",
          "\u203e", "\u2e3a", "\u2e3b"]
SPACES = ["", " ", "\u00a0", "\u202f", "\u2009", "\t"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u202a"]


def _fullwidth(text: str) -> str:
    """ASCII digits and letters as their full-width forms (U+FF10.., U+FF21..)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() and c.isascii() else c for c in text)


@st.composite
def codes(draw) -> str:
    day = draw(st.dates(date(1800, 1, 1), date(2099, 12, 31)))
    sign = draw(st.sampled_from(SIGNS_BY_CENTURY[day.year // 100 * 100]))
    return synthetic_hetu(day.day, day.month, day.year, draw(st.integers(2, 999)), sign)


@st.composite
def variants(draw, code: str) -> str:
    """One way of typing ``code``: dash variant, spaces around the sign, case, full width,
    invisible characters anywhere inside."""
    chars = list(code)
    if chars[6] == "-":
        chars[6] = draw(st.sampled_from(DASHES))
    if draw(st.booleans()):
        chars = [c.lower() for c in chars]
    if draw(st.booleans()):
        chars = [_fullwidth(c) for c in chars]
    chars[6] = draw(st.sampled_from(SPACES)) + chars[6] + draw(st.sampled_from(SPACES))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(1, 10))
        chars[at] = draw(st.sampled_from(INVISIBLE)) + chars[at]
    return "".join(chars)


@settings(max_examples=examples(100, 1000), deadline=None)
@given(st.data())
def test_every_variant_has_the_one_canonical_form(data):
    """Property: however a code is typed, it is one person (one blind index, one client_ref)."""
    code = data.draw(codes())
    variant = data.draw(variants(code))
    assert canonical_hetu(variant) == code


@settings(max_examples=examples(100, 1000), deadline=None)
@given(st.data(), st.sampled_from(["Asiakas ", "tunnus: ", "(", "hetu_", "\n", ""]),
       st.sampled_from([" soittaa.", ").", ", kiitos", "\n", ""]))
def test_scanner_finds_every_variant_in_text(data, before, after):
    """Property: the scanner finds a code in free text in every form the registry accepts,
    at the offsets of the original text, and its slice has the same canonical form."""
    code = data.draw(codes())
    variant = data.draw(variants(code))
    text = f"{before}{variant}{after}"
    findings = [f for f in scan(text) if f.kind == "hetu"]
    assert len(findings) == 1
    [found] = findings
    assert canonical_hetu(text[found.start:found.end]) == code
    assert text[found.start:found.end].strip() == variant.strip()


@pytest.mark.parametrize("dash", ["\u2013", "\u2212", "\u2011", "\u2014", "\u2010", "\u2015", "\ufe58",
                                  "\ufe63", "\uff0d", "\u2012"])
def test_the_dashes_seen_in_the_finding_are_folded(dash):
    assert canonical_hetu(f"131052{dash}308T") == "131052-308T"
    assert [(f.kind, f.start, f.end) for f in scan(f"asiakas 131052{dash}308T.")] == [("hetu", 8, 19)]


@pytest.mark.parametrize("sign", CENTURY_SIGNS.replace("-", ""))
def test_a_dash_never_stands_for_another_century_sign(sign):
    """A dash variant is "-" and nothing else: a code issued with "A" or "+" typed with a dash
    is a different (here: invalid) code, never the letter-sign one."""
    year = {"+": 1852, "A": 2010, "B": 2010, "C": 2010, "D": 2010, "E": 2010, "F": 2010}.get(sign, 1952)
    code = synthetic_hetu(13, 10, year, 308, sign)
    dashed = code[:6] + "\u2013" + code[7:]
    assert canonical_hetu(code) == code
    assert canonical_hetu(dashed) in (None, code[:6] + "-" + code[7:])
    assert canonical_hetu(dashed) != code


def test_every_unicode_dash_punctuation_character_is_folded():
    """All of Unicode's Dash_Punctuation (Pd), and everything python-stdnum reads as "-",
    fold to "-" — so the validator never accepts a code that the index keeps apart."""
    stdnum_dashes = []
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        if unicodedata.category(char) == "Pd" or (char != "-" and stdnum_clean(char) == "-"):
            assert is_dash(char), f"U+{cp:04X}"
            stdnum_dashes.append(char)
    for char in stdnum_dashes:
        raw = f"131052{char}308T"
        assert canonical_hetu(raw) == "131052-308T", f"U+{ord(char):04X}"
        assert [f.kind for f in scan(f"x {raw} y")] == ["hetu"], f"U+{ord(char):04X}"


def test_anything_stdnum_accepts_as_the_separator_has_the_canonical_form():
    """No code point in the separator position makes python-stdnum say "valid" while the
    canonical form says something else."""
    for cp in range(sys.maxunicode + 1):
        raw = f"131052{chr(cp)}308T"
        if stdnum_hetu.is_valid(raw):
            assert canonical_hetu(raw) == stdnum_hetu.compact(raw), f"U+{cp:04X}"


@pytest.mark.parametrize("bad", ["131052-308", "131052-308TT", "131052_308T", "131052.308T",
                                 "131052--308T", "13105-2308T", "131052-308T" + " " * 60,
                                 "١٣١٠٥٢-٣٠٨T", "131052-308G", ""])
def test_what_is_not_a_code_stays_not_a_code(bad):
    assert canonical_hetu(bad) is None


def test_folding_for_the_scanner_keeps_every_offset():
    text = "１３１０５２—３０８ｔ\u200b ja\u00a0040 1234567 ¯ ﬁ"
    folded = fold_for_scan(text)
    assert len(folded) == len(text)
    assert folded.startswith("131052-308t\u200b ja 040")


def test_scanner_allows_three_spaces_around_the_sign_and_no_more():
    assert [f.kind for f in scan("tunnus 131052 \u00a0 - \u2009 308T.")] == ["hetu"]
    assert scan("tunnus 131052    -308T.") == []
    assert [f.kind for f in scan("tunnus 1310\u200b52-30\u200d8T.")] == ["hetu"]


@settings(max_examples=examples(100, 1000), deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=24))
def test_the_ascii_shortcut_folds_exactly_like_the_general_path(value):
    assert "".join(value.split()).upper() == _fold_code(value)
