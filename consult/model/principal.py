"""Who is acting: the authenticated caller as the service sees them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    org: str
    roles: frozenset[str]
    name: str

    def has(self, role: str) -> bool:
        return role in self.roles

    def as_json(self) -> dict[str, object]:
        return {"id": self.user_id, "org": self.org, "roles": sorted(self.roles), "name": self.name}
