"""The HTTP server: ``create_app(settings)`` builds from the composition root (``consult.app``)
and adds what only a server has; nothing happens at import.

Each resource — database, trusted keys, policy, services, live sockets — is one context on the
exit stack of ``_resources``, so start-up fails loudly and shutdown (or a failed start-up)
releases everything in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from consult import app as root
from consult.auth import ClaimMapping, Issuer, TokenVerifier
from consult.auth.dev import DEMO_USERS, DevIssuer
from consult.auth.jwks import IdentityProviders, JwksUnavailable, KeySource
from consult.auth.throttle import FailureThrottle
from consult.config import Settings
from consult.errors import ConfigError
from consult.http import keys
from consult.http.api import ROUTES
from consult.http.api_admin import ADMIN_ROUTES
from consult.http.api_attachments import ATTACHMENT_ROUTES
from consult.http.api_audit import AUDIT_ROUTES
from consult.http.api_clients import CLIENT_ROUTES
from consult.http.api_lookup import LOOKUP_ROUTES
from consult.http.api_ready import READY_ROUTES
from consult.http.api_routing import ROUTING_ROUTES
from consult.http.api_web import WEB_ROUTES
from consult.http.dev import DEV_ROUTES
from consult.http.forwarded import TrustedProxies, forwarded
from consult.http.metrics import CountedPolicyEngine, Metrics
from consult.http.metrics import handler as metrics_handler
from consult.http.middleware import CSP_KEY, content_security_policy, edge
from consult.http.openapi import build_document
from consult.http.openapi import handler as openapi_handler
from consult.http.route import Route
from consult.http.ws import close_all, end_sessions, websocket
from consult.model import Clock, SystemClock, secrecy
from consult.policy.loader import PolicyError, UnknownProfile, load_policy
from consult.services.agreements import Agreements
from consult.services.attachments import Attachments
from consult.services.client_merges import ClientMerges
from consult.services.client_record import ClientRecordExport
from consult.services.consultations import Consultations
from consult.services.deliveries import DeliveryLedger
from consult.services.deployment import KeyFiles
from consult.services.events import EventBus
from consult.services.keys import KeyManagement
from consult.services.knowledge import KnowledgeBase
from consult.services.live import LiveEvents
from consult.services.retention import Retention
from consult.services.roster import Roster
from consult.services.routing import Routing
from consult.services.sessions import Sessions
from consult.services.statistics import Statistics

log = logging.getLogger("consult.app")


def routes_for(settings: Settings) -> tuple[Route, ...]:
    return (ROUTES + CLIENT_ROUTES + LOOKUP_ROUTES + ATTACHMENT_ROUTES + ADMIN_ROUTES + AUDIT_ROUTES
            + WEB_ROUTES + ROUTING_ROUTES + READY_ROUTES + (DEV_ROUTES if settings.dev else ()))


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    # The real client address first, so the access log, audit and throttle all see it.
    proxies = TrustedProxies(settings.trusted_proxies)
    app = web.Application(middlewares=[forwarded(proxies), edge], client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock or SystemClock()
    app[keys.BUS] = EventBus()
    app[keys.SOCKETS] = {}
    app[keys.METRICS] = Metrics()
    app[keys.THROTTLE] = FailureThrottle(settings.auth_failures_per_minute)
    if settings.oidc_authority:
        app[CSP_KEY] = content_security_policy((settings.oidc_authority,))
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(close_all)

    routes = routes_for(settings)
    app[keys.BODY_NAMES] = {}
    app[keys.CHECK_ANSWERS] = settings.dev
    for route in routes:
        app.router.add_route(route.method, route.path, route.endpoint, name=route.handler.__name__)
    app.on_response_prepare.append(_secrecy_marking(frozenset(r.handler.__name__ for r in routes if r.secret)))
    app.router.add_get("/api/v1/openapi.json", openapi_handler(build_document(routes)), name="openapi")
    app.router.add_get("/api/v1/ws", websocket, name="websocket")
    if settings.metrics_token:
        app.router.add_get("/metrics", metrics_handler(settings.metrics_token, app[keys.METRICS], _synced(app)),
                           name="metrics")
    web_dir = settings.web_dir
    if web_dir.is_dir():
        app.router.add_get("/", _index(web_dir), name="index")
        app.router.add_static("/static/", web_dir, name="static", append_version=False)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Every resource in order, each its own context on one exit stack: shutdown releases them in
    reverse order, and so does a start-up that fails half-way (aiohttp runs no cleanup then)."""
    async with AsyncExitStack() as stack:
        for resource in (_database, _instance, _deployment, _trust, _services, _routing, _sessions, _monitoring,
                         _reload_on_hangup):
            await stack.enter_async_context(asynccontextmanager(resource)(app))
        yield


