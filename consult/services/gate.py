"""The content gate: every text a user writes passes here before anything is stored, shown to
another reader or written to the audit log (docs/capabilities.md C2, C3, C9).

What a field is decides what the gate does with an identifier the scanner finds
(``consult.policy.scan``: identity code, IBAN, phone number, e-mail address, with validators):

- **Free text read by other participants** — question, message text, close note, attachment
  caption, data item value, referral justification: an identity code becomes the link to the
  client in a client consultation (registered if new) or is removed in a ``general`` one; the
  other identifiers stay in the sealed text with their positions, and the policy decides per
  reader, at every read, whether each is shown or replaced by a marker
  (``consult/services/freetext.py``).
- **Attachment file names**: an identity code is removed (a link is no file name); the rest is
  a data item value as above, and the download's file name is rendered for its reader too.
- **References kept and shown or logged as typed** — ``case_ref``, a consent's
  ``evidence_ref``, an agreement's ``reference`` (copied into the audit log's ``basis``), an
  expert's name, the written reasons kept beside the audit log (break-glass justification,
  reason for an older access report, a sender's confirmation of sensitive free text): any
  identifier refuses the request with 422
  ``identifier_in_text``, naming the field and the kinds found, never the value. A link makes
  no sense there, and a removal would silently change a reference.
- **Knowledge entries**, searched by every organisation in clear: any identifier or client link
  refuses the entry (422 ``personal_data_found``, field, kind and position).
- **Names from the identity provider**: a sign-in is not refused for its name, so identifiers
  are removed before the name is stored or shown to anyone else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.errors import Unprocessable
from consult.model import Principal, identifiers
from consult.policy.scan import Finding, redact, scan
from consult.services.clients import Clients
from consult.services.freetext import REMOVED_HETU, FreeText, Prepared, notices_for

__all__ = ["ContentGate", "IdentifierInText", "PersonalDataFound", "Prepared", "display_name",
           "entry_findings", "file_name", "holds_identifier", "notices_for", "reference", "references",
           "without_identifiers"]

REMOVED = "[poistettu]"
# A client link as free text renders it (consult/services/freetext.py): a pseudonym is still personal.
_CLIENT_LINK = re.compile(r"\[client:[^\]]*\]", re.IGNORECASE)


class IdentifierInText(Unprocessable):
    """422: a field kept as typed holds an identifier. Names the field and kinds, never the value."""

    code = "identifier_in_text"

    def __init__(self, field: str, found: list[Finding]) -> None:
        kinds = ", ".join(sorted({f.kind for f in found}))
        super().__init__(f"{field}: leave personal identifiers out ({kinds}); "
                         "refer to a client by client_ref.")
        self.findings = [{"field": field, "kind": f.kind, "start": f.start, "end": f.end} for f in found]

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = super().body()
        body["error"]["findings"] = self.findings
        return body


class PersonalDataFound(Unprocessable):
    """422 naming what the scan found: field, kind and position of each finding, never the text."""

    code = "personal_data_found"

    def __init__(self, findings: list[dict[str, Any]]) -> None:
        kinds = ", ".join(sorted({f["kind"] for f in findings}))
        super().__init__(f"The entry holds personal data ({kinds}); remove it and try again.")
        self.findings = findings

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = super().body()
        body["error"]["findings"] = self.findings
        return body


def reference(field: str, value: str | None) -> str | None:
    """``value`` unchanged, or 422 ``identifier_in_text`` if it holds any identifier: the one
    rule for every field kept as typed, written reasons included."""
    if value is None:
        return None
    found = scan(value)
    if found:
        raise IdentifierInText(field, found)
    return value


def references(field: str, values: Iterable[str]) -> None:
    """Each of ``values`` (a list field kept as typed) checked like ``reference``."""
    for index, value in enumerate(values):
        reference(f"{field}[{index}]", value)


#: The ids the service issues itself (UUIDs; client refs ``cl_`` + 20 hex digits): random, never
#: typed by a person, so never an identifier — though about one UUID in a thousand holds a run of
#: digits shaped like a phone number.
_ISSUED_ID = identifiers.ISSUED_ID


def holds_identifier(value: str, *, staff_id: bool = False) -> bool:
    """Whether an id from a path holds an identifier. A staff user id may be an e-mail address
    (identity providers use them as subjects); nothing else names a person's identifier."""
    if _ISSUED_ID.fullmatch(value):
        return False
    return any(not (staff_id and f.kind == "email") for f in scan(value))


def file_name(name: str) -> str:
    """An attachment's file name with identity codes removed; the rest is gated as an item value."""
    found = [f for f in scan(name) if f.kind == "hetu"]
    return redact(name, found, {"hetu": REMOVED_HETU}) if found else name


def without_identifiers(text: str) -> str:
    """``text`` with every identifier replaced by ``[poistettu]``."""
    found = scan(text)
    return redact(text, found, lambda _kind: REMOVED) if found else text


@functools.lru_cache(maxsize=4096)
def display_name(name: str) -> str:
    """A name from the identity provider: a sign-in is not refused for it, its identifiers go.
    Every request of a user carries the same name, so each distinct name is scanned once."""
    return without_identifiers(name)


def entry_findings(fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """Identifiers and client links in a knowledge entry: field, kind and position of each."""
    found = []
    for name, value in fields.items():
        found += [{"field": name, "kind": f.kind, "start": f.start, "end": f.end} for f in scan(value)]
        found += [{"field": name, "kind": "client_ref", "start": m.start(), "end": m.end()}
                  for m in _CLIENT_LINK.finditer(value)]
    return sorted(found, key=lambda f: (f["field"], f["start"]))


class ContentGate:
    """Free text of a consultation, gated inside the write unit that stores it."""

    def __init__(self, clients: Clients) -> None:
        self._free = FreeText(clients)

    async def free_text(self, conn: AsyncConnection, who: Principal, text: str, purpose: str, at: datetime,
                        *, field: str | None = None, findings: list[Finding] | None = None) -> Prepared:
        """Identity codes linked (client purpose) or removed (``general``), other identifiers
        kept with their positions for the per-reader decision. ``field`` names the field in
        the sender's notices when it is not the main text; ``findings`` are ``scan(text)``
        when the caller already scanned it (a text is scanned once on its way in)."""
        prepared = await self._free.prepare(conn, who, text, purpose, at, findings=findings)
        if field is None or not prepared.notices:
            return prepared
        return Prepared(prepared.text, prepared.spans, [{**n, "field": field} for n in prepared.notices])
