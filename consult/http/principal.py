"""The edge side of authentication: the bearer header → ``Principal``, or 401 (429 while the
client address has used up its failed sign-ins)."""

from __future__ import annotations

import logging

from aiohttp import web

from consult.auth import AuthError, Session
from consult.errors import RateLimited, Unauthenticated
from consult.http import keys
from consult.http.middleware import REQUEST_ID, USER_ID
from consult.model import Principal
from consult.model.context import RequestContext

log = logging.getLogger("consult.auth")

PRINCIPAL = web.RequestKey("principal", Principal)


async def authenticate(request: web.Request) -> Principal:
    """The caller, verified once per request (the role check before the handler and the handler
    itself share it)."""
    if PRINCIPAL in request:
        return request[PRINCIPAL]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    principal = await sign_in(request, token.strip())
    request[USER_ID] = principal.user_id
    request[PRINCIPAL] = principal
    await request.app[keys.DIRECTORY].seen(principal)
    return principal


async def sign_in(request: web.Request, token: str) -> Principal:
    """The token's principal, else ``Unauthenticated`` — or ``RateLimited`` once the client
    address (``request.remote``, the real client behind a trusted proxy) has used up its failures.
    The token is checked first: a valid one is never slowed by someone else's guessing behind the
    same address. Each rejection is logged with its reason and issuer, never the token."""
    return (await sign_in_session(request, token)).principal


async def sign_in_session(request: web.Request, token: str) -> Session:
    """``sign_in`` with the token's times. A token issued before an administrator ended its
    user's sessions (consult/services/sessions.py) is ``Unauthenticated`` too; that is no guess,
    so it does not count against the address."""
    source = request.remote or "-"
    throttle = request.app[keys.THROTTLE]
    try:
        session = await request.app[keys.IDENTITY].verify_session(token)
    except AuthError as exc:
        blocked = throttle.blocked(source)
        if not blocked:
            throttle.failed(source)
        log.info("token rejected reason=%s issuer=%s source=%s request_id=%s throttled=%s",
                 exc.reason, exc.issuer or "-", source, request.get(REQUEST_ID, "-"), blocked)
        if blocked:
            raise RateLimited("Too many failed sign-ins from this address; try again in a minute.") from None
        raise Unauthenticated() from None
    p = session.principal
    if request.app[keys.SESSIONS].refused(p.org, p.user_id, session.issued_at):
        log.info("token rejected reason=session ended user=%s request_id=%s", p.user_id, request.get(REQUEST_ID, "-"))
        raise Unauthenticated()
    return session


def caller(request: web.Request) -> Principal:
    """The caller the route's declaration authenticated before the handler ran (``Route.auth``);
    a handler of a route that needs none has no caller, and asking for one is a programmer error."""
    return request[PRINCIPAL]


def context(request: web.Request) -> RequestContext:
    return RequestContext(request_id=request.get(REQUEST_ID, "-"), source=request.remote)