def _secrecy_marking(names: frozenset[str]):  # type: ignore[no-untyped-def]
    """Mark every successful answer of a route that carries secret client data (``Route.secret``),
    streamed exports included: the header goes out with the others, before the body."""

    async def mark(request: web.Request, response: web.StreamResponse) -> None:
        route = getattr(request.match_info, "route", None)
        if 200 <= response.status < 300 and route is not None and route.name in names:
            response.headers[secrecy.HEADER] = secrecy.HEADER_VALUE

    return mark


def _index(web_dir: Path):  # type: ignore[no-untyped-def]
    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(web_dir / "index.html")

    return index


async def _database(app: web.Application) -> AsyncIterator[None]:
    async with root.database(app[keys.SETTINGS], app[keys.METRICS].statement) as db:
        app[keys.DB] = db
        yield


async def _instance(app: web.Application) -> AsyncIterator[None]:
    """This instance among the others on the same database: its users' presence, kept by a
    heartbeat and removed at shutdown, and the leases of the jobs it runs for the whole service,
    renewed while held and let go at shutdown (consult/services/presence.py, leases.py)."""
    settings, db = app[keys.SETTINGS], app[keys.DB]
    instance = root.instance_id(settings)
    presence = app[keys.PRESENCE] = root.presence(settings, db, app[keys.BUS], instance)
    leases = app[keys.LEASES] = root.leases(settings, db, instance)
    await presence.start()
    try:
        async with (root.periodic("presence heartbeat", presence.heartbeat_seconds, presence.heartbeat),
                    root.periodic("lease renewal", leases.renew_seconds, leases.refresh)):
            yield
    finally:
        await leases.release()
        await presence.close()


async def _deployment(app: web.Application) -> AsyncIterator[None]:
    """The key files, checked against the fingerprints the database recorded (created only for an
    empty database)."""
    app[keys.KEY_FILES] = KeyFiles.of(app[keys.SETTINGS])
    app[keys.BOUND_KEYS] = await root.keys(app[keys.DB], app[keys.SETTINGS], app[keys.CLOCK], create=True)
    yield


