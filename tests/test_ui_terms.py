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
