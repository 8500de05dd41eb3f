"""The edge side of authentication: the bearer header → ``Principal``, or 401 (429 while the
client address has used up its failed sign-ins)."""

from __future__ import annotations

import logging

from aiohttp import web

from consult.auth import AuthError
from consult.errors import Forbidden, RateLimited, Unauthenticated
from consult.http import keys
from consult.http.middleware import REQUEST_ID, USER_ID
from consult.model import Principal
from consult.model.context import RequestContext

log = logging.getLogger("consult.auth")


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    principal = await sign_in(request, token.strip())
    request[USER_ID] = principal.user_id
    await request.app[keys.DIRECTORY].seen(principal)
    return principal


async def sign_in(request: web.Request, token: str) -> Principal:
    """The token's principal, else ``Unauthenticated`` — or ``RateLimited`` once the client
    address (``request.remote``, the real client behind a trusted proxy) has used up its failures.
    The token is checked first: a valid one is never slowed by someone else's guessing behind the
    same address. Each rejection is logged with its reason and issuer, never the token."""
    source = request.remote or "-"
    throttle = request.app[keys.THROTTLE]
    try:
        return await request.app[keys.IDENTITY].verify(token)
    except AuthError as exc:
        blocked = throttle.blocked(source)
        if not blocked:
            throttle.failed(source)
        log.info("token rejected reason=%s issuer=%s source=%s request_id=%s throttled=%s",
                 exc.reason, exc.issuer or "-", source, request.get(REQUEST_ID, "-"), blocked)
        if blocked:
            raise RateLimited("Too many failed sign-ins from this address; try again in a minute.") from None
        raise Unauthenticated() from None


def require_role(principal: Principal, *roles: str) -> None:
    if not any(principal.has(r) for r in roles):
        raise Forbidden("Your role does not allow this.", code="role")


def context(request: web.Request) -> RequestContext:
    return RequestContext(request_id=request.get(REQUEST_ID, "-"), source=request.remote)
