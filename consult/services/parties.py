"""Who a party is for the policy: the one place that turns a user, a participant row, a message's
author or a consultation's creator into the `Party` the engine decides for.

A reader's party (`reader`) follows one rule, and every reader's party is made by it. A
participant reads in the role they take part in. A reader who has not joined — an on-duty expert
or intake social worker the consultation is offered to, a privacy officer of a party
organisation opening it with break-glass — reads in the role the receiving side is offered
(`consult.model.intake.claim_role`) when they are of the target organisation and hold that role,
and otherwise in the most specific of their own roles (`acting`). So the same user gets the same
decision for a message, an attachment and the question, before and after any of them is read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from consult.model import Principal
from consult.model.actions import PARTICIPANT_PREFERENCE
from consult.model.consultations import Consultation, Participant
from consult.model.intake import claim_role
from consult.model.messages import Message
from consult.policy.model import Party

Row = Mapping[str, Any]


class Addressed(Protocol):
    """What the reader rule needs of a consultation: where it goes and for what purpose."""

    @property
    def target_org(self) -> str: ...

    @property
    def purpose(self) -> str: ...


def of_roles(user_id: str | None, org: str, roles: Collection[str]) -> Party:
    """The role a user acts in within a consultation: the most specific of their roles."""
    role = next((r for r in PARTICIPANT_PREFERENCE if r in roles), next(iter(sorted(roles)), "none"))
    return Party(org=org, role=role, user_id=user_id)


def acting(who: Principal) -> Party:
    """The caller as a party before they take part in anything (opening a consultation)."""
    return of_roles(who.user_id, who.org, who.roles)


def author(m: Message | Row) -> Party:
    """The author of a message, or of an attachment row (``author_org``, ``author_role``, ``author_id``)."""
    if isinstance(m, Message):
        return Party(org=m.author_org, role=m.author_role, user_id=m.author_id)
    return Party(org=m["author_org"], role=m["author_role"], user_id=m["author_id"])


def creator(c: Consultation) -> Party:
    """Who opened the consultation (the question's author); rows from before the creator's role
    was recorded were opened by an advisor."""
    return Party(org=c.origin_org, role=c.created_role or "advisor", user_id=c.created_by)


def closer(c: Consultation) -> Party:
    """Who closed the consultation (the close note's author; only asked once ``closed_by`` is set)."""
    return Party(org=c.closed_org or "", role=c.closed_role or "", user_id=c.closed_by)


def reader(c: Addressed, user_id: str | None, org: str, *, joined_role: str | None = None,
           roles: Collection[str] = ()) -> Party:
    """The party a user reads consultation ``c`` as — the one rule for every reader, whether
    they read through the API, receive a live event or are a recipient the sender is warned
    about. ``joined_role`` is the role they take part in, if they have joined; ``roles`` are
    theirs. See the module docstring for the fallback for a reader who has not joined."""
    if joined_role is not None:
        return Party(org=org, role=joined_role, user_id=user_id)
    offered_role = claim_role(c.purpose)
    if org == c.target_org and offered_role in roles:
        return Party(org=org, role=offered_role, user_id=user_id)
    return of_roles(user_id, org, roles)


def of_principal(who: Principal, joined: Participant | None, c: Addressed) -> Party:
    """`reader` for the signed-in caller; ``joined`` is their participation, if any."""
    return reader(c, who.user_id, who.org, joined_role=joined.role if joined else None, roles=who.roles)


def participant(c: Addressed, p: Participant) -> Party:
    """`reader` for a participant of ``c``."""
    return reader(c, p.user_id, p.org, joined_role=p.role)


def offered(c: Addressed, user_id: str | None = None) -> Party:
    """`reader` for a user of the receiving organisation ``c`` is offered to (or, with no user,
    whoever will claim it): they hold the role its purpose is offered to. ``c`` needs only its
    ``target_org`` and ``purpose`` (a consultation, or one about to be opened)."""
    return reader(c, user_id, c.target_org, roles=(claim_role(c.purpose),))
