"""What the browser app needs: its public start-up configuration (sign-in method, vocabularies)
and the data-minimisation policy as a read-only list of rules with their legal citations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import Meta

from consult.http import keys
from consult.http import vocabulary as vocab
from consult.http.route import Route
from consult.http.shapes import Answer
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


Names = list[str]


class Oidc(Answer):
    authority: str
    client_id: str
    scope: str


class Config(Answer):
    dev: bool
    oidc: Oidc | None
    orgs: Names
    topics: Names
    urgencies: Names
    purposes: Names
    categories: Names
    outcomes: Names
    languages: Names
    consent_max_days: int
    org_names: Annotated[dict[str, dict[str, str]], Meta(
        description="organisation id -> its name by language (fi, sv, en)")]


class Scope(Answer):
    org_kinds: Names
    orgs: Names
    roles: Names


class GdprBasis(Answer):
    articles: Names
    law: str | None
    citation: str
    needs_check: bool


class SecrecyBasis(Answer):
    exception: Literal["statute", "consent"]
    citation: str
    needs_check: bool


class PolicyRule(Answer):
    id: str
    effect: str
    sender: Scope
    recipient: Scope
    relation: str | None
    categories: Names | None
    purposes: Names | None
    requires_referral: bool
    statutory: bool
    citation: str
    needs_check: bool
    reason: str
    source: str
    line: int | None
    involves_org: str | None
    gdpr: GdprBasis | None
    secrecy: SecrecyBasis | None


class DecisionOf(Answer):
    issuer: str
    kind: str
    part: str | None


class PolicyCategory(Answer):
    name: str
    description: str
    sensitivity: str
    special: bool
    decision: DecisionOf | None


class PolicyPurpose(Answer):
    name: str
    description: str
    categories: Names


class PolicyDocument(Answer):
    version: str
    profile: str
    items: list[PolicyRule]
    next: str | None
    categories: list[PolicyCategory]
    purposes: list[PolicyPurpose]


WEB_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/config", client_config,
          "The browser app's start-up configuration: sign-in method and vocabularies (public, no secrets)",
          who="anyone", auth=False, response=Config, errors=()),
    Route("GET", "/api/v1/policy", policy_rules, "The data-minimisation policy in force: rules with citations",
          response=PolicyDocument, errors=(401,)),
)
