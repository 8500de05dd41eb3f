"""Who a party is for the policy: the one place that turns a user, a participant row, a message's
author or a consultation's creator into the `Party` the engine decides for.

A reader's party (`reader`) follows one rule. A participant reads in the role they take part
in. A reader who has not joined — an on-duty expert or intake social worker the consultation is
offered to, a privacy officer of a party organisation opening it with break-glass — reads in the
role the receiving side is offered (`consult.model.intake.claim_role`) when they are of the target
organisation and hold that role, and otherwise in the most specific of their own roles
(`acting`). So the same user gets the same decision for a message, an attachment and the
question, before and after any of them is read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from consult.model import Principal
from consult.model.actions import PARTICIPANT_PREFERENCE
from consult.model.intake import claim_role
from consult.policy.model import Party

Row = Mapping[str, Any]


def of_roles(user_id: str | None, org: str, roles: Collection[str]) -> Party:
    """The role a user acts in within a consultation: the most specific of their roles."""
    role = next((r for r in PARTICIPANT_PREFERENCE if r in roles), next(iter(sorted(roles)), "none"))
    return Party(org=org, role=role, user_id=user_id)


def acting(who: Principal) -> Party:
    """The caller as a party before they take part in anything (opening a consultation)."""
    return of_roles(who.user_id, who.org, who.roles)


def participant(p: Row) -> Party:
    """A ``consultation_participants`` row."""
    return Party(org=p["org"], role=p["role"], user_id=p["user_id"])


def author(row: Row) -> Party:
    """The author of a message or attachment row (``author_org``, ``author_role``, ``author_id``)."""
    return Party(org=row["author_org"], role=row["author_role"], user_id=row["author_id"])


def creator(c: Row) -> Party:
    """Who opened the consultation (the question's author); rows from before the creator's role
    was recorded were opened by an advisor."""
    return Party(org=c["origin_org"], role=c["created_role"] or "advisor", user_id=c["created_by"])


def closer(c: Row) -> Party:
    """Who closed the consultation (the close note's author)."""
    return Party(org=c["closed_org"], role=c["closed_role"], user_id=c["closed_by"])


def receiving(org: str, purpose: str, user_id: str | None = None) -> Party:
    """A user of the receiving organisation the consultation is offered to (or, with no user,
    whoever will claim it), in the role the purpose is offered to."""
    return Party(org=org, role=claim_role(purpose), user_id=user_id)


def offered(c: Row, user_id: str | None = None) -> Party:
    return receiving(c["target_org"], c["purpose"], user_id)


def reader(who: Principal, joined: Row | None, c: Row) -> Party:
    """The party ``who`` reads ``c`` as; ``joined`` is their participant row, if any. See the
    module docstring for the one fallback for a reader who has not joined."""
    if joined is not None:
        return Party(org=who.org, role=joined["role"], user_id=who.user_id)
    offered_role = claim_role(c["purpose"])
    if who.org == c["target_org"] and who.has(offered_role):
        return Party(org=who.org, role=offered_role, user_id=who.user_id)
    return acting(who)
