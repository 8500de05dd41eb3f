"""Where statutory contacts go: a sosiaalihuoltolaki 1301/2014 35 § contact to the receiving
county's social-work intake, a lastensuojelulaki 417/2007 25 § notification to its child-welfare
intake; each an intake pool of social workers, offered at once with its own service level."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consult.model.vocabulary import INTAKE_PURPOSES, INTAKE_ROLE, NOTIFICATION_PURPOSE, REFERRAL_PURPOSE


def claim_role(purpose: str) -> str:
    """The role that is offered, claims and takes part on the receiving side: a social worker
    for a statutory contact, otherwise a named expert."""
    return INTAKE_ROLE if purpose in INTAKE_PURPOSES else "expert"


def may_receive(purpose: str, roles: Iterable[str] | None) -> bool:
    """Whether a directory entry with ``roles`` (None: not signed in yet) is offered a
    consultation of ``purpose``. An entry whose roles are unknown is treated as an expert's."""
    if roles is None:
        return purpose not in INTAKE_PURPOSES
    return claim_role(purpose) in set(roles)


@dataclass(frozen=True)
class Intakes:
    """The intake pool of each statutory purpose (configuration) and their service level."""

    pools: Mapping[str, str] = field(default_factory=lambda: {REFERRAL_PURPOSE: "social_work_intake",
                                                              NOTIFICATION_PURPOSE: "child_welfare_intake"})
    sla_seconds: int = 120

    def pool_for(self, purpose: str) -> str | None:
        return self.pools.get(purpose)

    @property
    def pool_names(self) -> frozenset[str]:
        return frozenset(self.pools.values())
