"""Typed application state (aiohttp ``AppKey``s): the one place the app's resources are named."""

from __future__ import annotations

from aiohttp import web

from consult.auth import TokenVerifier
from consult.auth.dev import DevIssuer
from consult.config import Settings
from consult.model import Clock
from consult.policy.engine import PolicyEngine
from consult.services.attachments import Attachments
from consult.services.keys import KeyManagement
from consult.services.audit import AuditTrail
from consult.services.retention import Retention
from consult.services.clients import Clients
from consult.services.consents import Consents
from consult.services.consultations import Consultations
from consult.services.directory import Directory
from consult.services.events import EventBus
from consult.services.messages import Messages
from consult.storage.db import Database

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
BUS = web.AppKey("bus", EventBus)
VERIFIER = web.AppKey("verifier", TokenVerifier)
DEV_ISSUER = web.AppKey("dev_issuer", DevIssuer)
POLICY = web.AppKey("policy", PolicyEngine)
DIRECTORY = web.AppKey("directory", Directory)
CONSULTATIONS = web.AppKey("consultations", Consultations)
MESSAGES = web.AppKey("messages", Messages)
CLIENTS = web.AppKey("clients", Clients)
ATTACHMENTS = web.AppKey("attachments", Attachments)
RETENTION = web.AppKey("retention", Retention)
KEYS = web.AppKey("keys", KeyManagement)
CONSENTS = web.AppKey("consents", Consents)
SOCKETS = web.AppKey("sockets", set)
AUDIT = web.AppKey("audit", AuditTrail)
