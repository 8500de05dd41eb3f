"""SQL for the deployment's identity: the recorded audit origin and key fingerprints
(tables ``deployment`` and ``deployment_keks``), and the questions start-up asks before it trusts
a key file: does the database hold data, and which wrapped keys and checkpoint can prove a key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_utc
from consult.storage.tables import (
    audit_checkpoints,
    audit_events,
    clients,
    consultations,
    data_keys,
    deployment,
    deployment_keks,
)

_ROW_ID = 1


@dataclass(frozen=True, slots=True)
class RecordedKek:
    version: int
    fingerprint: str
    status: str  # pending, active, retired, removed


@dataclass(frozen=True, slots=True)
class RecordedDeployment:
    origin: str
    audit_key_fingerprint: str
    audit_verifier_key: str
    blind_index_fingerprint: str
    bound: str
    recorded_at: datetime
    keks: tuple[RecordedKek, ...]


@dataclass(frozen=True, slots=True)
class StoredWrappedKey:
    owner: str
    kek_version: int
    wrapped: bytes


async def recorded(conn: AsyncConnection) -> RecordedDeployment | None:
    row = (await conn.execute(select(deployment).where(deployment.c.id == _ROW_ID))).first()
    if row is None:
        return None
    keks = (await conn.execute(select(deployment_keks).order_by(deployment_keks.c.version))).all()
    return RecordedDeployment(
        origin=row.origin,
        audit_key_fingerprint=row.audit_key_fingerprint,
        audit_verifier_key=row.audit_verifier_key,
        blind_index_fingerprint=row.blind_index_fingerprint,
        bound=row.bound,
        recorded_at=as_utc(row.recorded_at),  # type: ignore[arg-type]
        keks=tuple(RecordedKek(k.version, k.fingerprint, k.status) for k in keks),
    )


async def holds_data(conn: AsyncConnection) -> bool:
    """Whether anything was ever written that keys protect or sign (content, clients, the log)."""
    for table in (data_keys, audit_events, audit_checkpoints, clients, consultations):
        if await conn.scalar(select(exists().select_from(table))):
            return True
    return False


async def record(conn: AsyncConnection, *, origin: str, audit_key_fingerprint: str, audit_verifier_key: str,
                 blind_index_fingerprint: str, bound: str, keks: dict[int, tuple[str, str]],
                 at: datetime) -> None:
    """Record the deployment row and every KEK version (``{version: (fingerprint, status)}``)."""
    await conn.execute(insert(deployment).values(
        id=_ROW_ID, origin=origin, audit_key_fingerprint=audit_key_fingerprint,
        audit_verifier_key=audit_verifier_key, blind_index_fingerprint=blind_index_fingerprint,
        bound=bound, recorded_at=at,
    ))
    for version, (fingerprint, status) in sorted(keks.items()):
        await record_kek(conn, version, fingerprint, status, at)


async def record_kek(conn: AsyncConnection, version: int, fingerprint: str, status: str, at: datetime) -> None:
    await conn.execute(insert(deployment_keks).values(
        version=version, fingerprint=fingerprint, status=status, recorded_at=at))


async def set_kek_status(conn: AsyncConnection, version: int, status: str, at: datetime) -> None:
    await conn.execute(
        update(deployment_keks).where(deployment_keks.c.version == version).values(status=status, changed_at=at))


async def forget_pending(conn: AsyncConnection, version: int) -> None:
    """Drop a pending version that never reached the key file (a rotation stopped before it)."""
    await conn.execute(delete(deployment_keks).where(
        deployment_keks.c.version == version, deployment_keks.c.status == "pending"))


async def one_wrapped_key_per_version(conn: AsyncConnection) -> list[StoredWrappedKey]:
    """For each KEK version in use, the first live wrapped data key under it."""
    versions = (await conn.execute(
        select(data_keys.c.kek_version).where(data_keys.c.kek_version.is_not(None),
                                              data_keys.c.destroyed_at.is_(None)).distinct()
    )).scalars().all()
    found = []
    for version in sorted(versions):
        row = (await conn.execute(
            select(data_keys.c.owner, data_keys.c.kek_version, data_keys.c.wrapped)
            .where(data_keys.c.kek_version == version, data_keys.c.destroyed_at.is_(None))
            .order_by(data_keys.c.owner).limit(1)
        )).first()
        if row is not None:
            found.append(StoredWrappedKey(row.owner, row.kek_version, bytes(row.wrapped)))
    return found


async def live_wrapped_keys(conn: AsyncConnection, batch: int = 1000) -> AsyncIterator[list[StoredWrappedKey]]:
    """Every live (not shredded) wrapped data key, in batches ordered by owner."""
    after = ""
    while True:
        rows = (await conn.execute(
            select(data_keys.c.owner, data_keys.c.kek_version, data_keys.c.wrapped)
            .where(data_keys.c.owner > after, data_keys.c.kek_version.is_not(None),
                   data_keys.c.destroyed_at.is_(None))
            .order_by(data_keys.c.owner).limit(batch)
        )).all()
        if not rows:
            return
        yield [StoredWrappedKey(r.owner, r.kek_version, bytes(r.wrapped)) for r in rows]
        after = rows[-1].owner
