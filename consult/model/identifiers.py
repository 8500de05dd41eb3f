"""The grammar of the ids Konsulta reads and issues: user ids, organisation ids, names (pools,
topics, actions), client references and the UUIDs the service hands out.

The one home for these shapes: request validation, the token checks, the free-text gate (which
must tell an issued id from a person's identifier), the services and the command line read them
here. Each pattern is anchored with ``\\A`` and ``\\Z``, so ``match``, ``fullmatch`` and ``search``
agree and a trailing newline never slips through (``$`` alone would let one pass).
"""

from __future__ import annotations

import re
import secrets
from typing import Final, NewType

USER_ID_MAX: Final = 128
ORG_MAX: Final = 64
NAME_MAX: Final = 64
CLIENT_REF_MAX: Final = 40

USER_ID_SHAPE: Final = rf"[A-Za-z0-9._@:-]{{1,{USER_ID_MAX}}}"
"""A staff user id: the ``sub`` of an access token (identity providers use e-mail addresses, URNs)."""
ORG_SHAPE: Final = rf"[a-z0-9_-]{{1,{ORG_MAX}}}"
"""An organisation id (``kela``, ``vantaa``): the ``org`` claim and every ``*_org`` field."""
NAME_SHAPE: Final = rf"[a-z0-9_.-]{{1,{NAME_MAX}}}"
"""A lowercase name: a pool, a topic, a category or role in a query."""
CLIENT_PREFIX: Final = "cl_"
CLIENT_REF_SHAPE: Final = rf"{CLIENT_PREFIX}[A-Za-z0-9]{{1,{CLIENT_REF_MAX - len(CLIENT_PREFIX)}}}"
"""A client reference as accepted from a caller (at most 40 characters); the service issues only
`ISSUED_CLIENT_REF_SHAPE`."""
ISSUED_CLIENT_REF_SHAPE: Final = rf"{CLIENT_PREFIX}[0-9a-f]{{20}}"
"""A client reference the service issues: ``cl_`` and 20 random hex digits (`new_client_ref`)."""
ClientRef = NewType("ClientRef", str)
"""A client reference (``cl_...``): the pseudonymous link to a client that consultations, consents
and audit records carry instead of an identity code. Made from text only where it was checked
against `CLIENT_REF` or issued by `new_client_ref`."""
UUID_SHAPE: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
"""A consultation, message, consent or audit record id (lowercase ``uuid4`` text)."""


def _whole(shape: str) -> re.Pattern[str]:
    return re.compile(rf"\A(?:{shape})\Z")


USER_ID: Final = _whole(USER_ID_SHAPE)
ORG: Final = _whole(ORG_SHAPE)
NAME: Final = _whole(NAME_SHAPE)
CLIENT_REF: Final = _whole(CLIENT_REF_SHAPE)
ISSUED_CLIENT_REF: Final = _whole(ISSUED_CLIENT_REF_SHAPE)
UUID: Final = _whole(UUID_SHAPE)
ISSUED_ID: Final = _whole(f"{UUID_SHAPE}|{ISSUED_CLIENT_REF_SHAPE}")
"""An id the service issued itself: random, never typed by a person."""
CLIENT_LINK: Final = re.compile(rf"\[client:({ISSUED_CLIENT_REF_SHAPE})\]")
"""A client link as free text carries it (``[client:cl_...]``), the reference as group 1."""


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID.match(value) is not None


def is_client_ref(value: object) -> bool:
    return isinstance(value, str) and CLIENT_REF.match(value) is not None


def is_issued_id(value: object) -> bool:
    return isinstance(value, str) and ISSUED_ID.match(value) is not None


def new_client_ref() -> ClientRef:
    """A fresh client reference: random, so it says nothing about the client."""
    return ClientRef(CLIENT_PREFIX + secrets.token_hex(10))


def as_client_ref(value: str | None) -> ClientRef | None:
    """A client reference read from a request (already checked against `CLIENT_REF` or
    `ISSUED_ID`), typed as one."""
    return None if value is None else ClientRef(value)
