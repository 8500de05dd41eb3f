"""How long each kind of record is kept, per controller organisation, and where each period comes
from. The defaults cite their source; those marked "to check" must be confirmed by the controller
(its information-management plan, tiedonohjaussuunnitelma) before production.

Configured in the TOML file (``CONSULT_CONFIG``)::

    [retention]
    consultation_closed_days = 730
    [retention.orgs.vantaa]
    consultation_closed_days = 3650
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

# Record types: the keys of the [retention] table (without the ``_days`` suffix).
CONSULTATION_CLOSED = "consultation_closed"
CONSULTATION_INACTIVE = "consultation_inactive"
CONSENT = "consent"
PROHIBITION = "prohibition"
CLIENT = "client"
AUDIT_LOG = "audit_log"

KINDS = (CONSULTATION_CLOSED, CONSULTATION_INACTIVE, CONSENT, PROHIBITION, CLIENT, AUDIT_LOG)

_PLAN = "the controller's information-management plan (tiedonohjaussuunnitelma)"

# kind -> (default days, source, what happens at the end). ``None`` days for consultation_closed
# means CONSULT_RETENTION_DAYS (default 730).
DEFAULTS: Mapping[str, tuple[int | None, str, str]] = MappingProxyType({
    CONSULTATION_CLOSED: (
        None,
        f"{_PLAN}; to check. Konsulta is a transit channel: what the county must keep goes to its "
        "client record by the export, where the 703/2023 annex periods (10-30 years) run",
        "content crypto-shredded (data key destroyed); metadata and audit records stay"),
    CONSULTATION_INACTIVE: (
        90,
        f"{_PLAN}; to check",
        "closed by the system (outcome empty, closed_by system:retention); the closed period then runs"),
    CONSENT: (
        730,
        f"{_PLAN}; to check: kept as long as the disclosures that relied on it",
        "deleted with its events once ended (withdrawn or expired) for the period and no "
        "unshredded consultation relies on it"),
    PROHIBITION: (
        730,
        f"{_PLAN}; to check",
        "a revoked prohibition is deleted after the period; an active one is never deleted"),
    CLIENT: (
        4383,
        "as long as the audit log: the entry maps an identity code to the audit records a log "
        "extract (703/2023 § 11) reads; to check",
        "deleted (identity code and blind index) once no consultation content, consent or "
        "prohibition remains and its last audit record is older than the period"),
    AUDIT_LOG: (
        4383,
        "703/2023 log retention; to check (12 years under the earlier THL regulation on 159/2007, "
        "unverified)",
        "never deleted: the Merkle log cannot drop leaves; records past the period are counted "
        "and reported by every run"),
})


@dataclass(frozen=True)
class RetentionSchedule:
    """Periods in days per record type, with per-organisation overrides."""

    days: Mapping[str, int] = field(default_factory=dict)
    orgs: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def period(self, kind: str, *controllers: str | None, fallback: int | None = None) -> int:
        """The period for ``kind``: the longest of the named controllers' periods, since one copy
        serves every controller and none may lose what it must keep."""
        base = self.days.get(kind)
        if base is None:
            base = DEFAULTS[kind][0] if DEFAULTS[kind][0] is not None else fallback
        if base is None:
            raise ValueError(f"no retention period for {kind}")
        found = [self.orgs[o][kind] for o in controllers if o and o in self.orgs and kind in self.orgs[o]]
        return max([base, *found]) if found else base

    def with_days(self, kind: str, days: int) -> RetentionSchedule:
        return replace(self, days={**self.days, kind: days})

    @classmethod
    def parse(cls, raw: object, where: str) -> RetentionSchedule:
        """From the TOML ``[retention]`` table; a bad key or value raises ``ValueError``."""
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be a table")
        days: dict[str, int] = {}
        orgs: dict[str, dict[str, int]] = {}
        for key, value in raw.items():
            if key == "orgs":
                if not isinstance(value, dict):
                    raise ValueError(f"{where}.orgs must be a table of organisations")
                for org, table in value.items():
                    if not isinstance(table, dict):
                        raise ValueError(f"{where}.orgs.{org} must be a table")
                    orgs[org] = _periods(table, f"{where}.orgs.{org}")
            else:
                days.update(_periods({key: value}, where))
        return cls(days=MappingProxyType(days), orgs=MappingProxyType(orgs))


def _periods(table: dict[str, object], where: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in table.items():
        kind = key.removesuffix("_days")
        if not key.endswith("_days") or kind not in KINDS:
            raise ValueError(f"{where}: unknown retention setting {key!r}; known: "
                             + ", ".join(k + "_days" for k in KINDS))
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{where}.{key} must be a positive number of days")
        out[kind] = value
    return out
