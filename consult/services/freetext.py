"""The mechanics of free text for the content gate (consult/services/gate.py): identifiers
replaced or recorded by position before the text is stored, and rendered per reader after.

A HETU is never stored: in a client consultation it becomes a link to the client (registered
if new); in a ``general`` one, which carries no client data, it is removed. IBANs, phone
numbers and e-mail addresses stay in the stored text with their positions recorded, and the
policy decides per reader, at every read, whether each one is shown or replaced by a marker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.model import Principal
from consult.model.hetu import canonical_hetu
from consult.policy.model import Decision
from consult.policy.scan import Finding, scan
from consult.services.clients import Clients

REMOVED_HETU = "[henkilötunnus poistettu]"


def client_link(client_ref: str) -> str:
    return f"[client:{client_ref}]"


def withheld_marker(kind: str) -> str:
    return f"[{kind} withheld]"


@dataclass(frozen=True)
class Prepared:
    text: str
    spans: list[dict[str, Any]]  # {"kind", "start", "end"} in ``text``
    notices: list[dict[str, Any]]  # what the sender is told: kind and action, never the value


def notices_for(findings: list[Finding], purpose: str) -> list[dict[str, Any]]:
    """What will happen to each identifier, for the sender's warning before sending."""
    notices = []
    for f in findings:
        if f.kind == "hetu":
            action = "removed" if purpose == "general" else "replaced_by_client_link"
        else:
            action = "checked_per_recipient"
        notices.append({"kind": f.kind, "start": f.start, "end": f.end, "action": action})
    return notices


class FreeText:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    async def prepare(
        self, conn: AsyncConnection, who: Principal, text: str, purpose: str, at: datetime,
        *, findings: list[Finding] | None = None,
    ) -> Prepared:
        """Inside a write unit: replace HETUs, register linked clients, record other spans.
        ``findings`` are ``scan(text)`` if the caller has them already."""
        if findings is None:
            findings = scan(text)
        if not findings:
            return Prepared(text, [], [])
        out: list[str] = []
        spans: list[dict[str, Any]] = []
        notices: list[dict[str, Any]] = []
        pos = 0
        length = 0
        for f in findings:
            out.append(text[pos:f.start])
            length += f.start - pos
            original = text[f.start:f.end]
            if f.kind == "hetu":
                canonical = canonical_hetu(original)
                if purpose == "general" or canonical is None:
                    replacement = REMOVED_HETU
                    notices.append({"kind": "hetu", "action": "removed"})
                else:
                    ref, _created = await self.clients.link(conn, who, canonical, at)
                    replacement = client_link(ref)
                    notices.append({"kind": "hetu", "action": "replaced_by_client_link", "client_ref": ref})
                out.append(replacement)
                length += len(replacement)
            else:
                spans.append({"kind": f.kind, "start": length, "end": length + len(original)})
                notices.append({"kind": f.kind, "action": "checked_per_recipient"})
                out.append(original)
                length += len(original)
            pos = f.end
        out.append(text[pos:])
        return Prepared("".join(out), spans, notices)


def render(text: str, spans: list[dict[str, Any]] | None, decide: Callable[[str], Decision]) -> str:
    """``text`` as one reader may see it: spans the policy does not permit become markers."""
    if not spans:
        return text
    out, pos = [], 0
    for span in sorted(spans, key=lambda s: s["start"]):
        out.append(text[pos:span["start"]])
        decision = decide(span["kind"])
        out.append(text[span["start"]:span["end"]] if decision.permitted else withheld_marker(span["kind"]))
        pos = span["end"]
    out.append(text[pos:])
    return "".join(out)