async def _trust(app: web.Application) -> AsyncIterator[None]:
    """The trusted issuers and their keys (``consult.auth.jwks``), and the development issuer if on."""
    settings = app[keys.SETTINGS]
    providers = settings.identity_providers
    verifier = TokenVerifier([
        Issuer(p.issuer, p.audience, frozenset(p.orgs),
               ClaimMapping(org_claim=p.org_claim, roles_claim=p.roles_claim, role_map=p.role_map))
        for p in providers], leeway=settings.token_leeway_seconds)
    identity = IdentityProviders(verifier, [KeySource(p.issuer, p.jwks, settings.data_dir) for p in providers],
                                 refresh_seconds=settings.jwks_refresh_minutes * 60)
    try:
        await identity.load()
    except JwksUnavailable as exc:
        raise ConfigError(f"CONSULT_JWKS: {exc}") from None
    if settings.dev:
        issuer = DevIssuer(settings.dev_key_file, issuer=settings.effective_issuer, audience=settings.audience)
        app[keys.DEV_ISSUER] = issuer
        if settings.effective_issuer not in verifier.issuers:
            verifier.add_issuer(Issuer(settings.effective_issuer, settings.audience, frozenset(settings.orgs)))
        verifier.add_static_keys(settings.effective_issuer, [issuer.trusted_key])
        log.warning("development token issuer is ON: never use this configuration in production")
    app[keys.VERIFIER] = verifier
    app[keys.IDENTITY] = identity
    if not identity.sources:
        yield
        return
    async with root.periodic("identity provider keys refresh", identity.refresh_seconds, identity.refresh_all):
        yield


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings, db, bus, clock = app[keys.SETTINGS], app[keys.DB], app[keys.BUS], app[keys.CLOCK]
    engine = root.policy(settings, lambda policy: CountedPolicyEngine(policy, app[keys.METRICS]))
    app[keys.POLICY] = engine
    bound = app[keys.BOUND_KEYS]
    core = await root.core(settings, db, root.vault_of(bound), engine, clock, bus, app[keys.PRESENCE])
    vault, content, directory = core.vault, core.content, core.directory
    await ClientMerges(db, vault, clock).warn_if_pending()
    app[keys.DIRECTORY] = directory
    ledger = DeliveryLedger(db, bus, clock)  # live deliveries of content are recorded first
    ledger.start()
    # Live events kept per recipient: resumed after a reconnect, and shared by every instance.
    live = LiveEvents(db, vault, bus, clock, retention=timedelta(hours=settings.event_retention_hours))
    await live.start()
    app[keys.LIVE] = live
    app[keys.CLIENTS] = core.clients
    app[keys.CONSENTS] = core.consents
    app[keys.AGREEMENTS] = Agreements(db, clock, orgs=frozenset(settings.orgs))
    app[keys.ROSTER] = Roster(db, bus, clock, core.presence)
    app[keys.ROUTING] = Routing(db, bus, clock, app[keys.ROSTER], app[keys.AGREEMENTS], directory)
    app[keys.STATISTICS] = Statistics(db, clock)
    app[keys.KNOWLEDGE] = KnowledgeBase(db, content, clock, topics=frozenset(settings.topics))
    app[keys.CONSULTATIONS] = Consultations(
        db, bus, directory, core.clients, core.consents, core.disclosure, core.gate, content, clock,
        orgs=frozenset(settings.orgs), routing=app[keys.ROUTING], intakes=core.intakes,
    )
    app[keys.MESSAGES] = core.messages
    app[keys.ATTACHMENTS] = Attachments(core.messages, content, clock)
    trail = app[keys.AUDIT] = await root.audit_trail(settings, bound, db, core.messages, clock)
    app[keys.KEYS] = KeyManagement(db, bound.keyring, clock)
    retention = Retention(db, vault, content, clock, schedule=settings.retention_schedule)
    app[keys.RETENTION] = retention
    app[keys.CLIENT_RECORD] = ClientRecordExport(db, core.messages, clock)
    if settings.demo:
        await directory.seed(
            [
                {
                    "user_id": u.user_id, "org": u.org, "name": u.name, "topics": list(u.topics),
                    "pools": list(u.pools), "languages": list(u.languages), "on_duty": True,
                    "roles": list(u.roles),
                }
                for u in DEMO_USERS
                if u.pools
            ]
        )
    # Crypto-shred what is due shortly after start and then every few hours; sign a checkpoint
    # whenever the log grew.
    async with AsyncExitStack() as jobs:
        leases = app[keys.LEASES]
        await jobs.enter_async_context(root.periodic("retention run", settings.retention_interval_hours * 3600,
                                                     retention.run, first=RETENTION_FIRST_SECONDS, lease=leases))
        await jobs.enter_async_context(root.periodic("audit checkpoint", settings.audit_checkpoint_seconds,
                                                     trail.checkpoint_now, lease=leases))
        await jobs.enter_async_context(root.periodic("live events prune", EVENT_PRUNE_SECONDS, live.prune,
                                                     lease=leases))
        yield
    await live.close()
    await ledger.close()
    try:
        await trail.checkpoint_now()  # a last signed head over everything written
    except Exception:
        log.exception("final audit checkpoint failed")
    await trail.close()


