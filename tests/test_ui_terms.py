"""The Finnish and Swedish words of the user interface follow today's law and Kanta's vocabulary:
the municipal side is the wellbeing services county (hyvinvointialue, välfärdsområde) since 2023,
the client's log data is a log extract (lokitieto-ote, loggutdrag; 703/2023 § 11), and break-glass
is not called by the name of Kanta's emergency access (hätäkäyttö)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1] / "web"
FORBIDDEN = {
    "fi": re.compile(r"\bkunta|\bkunnan|\bkunnat|\bkuntien|tarkastusraportti|hätäkäyt", re.IGNORECASE),
    "sv": re.compile(r"\bkommun|granskningsrapport|nödåtkomst", re.IGNORECASE),
}


def _strings(lang: str) -> dict[str, str]:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_no_outdated_term_in_the_interface(lang):
    found = {k: v for k, v in _strings(lang).items() if FORBIDDEN[lang].search(v)}
    assert found == {}


def test_the_log_extract_and_break_glass_have_their_names():
    fi, sv = _strings("fi"), _strings("sv")
    assert fi["action.audit.log_extract"] == "lokitieto-ote" and sv["action.audit.log_extract"] == "loggutdrag"
    assert fi["action.break_glass"] == "poikkeuspääsy" and sv["action.break_glass"] == "undantagsåtkomst"
    assert fi["orgkind.wellbeing_county"] == "hyvinvointialue" and sv["orgkind.wellbeing_county"] == "välfärdsområde"
    # The privacy officer's own report is not the client's extract.
    assert "lokitieto-ote" not in fi["privacy.report"].lower()


def test_no_outdated_term_in_the_scripts():
    """Strings in the scripts go through i18n; none of the outdated words is written there either."""
    for path in (WEB / "js").rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        for lang, pattern in FORBIDDEN.items():
            assert not pattern.search(text), f"{path.name}: {lang}"


# Buttons whose visible text is short and whose accessible name says which row they act on: the
# name begins with the visible text, as a whole word (WCAG 2.5.3 label in name), in every language.
NOT_A_BUTTON = {"pools.sla.for"}  # a column heading, not a button's name
# Buttons whose visible text is a shared word of another key.
SHOWN_BY = {"pools.edit.for": "admin.edit", "agreements.edit.for": "admin.edit"}


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_a_buttons_name_begins_with_its_visible_text(lang):
    strings = _strings(lang)
    pairs = {k: k[: -len(".for")] for k in strings if k.endswith(".for") and k not in NOT_A_BUTTON} | SHOWN_BY
    bad = {}
    for named, shown in pairs.items():
        if shown in strings:
            text, name = strings[shown].lower(), strings[named].lower()
            if not re.match(re.escape(text) + r"\b", name):
                bad[named] = (strings[shown], strings[named])
    assert bad == {}


# One term for one thing in each language: a pool of experts is a pool, never a group (a steering
# group is another thing); a category of data is a tietoluokka, never a tietoryhmä.
POOL_TERMS = {
    "fi": (re.compile(r"pooli", re.IGNORECASE), re.compile(r"(?<!ohjaus)ryhm", re.IGNORECASE)),
    "sv": (re.compile(r"pool", re.IGNORECASE), re.compile(r"(?<!styr)grupp", re.IGNORECASE)),
    "en": (re.compile(r"pool", re.IGNORECASE), re.compile(r"(?<!steering )group", re.IGNORECASE)),
}


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_a_pool_has_one_name(lang):
    term, other = POOL_TERMS[lang]
    strings = _strings(lang)
    assert {k: v for k, v in strings.items() if other.search(v)} == {}
    assert term.search(strings["admin.pools"]) and term.search(strings["duty.pool"]) and term.search(strings["ask.pool"])
    assert term.search(strings["expert.pools"]) and term.search(strings["roster.pool"])
