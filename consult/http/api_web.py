"""What the browser app needs: its public start-up configuration (sign-in method, vocabularies)
and the data-minimisation policy as a read-only list of rules with their legal citations."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consult.http import keys
from consult.http import schemas as s
from consult.http import vocabulary as vocab
from consult.http.api import Route
from consult.http.principal import authenticate
from consult.model.vocabulary import OUTCOMES, URGENCIES
from consult.policy.rules import Category, PartyScope, Rule

LANGUAGES = ("fi", "sv", "en")


async def client_config(request: web.Request) -> web.Response:
    """Public and free of secrets: the browser reads it before anyone has signed in."""
    settings = request.app[keys.SETTINGS]
    names = vocab.of(request)
    oidc = None
    if settings.oidc_authority and settings.oidc_client_id:
        oidc = {
            "authority": settings.oidc_authority,
            "client_id": settings.oidc_client_id,
            "scope": settings.oidc_scope,
        }
    return web.json_response({
        "dev": settings.dev,
        "oidc": oidc,
        "orgs": list(settings.orgs),
        # The organisations' names in each language (the controllers of consent receipts), so
        # the app names an organisation instead of showing its id.
        "org_names": {org: dict(settings.controllers[org].name) for org in settings.orgs
                      if org in settings.controllers},
        "topics": list(settings.topics),
        "urgencies": list(URGENCIES),
        "purposes": sorted(names.purposes),
        "categories": sorted(names.categories),
        "outcomes": sorted(OUTCOMES),
        "languages": list(LANGUAGES),
        "consent_max_days": settings.consent_max_days,
    })


def _scope(scope: PartyScope) -> dict[str, list[str]]:
    return {"org_kinds": sorted(scope.org_kinds), "orgs": sorted(scope.orgs), "roles": sorted(scope.roles)}


def _bases(rule: Rule) -> dict[str, Any]:
    """The two bases of a disclosure across organisations, or None for a rule without."""
    gdpr = secrecy = None
    if rule.gdpr is not None:
        gdpr = {"articles": list(rule.gdpr.articles), "law": rule.gdpr.law,
                "citation": rule.gdpr.citation, "needs_check": rule.gdpr.needs_check}
    if rule.secrecy is not None:
        secrecy = {"exception": rule.secrecy.exception, "citation": rule.secrecy.citation,
                   "needs_check": rule.secrecy.needs_check}
    return {"gdpr": gdpr, "secrecy": secrecy}


def _category(c: Category) -> dict[str, Any]:
    decision = None
    if c.decision is not None:
        decision = {"issuer": c.decision.issuer, "kind": c.decision.kind, "part": c.decision.part}
    return {"name": c.name, "description": c.description, "sensitivity": c.sensitivity,
            "special": c.special, "decision": decision}


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "effect": rule.effect,
        "sender": _scope(rule.sender),
        "recipient": _scope(rule.recipient),
        "relation": rule.relation,
        "categories": sorted(rule.categories) if rule.categories is not None else None,
        "purposes": sorted(rule.purposes) if rule.purposes is not None else None,
        "requires_referral": rule.requires_referral,
        "statutory": rule.statutory,
        "citation": rule.citation,
        "needs_check": rule.needs_check,
        "reason": rule.reason,
        "source": rule.source,
        "line": rule.line,
        "involves_org": rule.involves_org,
        **_bases(rule),
    }


async def policy_rules(request: web.Request) -> web.Response:
    """The policy in force, read-only. Rules are law made data, not secrets: any signed-in user may read them."""
    await authenticate(request)
    policy = request.app[keys.POLICY].policy
    return web.json_response({
        "version": policy.version,
        "profile": policy.profile,
        "items": [_rule(r) for r in policy.rules],
        "next": None,
        "categories": [_category(c) for c in sorted(policy.categories.values(), key=lambda c: c.name)],
        "purposes": [
            {"name": p.name, "description": p.description, "categories": sorted(p.categories)}
            for p in sorted(policy.purposes.values(), key=lambda p: p.name)
        ],
    })


_NAMES: s.S = {"type": "array", "items": s.STR}
_NULLABLE_NAMES: s.S = {"type": ["array", "null"], "items": s.STR}
_SCOPE: s.S = {"type": "object", "properties": {"org_kinds": _NAMES, "orgs": _NAMES, "roles": _NAMES}}
_FLAG: s.S = {"type": "boolean"}
_GDPR: s.S = {"type": ["object", "null"], "properties": {
    "articles": _NAMES, "law": s.STR, "citation": s.STR, "needs_check": _FLAG}}
_SECRECY: s.S = {"type": ["object", "null"], "properties": {
    "exception": {"type": "string", "enum": ["statute", "consent"]}, "citation": s.STR, "needs_check": _FLAG}}
_DECISION_OF: s.S = {"type": ["object", "null"], "properties": {"issuer": s.STR, "kind": s.STR, "part": s.STR}}
CONFIG: s.S = {
    "type": "object",
    "required": ["dev", "oidc", "orgs", "topics", "languages"],
    "properties": {
        "dev": {"type": "boolean"},
        "oidc": {"type": ["object", "null"], "properties": {"authority": s.STR, "client_id": s.STR, "scope": s.STR}},
        "orgs": _NAMES, "topics": _NAMES, "urgencies": _NAMES, "purposes": _NAMES, "categories": _NAMES,
        "org_names": {"type": "object", "description": "organisation id → its name by language (fi, sv, en)",
                      "additionalProperties": {"type": "object", "additionalProperties": s.STR}},
        "outcomes": _NAMES, "languages": _NAMES, "consent_max_days": {"type": "integer"},
    },
}
POLICY_RULE: s.S = {
    "type": "object",
    "required": ["id", "effect", "citation", "reason", "source"],
    "properties": {
        "id": s.STR, "effect": s.STR, "sender": _SCOPE, "recipient": _SCOPE, "relation": s.NSTR,
        "categories": _NULLABLE_NAMES, "purposes": _NULLABLE_NAMES, "requires_referral": {"type": "boolean"},
        "statutory": {"type": "boolean"}, "citation": s.STR, "needs_check": {"type": "boolean"}, "reason": s.STR,
        "source": s.STR, "line": {"type": "integer"}, "involves_org": s.NSTR,
        "gdpr": _GDPR, "secrecy": _SECRECY,
    },
}
POLICY: s.S = {
    "type": "object",
    "required": ["version", "items", "next"],
    "properties": {
        "version": s.STR,
        "profile": s.STR,
        "items": {"type": "array", "items": POLICY_RULE},
        "next": s.NSTR,
        "categories": {"type": "array", "items": {"type": "object", "properties": {
            "name": s.STR, "description": s.STR, "sensitivity": s.STR, "special": _FLAG,
            "decision": _DECISION_OF}}},
        "purposes": {"type": "array", "items": {"type": "object", "properties": {
            "name": s.STR, "description": s.STR, "categories": _NAMES}}},
    },
}

WEB_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/config", client_config,
          "The browser app's start-up configuration: sign-in method and vocabularies (public, no secrets)",
          who="anyone", auth=False, response=CONFIG, errors=()),
    Route("GET", "/api/v1/policy", policy_rules, "The data-minimisation policy in force: rules with citations",
          response=POLICY, errors=(401,)),
)