RETENTION_FIRST_SECONDS = 60.0
EVENT_PRUNE_SECONDS = 600.0
ROUTING_TICK_SECONDS = 1.0
DEMO_AGREEMENT = "Kela – Vantaan ja Keravan hyvinvointialue: toimeentulotuen yhteistyö (demo)"


async def _routing(app: web.Application) -> AsyncIterator[None]:
    """Demo agreement and pools; the background step of roster changes, re-offers and escalations."""
    settings, routing = app[keys.SETTINGS], app[keys.ROUTING]
    if settings.demo:
        await app[keys.AGREEMENTS].seed(DEMO_AGREEMENT, ("kela", "vantaa"),
                                        app[keys.CLOCK].now() - timedelta(days=3650))
        await routing.seed_pool("vantaa", "backup")
        await routing.seed_pool("vantaa", "toimeentulotuki", backup_pool="backup")
        await routing.seed_pool("vantaa", settings.referral_pool)
        await routing.seed_pool("vantaa", settings.child_welfare_pool)
    # Apply the roster and due routing steps about once a second, by the injected clock.
    async with root.periodic("routing tick", ROUTING_TICK_SECONDS, routing.tick, lease=app[keys.LEASES]):
        yield


SESSION_REFRESH_SECONDS = 10.0


async def _sessions(app: web.Application) -> AsyncIterator[None]:
    """Ended sessions: loaded at start, re-read every few seconds (another server process on the
    same database may have ended one), and closing this process's live connections at once."""
    sessions = Sessions(app[keys.DB], app[keys.CLOCK])
    await sessions.load()
    sessions.on_end(end_sessions(app))
    app[keys.SESSIONS] = sessions

    async with root.periodic("ended sessions refresh", SESSION_REFRESH_SECONDS, sessions.refresh):
        yield


async def _monitoring(app: web.Application) -> AsyncIterator[None]:
    """Gauges read at each scrape of /metrics: open connections and the audit log's state."""
    clock, trail, sockets = app[keys.CLOCK], app[keys.AUDIT], app[keys.SOCKETS]

    def read() -> dict[str, tuple[str, float]]:
        size, signed_at = trail.size_and_last_checkpoint()
        age = (clock.now() - signed_at).total_seconds() if signed_at else float("nan")
        return {
            "konsulta_websockets_open": ("Open live WebSocket connections", float(len(sockets))),
            "konsulta_audit_tree_size": ("Records in the audit log's Merkle tree", float(size)),
            "konsulta_audit_checkpoint_age_seconds": (
                "Seconds since the newest signed audit checkpoint (NaN before the first)", age),
        }

    app[keys.METRICS].gauges(read)
    yield


def _synced(app: web.Application):  # type: ignore[no-untyped-def]
    async def sync() -> None:
        await app[keys.AUDIT].sync()

    return sync


async def reload_configuration(app: web.Application) -> None:
    """SIGHUP: read the policy files and the JWKS again, keeping connections. What fails to load
    leaves the running version in place, with one log line saying so."""
    settings, engine = app[keys.SETTINGS], app[keys.POLICY]
    try:
        policy = await asyncio.to_thread(load_policy, settings.policy_dir, profile=settings.policy_profile)
    except (PolicyError, UnknownProfile) as exc:
        reason = " ".join(str(exc).split())
        log.error("policy reload refused, policy %s stays in force: %s", engine.version, reason)
    else:
        engine.replace(policy)
        log.info("policy reloaded version=%s", engine.version)
    # Each issuer's JWKS fetched again; one that cannot be read keeps its keys (one line each).
    await app[keys.IDENTITY].refresh_all()
    log.info("identity providers' keys reloaded")


async def _reload_on_hangup(app: web.Application) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        task = loop.create_task(reload_configuration(app))
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, hangup)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (not the main thread)
        installed = False
    yield
    if installed:
        loop.remove_signal_handler(signal.SIGHUP)
    for task in list(pending):  # a reload under way at shutdown is stopped, and waited for
        await root.stop(task)
