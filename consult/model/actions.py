"""Which roles may attempt which action: the one action → roles table.

The HTTP edge checks it before a handler runs (each `Route` names its action), the services
check it again where they act, the OpenAPI document publishes it for each operation
(``x-roles``) and the web app reads it from there to decide what to show. A role in this table
only lets a user *attempt* an action: the organisation, the relationship to the consultation and
the data-minimisation policy are decided afterwards, per item and reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from consult.errors import Forbidden
from consult.model.principal import Principal

_STAFF = frozenset({"advisor", "expert", "social_worker"})

ROLES: Final[Mapping[str, frozenset[str]]] = MappingProxyType({
    # Consultations. Social workers open consultations and take statutory contacts (35 §, child
    # welfare) from an intake pool, so they both ask and claim.
    "consultation.create": frozenset({"advisor", "social_worker"}),
    "child_welfare.notify": frozenset({"advisor", "social_worker"}),
    "consultation.claim": frozenset({"expert", "social_worker"}),
    "consultation.participate": _STAFF,
    # Clients, consents and prohibitions.
    "client.register": _STAFF,
    "client.lookup": _STAFF | {"privacy_officer"},
    "consent.record": frozenset({"advisor", "social_worker"}),
    "consent.read": frozenset({"advisor", "social_worker", "privacy_officer"}),
    "prohibition.record": frozenset({"advisor", "social_worker"}),
    # The knowledge base.
    "knowledge.read": _STAFF | {"admin", "privacy_officer"},
    "knowledge.propose": frozenset({"expert"}),
    "knowledge.approve": frozenset({"expert"}),
    "knowledge.withdraw": frozenset({"expert", "admin"}),
    "knowledge.drafts": frozenset({"expert", "admin"}),
    # Administration. An admin names and changes the experts of their organisation; an expert
    # may only go on or off duty themselves. The route accepts either (``expert.update``).
    "expert.manage": frozenset({"admin"}),
    "expert.own_duty": frozenset({"expert"}),
    "expert.update": frozenset({"admin", "expert"}),
    "agreement.manage": frozenset({"admin"}),
    "pool.manage": frozenset({"admin"}),
    "roster.manage": frozenset({"admin"}),
    "keys.status": frozenset({"admin"}),
    "sessions.end": frozenset({"admin"}),
    "legal_hold.set": frozenset({"privacy_officer", "admin"}),
    "stats.read": frozenset({"admin", "privacy_officer"}),
    # Supervision (docs/capabilities.md C5): the access log and its proofs.
    "audit.read": frozenset({"privacy_officer"}),
})


def roles_for(action: str) -> frozenset[str]:
    """The roles that may attempt ``action``; an unknown action is a programming error."""
    return ROLES[action]


def allows(who: Principal, action: str) -> bool:
    return not who.roles.isdisjoint(ROLES[action])


def require(who: Principal, action: str, message: str = "Your role does not allow this.") -> None:
    """Raise 403 ``role`` unless one of ``who``'s roles may attempt ``action``."""
    if who.roles.isdisjoint(ROLES[action]):
        raise Forbidden(message, code="role")

PARTICIPANT_PREFERENCE: Final = ("social_worker", "expert", "advisor")
"""The roles of ``consultation.participate``, most specific first: a user holding several acts in
the first they hold (consult/services/parties.py)."""
