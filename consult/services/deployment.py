"""Keys belong to their database: the deployment's audit origin and the fingerprints of its keys
are recorded in the database, and every process that opens the keys checks them first.

Keys are generated only for an empty database (its first start, or ``consult init``). A database
that holds data gets its recorded keys or nothing: a missing, different or extra-but-unknown key
file, a missing or different audit signing key and another deployment name each stop start-up
with one line naming the setting, the file and the fingerprint expected (a `ConfigError`).
A database written before fingerprints were recorded adopts the key files found — only after a
data key of every version in use unwraps and the newest checkpoint verifies with them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from consult.audit.checkpoint import CheckpointError, open_checkpoint, verifier_key
from consult.config import Settings
from consult.crypto import CryptoError, FileKeyring, KeyFileError, WrappedKey, owner_context, signing
from consult.errors import ConfigError
from consult.model import Clock
from consult.storage import audit_log, migrate
from consult.storage import deployment as store
from consult.storage.db import Database
from consult.storage.deployment import RecordedDeployment

log = logging.getLogger("consult.deployment")

KEY_FILE = "CONSULT_KEY_FILE"
AUDIT_KEY_FILE = "CONSULT_AUDIT_KEY_FILE"
DEPLOYMENT = "CONSULT_DEPLOYMENT"


@dataclass(frozen=True, slots=True)
class KeyFiles:
    """Where this process finds its keys, and the deployment it believes it is."""

    key_file: Path
    audit_key_file: Path
    deployment: str
    origin: str

    @classmethod
    def of(cls, settings: Settings) -> KeyFiles:
        return cls(settings.key_file, settings.effective_audit_key_file, settings.deployment, settings.audit_origin)


@dataclass(frozen=True, slots=True)
class BoundKeys:
    """Keys checked against the database's record."""

    keyring: FileKeyring
    audit_seed: bytes = field(repr=False)
    origin: str


class SchemaNotCurrent(ConfigError):
    """The database is not at the code's migration head."""


async def check_schema(db: Database) -> None:
    """Refuse a database that is not at this code's migration head (one line, no traceback)."""
    async with db.read() as conn:
        try:
            found = await migrate.revision(conn)
        except Exception as exc:  # unreachable or not a database at all
            raise ConfigError(f"CONSULT_DATABASE_URL: cannot read the database ({type(exc).__name__})") from None
    wanted = migrate.head()
    if found != wanted:
        where = "has no schema" if found is None else f"is at schema revision {found}"
        raise SchemaNotCurrent(f"the database {where}, this version needs {wanted}: run `consult db upgrade`")


async def bind_keys(db: Database, files: KeyFiles, clock: Clock, *, create: bool) -> BoundKeys:
    """The keys of ``files`` once they match what the database recorded.

    ``create``: an empty database with nothing recorded may get new keys (first start, init).
    """
    async with db.read() as conn:
        recorded = await store.recorded(conn)
        holds_data = await store.holds_data(conn) if recorded is None else True
    if recorded is not None:
        return await _checked(db, recorded, files, clock)
    if holds_data:
        return await _adopt(db, files, clock)
    if not create:
        raise ConfigError(f"{KEY_FILE}: the database has no keys recorded yet; run `consult init` "
                          "(or start the service once) to create them")
    return await _create(db, files, clock)


def mismatch(recorded: RecordedDeployment, keyring: FileKeyring, seed: bytes, files: KeyFiles) -> str | None:
    """Why the keys do not belong to this database (one line), or None when they do."""
    if recorded.origin != files.origin:
        return deployment_mismatch(recorded.origin, files)
    return kek_mismatch(recorded, keyring, files.key_file) or audit_key_mismatch(recorded, seed, files.audit_key_file)


def deployment_mismatch(recorded_origin: str, files: KeyFiles) -> str:
    name = recorded_origin.removeprefix("konsulta.").removesuffix("/audit")
    return (f"{DEPLOYMENT}: this database belongs to deployment {name!r} (audit origin {recorded_origin}), "
            f"not {files.deployment!r}; set {DEPLOYMENT}={name}")


