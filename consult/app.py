"""The composition root: settings → database → keys → policy → services, built in one place.

The HTTP server (``consult.http.app.create_app``) and the command line (``consult.cli``) both
build from here; the command line takes only the part a command needs. Nothing happens at import.

Every background job runs through ``periodic``: at a fixed interval, each failure logged once with
the job's name, and on leaving the context the task is cancelled *and awaited*, so no task of
ours outlives the resource it serves.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from consult.audit.anchor import Anchor
from consult.audit.log import AuditLog, CheckpointSigner
from consult.audit.witness import Witness
from consult.config import Settings, load_settings
from consult.errors import ConfigError
from consult.model import Clock, SystemClock
from consult.model.intake import Intakes
from consult.policy.engine import PolicyEngine
from consult.policy.loader import PolicyError, UnknownProfile, load_policy
from consult.policy.rules import Policy
from consult.services.anomalies import AnomalyRules
from consult.services.audit import AuditTrail
from consult.services.checkpoints import Checkpoints
from consult.services.clients import Clients
from consult.services.consents import Consents
from consult.services.content import Content
from consult.services.deployment import BoundKeys, KeyFiles, bind_keys, check_schema
from consult.services.directory import Directory
from consult.services.disclosure import Disclosure
from consult.services.events import EventBus
from consult.services.gate import ContentGate
from consult.services.leases import Leases
from consult.services.messages import Messages
from consult.services.presence import Presence, default_instance_id
from consult.services.vault import Vault
from consult.storage import migrate
from consult.storage.checkpoint_file import CheckpointFile, CheckpointFileError
from consult.storage.db import Database

log = logging.getLogger("consult.app")

Job = Callable[[], Awaitable[object]]


# --- background jobs -------------------------------------------------------------------------

async def _every(name: str, seconds: float, job: Job, first: float | None) -> None:
    await asyncio.sleep(seconds if first is None else first)
    while True:
        try:
            await job()
        except Exception:  # keep the schedule; the next turn retries
            log.exception("background job %s failed; next run in %ss", name, seconds)
        await asyncio.sleep(seconds)


@asynccontextmanager
async def periodic(name: str, seconds: float, job: Job, *, first: float | None = None,
                   lease: Leases | None = None) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``job`` every ``seconds`` (the first run after ``first`` seconds, default ``seconds``)
    while the context is open. A failing run is logged once, with ``name``, and the schedule goes
    on; leaving the context cancels the task and waits until it has stopped.

    With ``lease``, a turn runs the job only while this instance holds the lease named ``name``
    (consult/services/leases.py): a job of the whole service, run by one instance at a time."""
    if lease is not None:
        job = lease.guard(name, job)
    task = asyncio.create_task(_every(name, seconds, job, first), name=f"consult:{name}")
    try:
        yield task
    finally:
        await stop(task)


async def stop(task: asyncio.Task[object]) -> None:
    """Cancel ``task`` and wait until it has finished (its own cancellation is not an error)."""
    task.cancel()
    await asyncio.wait([task])


# --- settings --------------------------------------------------------------------------------

def offline_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for the commands that verify no token: no identity provider is required, and
    development mode is whatever the environment says (never switched on here)."""
    return load_settings(os.environ if env is None else env, identity=False)


# --- database and keys -----------------------------------------------------------------------

async def schema_for_new_sqlite(settings: Settings) -> None:
    """A new embedded database gets its schema here; any existing one is upgraded only by
    `consult db upgrade`, so a code update never changes a database behind its back."""
    if settings.is_sqlite and await asyncio.to_thread(migrate.sqlite_is_new, settings.database_url):
        await asyncio.to_thread(migrate.upgrade, settings.database_url)


@asynccontextmanager
async def database(settings: Settings, observe: Callable[..., None] | None = None, *,
                   new_schema: bool = True) -> AsyncIterator[Database]:
    """The database at the schema head (a new embedded one gets it, with ``new_schema``), closed
    on leaving."""
    if new_schema:
        await schema_for_new_sqlite(settings)
    db = Database(settings.database_url)
    if observe is not None:
        db.observe(observe)
    await db.start()
    try:
        await check_schema(db)
        yield db
    finally:
        await db.close()


async def keys(db: Database, settings: Settings, clock: Clock, *, create: bool) -> BoundKeys:
    """The key files, checked against the fingerprints the database recorded (created only with
    ``create`` and for an empty database)."""
    return await bind_keys(db, KeyFiles.of(settings), clock, create=create)


def vault_of(bound: BoundKeys) -> Vault:
    return Vault(bound.keyring, bound.keyring)


def policy(settings: Settings, engine: Callable[[Policy], PolicyEngine] = PolicyEngine) -> PolicyEngine:
    """The policy engine over the files of ``CONSULT_POLICY_DIR`` (``engine`` may be a subclass
    that also counts decisions)."""
    try:
        return engine(load_policy(settings.policy_dir, profile=settings.policy_profile))
    except UnknownProfile as exc:
        raise ConfigError(f"CONSULT_POLICY_PROFILE: {exc}") from None
    except PolicyError as exc:
        raise ConfigError(f"CONSULT_POLICY_DIR: {exc}") from None


# --- services --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Core:
    """The services every consultation act goes through, as the server wires them."""

    bus: EventBus
    presence: Presence
    vault: Vault
    content: Content
    intakes: Intakes
    directory: Directory
    disclosure: Disclosure
    clients: Clients
    consents: Consents
    gate: ContentGate
    messages: Messages


def instance_id(settings: Settings) -> str:
    """This instance's name among the others on the database (``CONSULT_INSTANCE_ID`` or a new one)."""
    return settings.instance_id or default_instance_id()


