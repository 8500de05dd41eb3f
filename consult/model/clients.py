"""A client as the services hold it: the registry's record and the answer to a registration.

The registry knows a client only by a pseudonymous `ClientRef`, a keyed blind index of the
identity code and the code sealed; nothing here carries the code in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consult.model.identifiers import ClientRef


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One registered client, as stored."""

    client_ref: ClientRef
    hetu_index: str
    hetu_sealed: bytes
    created_at: datetime
    created_by: str
    created_org: str
    hetu_form: int


@dataclass(frozen=True, slots=True)
class ClientLink:
    """The answer to a registration: the client's reference, and whether it was new."""

    client_ref: ClientRef
    created: bool

    def wire(self) -> dict[str, Any]:
        return {"client_ref": self.client_ref, "created": self.created}
