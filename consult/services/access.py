"""Who may see a consultation: its participants, and on-duty experts it is offered to.

Anything else is indistinguishable from a consultation that does not exist (404).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.errors import NotFound
from consult.model import Principal
from consult.model.consultations import Consultation, Participant
from consult.model.intake import claim_role
from consult.services.content import Content
from consult.storage import consultations as store
from consult.storage import directory as directory_store


@dataclass(frozen=True)
class Access:
    consultation: Consultation
    participant: Participant | None
    eligible_expert: bool  # an on-duty expert (intake social worker) of the target org whom the routing matches
    participants: list[Participant]

    @property
    def offered(self) -> bool:
        return self.participant is None and self.eligible_expert and self.consultation.status == "open"

    @property
    def visible(self) -> bool:
        return self.participant is not None or self.offered


def routing_matches(consultation: Consultation, expert: dict[str, Any]) -> bool:
    direct = ((consultation.expert_id is None or consultation.expert_id == expert["user_id"])
              and (consultation.pool is None or consultation.pool in expert["pools"]))
    # An escalated consultation is offered to the backup pool as well (consult/services/routing.py).
    escalated = consultation.escalated_pool is not None and consultation.escalated_pool in expert["pools"]
    return expert["org"] == consultation.target_org and bool(expert["on_duty"]) and (direct or escalated)


async def resolve(
    conn: AsyncConnection, who: Principal, consultation_id: str, content: Content, *, for_claim: bool = False,
    opened: bool = True,
) -> Access:
    """Load a consultation for ``who``; raise 404 unless it is visible to them.

    ``for_claim`` also admits an eligible expert to a consultation someone else already
    claimed, so that the loser of a claim race learns of the conflict (409), not a 404. Without
    ``opened`` the question and close note stay sealed (a message is written without them).
    """
    consultation = await store.get(conn, consultation_id) if _plausible_id(consultation_id) else None
    if consultation is None:
        raise NotFound()
    participants = await store.list_participants(conn, consultation_id)
    participant = next((p for p in participants if p.user_id == who.user_id), None)
    eligible = False
    # A statutory contact is offered to the intake's social workers, anything else to experts.
    if who.has(claim_role(consultation.purpose)) and who.org == consultation.target_org:
        expert = await directory_store.get_expert(conn, who.user_id)
        eligible = expert is not None and routing_matches(consultation, expert)
    access = Access(consultation, participant, eligible, participants)
    if not access.visible and not (for_claim and eligible):
        raise NotFound()
    return replace(access, consultation=await content.open_consultation(conn, consultation)) if opened else access


def _plausible_id(value: str) -> bool:
    return 0 < len(value) <= 36