def presence(settings: Settings, db: Database, bus: EventBus, instance: str) -> Presence:
    return Presence(db, bus, instance, seconds=settings.presence_seconds)


def leases(settings: Settings, db: Database, instance: str) -> Leases:
    return Leases(db, instance, seconds=settings.lease_seconds)


async def core(settings: Settings, db: Database, vault: Vault, engine: PolicyEngine, clock: Clock,
               bus: EventBus | None = None, online: Presence | None = None) -> Core:
    bus = bus or EventBus()
    online = online or presence(settings, db, bus, instance_id(settings))
    content = Content(vault)
    intakes = Intakes(settings.intake_pools, settings.referral_sla_seconds)
    directory = Directory(db, bus, clock, online, intake_pools=intakes.pool_names)
    await directory.load()
    disclosure = Disclosure(engine, clock)
    clients = Clients(db, vault, clock)
    consents = Consents(db, clock, engine, max_days=settings.consent_max_days)
    gate = ContentGate(clients)
    messages = Messages(db, bus, directory, disclosure, consents, gate, content, clock)
    return Core(bus, online, vault, content, intakes, directory, disclosure, clients, consents, gate, messages)


async def audit_trail(settings: Settings, bound: BoundKeys, db: Database, messages: Messages,
                      clock: Clock) -> AuditTrail:
    rules = AnomalyRules(settings.audit_clients_per_hour, settings.office_hours, settings.office_days)
    audit_log = AuditLog(CheckpointSigner(bound.origin, bound.audit_seed))
    witness = Witness(settings.witness_url) if settings.witness_url else None
    anchor = Anchor(CheckpointFile(settings.effective_checkpoint_file), audit_log, witness=witness)
    trail = AuditTrail(db, audit_log, messages, clock, rules, anchor=anchor,
                       checkpoint_every=timedelta(seconds=settings.audit_checkpoint_seconds))
    await trail.load()
    return trail


def checkpoints(db: Database, settings: Settings, seed: bytes, origin: str,
                clock: Clock | None = None) -> Checkpoints:
    """The checkpoint keeper of a command: signs with the log key into the checkpoint file."""
    audit_log = AuditLog(CheckpointSigner(origin, seed))
    return Checkpoints(db, audit_log, clock or SystemClock(),
                       Anchor(CheckpointFile(settings.effective_checkpoint_file), audit_log))


# --- the command line's share ----------------------------------------------------------------

@dataclass(frozen=True)
class Offline:
    """What a command running beside the server opened: the database and (with keys) the keys."""

    settings: Settings
    db: Database
    bound: BoundKeys | None
    clock: Clock

    vault: Vault | None

    @property
    def keyring(self) -> Any:
        return self.bound.keyring if self.bound else None


@asynccontextmanager
async def offline(settings: Settings, *, with_keys: bool = True, clock: Clock | None = None) -> AsyncIterator[Offline]:
    """The database (at the schema head) and, with ``with_keys``, the keys checked against the
    fingerprints the database recorded, for commands that run beside the server. Nothing here
    creates keys: that is `consult init` or the service's first start on an empty database.
    On a clean exit what the command wrote to the audit log is covered by a signed checkpoint."""
    clock = clock or SystemClock()
    async with database(settings) as db:
        bound = await keys(db, settings, clock, create=False) if with_keys else None
        yield Offline(settings, db, bound, clock, vault_of(bound) if bound else None)
        await anchor_written(db, settings, bound)


async def anchor_written(db: Database, settings: Settings, bound: BoundKeys | None = None) -> None:
    """Sign what the command wrote to the audit log before it exits, so the records do not wait
    for the service (which may not be running) to be covered by a checkpoint."""
    import sys

    try:
        if bound is None:
            bound = await keys(db, settings, SystemClock(), create=False)
        await checkpoints(db, settings, bound.audit_seed, bound.origin).load()
    except (ConfigError, CheckpointFileError) as exc:
        print(f"note: the audit records written are not yet covered by a signed checkpoint ({exc}); "
              "the service signs them when it runs", file=sys.stderr)