def kek_mismatch(recorded: RecordedDeployment, keyring: FileKeyring, path: Path) -> str | None:
    known = {k.version: k for k in recorded.keks if k.status != "removed"}
    in_file = keyring.fingerprints()
    for version, fingerprint in sorted(in_file.items()):
        expected = known.get(version)
        if expected is None:
            return (f"{KEY_FILE}: {path} holds key version {version} (fingerprint {fingerprint}) that this "
                    f"database does not know; it expects {_expected(recorded)}")
        if expected.fingerprint != fingerprint:
            return (f"{KEY_FILE}: {path} is not this database's key file: key version {version} has fingerprint "
                    f"{fingerprint}, the database expects {expected.fingerprint}")
    for version, expected in sorted(known.items()):
        if expected.status == "active" and version not in in_file:
            return (f"{KEY_FILE}: {path} lacks key version {version} (fingerprint {expected.fingerprint}) "
                    "that this database's data is wrapped with; restore the key file")
    if keyring.blind_index_fingerprint() != recorded.blind_index_fingerprint:
        return (f"{KEY_FILE}: {path} is not this database's key file: its blind-index key has fingerprint "
                f"{keyring.blind_index_fingerprint()}, the database expects {recorded.blind_index_fingerprint}")
    return None


def audit_key_mismatch(recorded: RecordedDeployment, seed: bytes, path: Path) -> str | None:
    found = signing.signing_key_fingerprint(seed)
    if found != recorded.audit_key_fingerprint:
        return (f"{AUDIT_KEY_FILE}: {path} is not this database's audit signing key: fingerprint {found}, "
                f"the database expects {recorded.audit_key_fingerprint}")
    return None


def recorded_deployment(url: str) -> RecordedDeployment | None:
    """What the database at ``url`` recorded (None before migration 0006 or before its first start),
    on a connection and event loop of its own. Blocking: for the command line."""

    async def run() -> RecordedDeployment | None:
        db = Database(url)  # read-only use: no writer is started
        try:
            async with db.read() as conn:
                if await migrate.revision(conn) != migrate.head():
                    return None
                return await store.recorded(conn)
        finally:
            await db.close()

    return asyncio.run(run())


READINESS_TIMEOUT_SECONDS = 5.0


async def readiness(db: Database, bound: BoundKeys, files: KeyFiles, *, policy_loaded: bool) -> dict[str, str]:
    """Each readiness check as ``ok``, ``failed`` or ``skipped`` (when the database is unreachable)."""
    checks = {"database": "ok", "schema": "ok", "keys": "ok", "policy": "ok" if policy_loaded else "failed"}
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with db.read() as conn:
                found = await migrate.revision(conn)
    except Exception:  # unreachable, locked beyond the timeout, or not a database any more
        checks.update(database="failed", schema="skipped", keys="skipped")
        return checks
    if found != migrate.head():
        checks["schema"] = "failed"
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with db.read() as conn:
                recorded = await store.recorded(conn)
        if recorded is None or mismatch(recorded, bound.keyring, bound.audit_seed, files) is not None:
            checks["keys"] = "failed"
    except Exception:  # no record table (schema behind), or the key file became unreadable or unsafe
        checks["keys"] = "failed"
    return checks


def _expected(recorded: RecordedDeployment) -> str:
    live = [k for k in recorded.keks if k.status in ("active", "retired")]
    return "key versions " + ", ".join(f"{k.version} (fingerprint {k.fingerprint})" for k in live)


def _open_keyring(files: KeyFiles, recorded: RecordedDeployment | None) -> FileKeyring:
    try:
        return FileKeyring.open(files.key_file)
    except KeyFileError as exc:
        if recorded is None:
            raise ConfigError(f"{KEY_FILE}: {exc}; the database holds data, so no new key is generated") from None
        raise ConfigError(f"{KEY_FILE}: {exc}; this database expects {_expected(recorded)}") from None


def _load_audit_key(files: KeyFiles, recorded: RecordedDeployment | None) -> bytes:
    try:
        return signing.load_signing_key(files.audit_key_file)
    except KeyFileError as exc:
        if recorded is None:
            raise ConfigError(f"{AUDIT_KEY_FILE}: {exc}; the database holds data, so no new key is "
                              "generated") from None
        raise ConfigError(f"{AUDIT_KEY_FILE}: {exc}; this database expects the audit signing key with "
                          f"fingerprint {recorded.audit_key_fingerprint}") from None


async def _checked(db: Database, recorded: RecordedDeployment, files: KeyFiles, clock: Clock) -> BoundKeys:
    if recorded.origin != files.origin:
        raise ConfigError(deployment_mismatch(recorded.origin, files))
    keyring = _open_keyring(files, recorded)
    seed = await asyncio.to_thread(_load_audit_key, files, recorded)
    problem = mismatch(recorded, keyring, seed, files)
    if problem:
        raise ConfigError(problem)
    await _sync_statuses(db, recorded, keyring, clock)
    return BoundKeys(keyring, seed, files.origin)


