"""Typed application state (aiohttp ``AppKey``s): the one place the app's resources are named."""

from __future__ import annotations

from aiohttp import web

from consult.auth import TokenVerifier
from consult.auth.dev import DevIssuer
from consult.auth.jwks import IdentityProviders
from consult.auth.throttle import FailureThrottle
from consult.config import Settings
from consult.http.middleware import METRICS_KEY
from consult.model import Clock
from consult.policy.engine import PolicyEngine
from consult.services.agreements import Agreements
from consult.services.attachments import Attachments
from consult.services.audit import AuditTrail
from consult.services.client_record import ClientRecordExport
from consult.services.clients import Clients
from consult.services.consents import Consents
from consult.services.consultations import Consultations
from consult.services.deployment import BoundKeys, KeyFiles
from consult.services.directory import Directory
from consult.services.events import EventBus
from consult.services.keys import KeyManagement
from consult.services.knowledge import KnowledgeBase
from consult.services.leases import Leases
from consult.services.live import LiveEvents
from consult.services.messages import Messages
from consult.services.presence import Presence
from consult.services.retention import Retention
from consult.services.roster import Roster
from consult.services.routing import Routing
from consult.services.sessions import Sessions
from consult.services.statistics import Statistics
from consult.storage.db import Database

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
KEY_FILES = web.AppKey("key_files", KeyFiles)
BOUND_KEYS = web.AppKey("bound_keys", BoundKeys)
BUS = web.AppKey("bus", EventBus)
LIVE = web.AppKey("live", LiveEvents)
VERIFIER = web.AppKey("verifier", TokenVerifier)
IDENTITY = web.AppKey("identity", IdentityProviders)
THROTTLE = web.AppKey("throttle", FailureThrottle)
DEV_ISSUER = web.AppKey("dev_issuer", DevIssuer)
POLICY = web.AppKey("policy", PolicyEngine)
DIRECTORY = web.AppKey("directory", Directory)
CONSULTATIONS = web.AppKey("consultations", Consultations)
MESSAGES = web.AppKey("messages", Messages)
CLIENTS = web.AppKey("clients", Clients)
ATTACHMENTS = web.AppKey("attachments", Attachments)
RETENTION = web.AppKey("retention", Retention)
CLIENT_RECORD = web.AppKey("client_record", ClientRecordExport)
KEYS = web.AppKey("keys", KeyManagement)
CONSENTS = web.AppKey("consents", Consents)
AGREEMENTS = web.AppKey("agreements", Agreements)
ROSTER = web.AppKey("roster", Roster)
ROUTING = web.AppKey("routing", Routing)
STATISTICS = web.AppKey("statistics", Statistics)
KNOWLEDGE = web.AppKey("knowledge", KnowledgeBase)
AUDIT = web.AppKey("audit", AuditTrail)
#: Open live connections and whom each serves (consult/http/ws.py ``LiveSession``).
SOCKETS = web.AppKey("sockets", dict)
SESSIONS = web.AppKey("sessions", Sessions)
#: This instance among the others on the database: who is online anywhere, which jobs it runs.
PRESENCE = web.AppKey("presence", Presence)
LEASES = web.AppKey("leases", Leases)
METRICS = METRICS_KEY
#: The names request bodies are checked against, kept per loaded policy (consult/http/route.py).
BODY_NAMES = web.AppKey("body_names", dict)
#: Check each JSON success answer against the type its route declares (development mode).
CHECK_ANSWERS = web.AppKey("check_answers", bool)
