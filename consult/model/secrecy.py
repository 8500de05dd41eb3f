"""The secrecy marking (salassapitomerkintä) of documents that carry social-welfare client data:
one source for its wording in Finnish, Swedish and English, for the HTTP header, JSON field and
text line that carry it.

Social-welfare client data is secret under the Act on the Openness of Government Activities
(julkisuuslaki 621/1999) § 24(1) point 25; a document handed out that contains it is marked so
(621/1999 § 25: the marking states the secrecy and the provision it rests on). Consent receipts,
access reports and log extracts, audit exports and the message view carry it.
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("fi", "sv", "en")

MARKING: Final[dict[str, str]] = {
    "fi": "SALASSA PIDETTÄVÄ, JulkL 24 § 1 mom. 25 k.",
    "sv": "SEKRETESSBELAGD, OffL 24 § 1 mom. 25 p.",
    "en": "CONFIDENTIAL, Act on the Openness of Government Activities 621/1999 s. 24(1)(25)",
}
"""The marking line as printed on a document, per language."""

HEADER: Final = "X-Secrecy"
"""The HTTP header that marks a response carrying secret client data."""

HEADER_VALUE: Final = "confidential; basis=\"621/1999 24(1)(25)\""
"""The header's value: ASCII only, as HTTP field values should be; the basis as in ``MARKING``."""


def marking(lang: str = "fi") -> str:
    """The marking line in ``lang`` (fi, sv or en; Finnish for anything else)."""
    return MARKING.get(lang, MARKING["fi"])


def field() -> dict[str, str]:
    """The ``secrecy`` field of a JSON response: the marking in every language."""
    return dict(MARKING)


def marked(text: str, lang: str = "fi") -> str:
    """A human-readable document with the marking as its first line and again as its last."""
    line = marking(lang)
    body = text if text.endswith("\n") else text + "\n"
    return f"{line}\n\n{body}\n{line}\n"