async def _sync_statuses(db: Database, recorded: RecordedDeployment, keyring: FileKeyring, clock: Clock) -> None:
    """Bring the recorded statuses in line with the key file after an interrupted key operation:
    a pending version that reached the file is active; one that did not is forgotten; a retired
    version no longer in the file was removed."""
    in_file = keyring.versions()
    changes: list[tuple[int, str | None]] = []
    for kek in recorded.keks:
        if kek.status == "removed":
            continue
        now_status = in_file.get(kek.version)
        if now_status is None:
            changes.append((kek.version, None if kek.status == "pending" else "removed"))
        elif now_status != kek.status:
            changes.append((kek.version, now_status))
    if not changes:
        return
    at = clock.now()

    async def unit(conn) -> None:  # type: ignore[no-untyped-def]
        for version, status in changes:
            if status is None:
                await store.forget_pending(conn, version)
            else:
                await store.set_kek_status(conn, version, status, at)

    await db.write(unit)
    log.info("key record brought in line with the key file: %s",
             ", ".join(f"v{v}={s or 'forgotten'}" for v, s in changes))


async def _create(db: Database, files: KeyFiles, clock: Clock) -> BoundKeys:
    """First start of an empty database: make the key files that are missing and record them."""
    try:
        keyring = FileKeyring.open(files.key_file, create=True)
    except KeyFileError as exc:
        raise ConfigError(f"{KEY_FILE}: {exc}") from None
    try:
        seed = await asyncio.to_thread(signing.load_or_create_signing_key, files.audit_key_file)
    except KeyFileError as exc:
        raise ConfigError(f"{AUDIT_KEY_FILE}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{AUDIT_KEY_FILE}: {files.audit_key_file} cannot be created ({exc.strerror})") from None
    if await _record(db, keyring, seed, files, clock, bound="created", only_if_empty=True):
        log.info("keys recorded for a new database: key versions %s, audit signing key %s",
                 keyring.fingerprints(), signing.signing_key_fingerprint(seed))
        return BoundKeys(keyring, seed, files.origin)
    # Another process recorded its keys first (or data arrived): check ours against that.
    return await bind_keys(db, files, clock, create=False)


async def _adopt(db: Database, files: KeyFiles, clock: Clock) -> BoundKeys:
    """A database from before fingerprints were recorded: adopt the keys found if the data proves them."""
    keyring = _open_keyring(files, None)
    seed = await asyncio.to_thread(_load_audit_key, files, None)
    async with db.read() as conn:
        samples = await store.one_wrapped_key_per_version(conn)
        latest = await audit_log.latest_checkpoint(conn)
    for sample in samples:
        try:
            keyring.unwrap(WrappedKey(sample.kek_version, sample.wrapped), owner_context(sample.owner))
        except CryptoError:
            raise ConfigError(f"{KEY_FILE}: {files.key_file} does not unwrap this database's data keys "
                              f"(key version {sample.kek_version}); it is not this database's key file") from None
    if latest is not None:
        if latest["origin"] != files.origin:
            raise ConfigError(deployment_mismatch(latest["origin"], files))
        try:
            open_checkpoint(latest["note"], verifier_key(files.origin, signing.public_key(seed)), origin=files.origin)
        except (CheckpointError, ValueError):
            raise ConfigError(f"{AUDIT_KEY_FILE}: {files.audit_key_file} did not sign this database's newest "
                              f"audit checkpoint; it is not this database's audit signing key") from None
    if not await _record(db, keyring, seed, files, clock, bound="adopted", only_if_empty=False):
        return await bind_keys(db, files, clock, create=False)
    log.warning("adopted the key files found for a database written before key fingerprints were recorded: "
                "key versions %s, audit signing key %s", keyring.fingerprints(),
                signing.signing_key_fingerprint(seed))
    return BoundKeys(keyring, seed, files.origin)


async def _record(db: Database, keyring: FileKeyring, seed: bytes, files: KeyFiles, clock: Clock, *,
                  bound: str, only_if_empty: bool) -> bool:
    """Record the deployment and its keys unless a record (or, for new keys, data) appeared meanwhile."""
    at = clock.now()
    statuses = keyring.versions()
    keks = {v: (fp, statuses[v]) for v, fp in keyring.fingerprints().items()}

    async def unit(conn) -> bool:  # type: ignore[no-untyped-def]
        if await store.recorded(conn) is not None:
            return False
        if only_if_empty and await store.holds_data(conn):
            return False
        await store.record(conn, origin=files.origin, audit_key_fingerprint=signing.signing_key_fingerprint(seed),
                           audit_verifier_key=verifier_key(files.origin, signing.public_key(seed)),
                           blind_index_fingerprint=keyring.blind_index_fingerprint(), bound=bound,
                           keks=keks, at=at)
        return True

    try:
        return await db.write(unit)
    except IntegrityError:  # a concurrent first start won the insert
        return False
