"""The vocabulary of the running service: the names of the taxonomy its policy was loaded from
(``CONSULT_POLICY_DIR``), which the edge validates requests against and publishes in the OpenAPI
document and ``/api/v1/config``. Its one home is the taxonomy file; see consult/model/vocabulary.py."""

from __future__ import annotations

from aiohttp import web

from consult.http import keys
from consult.model.vocabulary import Vocabulary
from consult.policy.rules import Policy


def of_policy(policy: Policy) -> Vocabulary:
    return Vocabulary(categories=frozenset(policy.categories), purposes=frozenset(policy.purposes),
                      roles=frozenset(policy.roles))


def of(request: web.Request) -> Vocabulary:
    """The vocabulary of the policy the application loaded."""
    return of_policy(request.app[keys.POLICY].policy)
