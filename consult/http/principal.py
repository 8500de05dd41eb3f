"""The edge side of authentication: the bearer header → ``Principal``, or 401."""

from __future__ import annotations

from aiohttp import web

from consult.auth import AuthError
from consult.errors import Forbidden, RateLimited, Unauthenticated
from consult.http import keys
from consult.http.middleware import REQUEST_ID, USER_ID
from consult.model import Principal
from consult.model.context import RequestContext


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    throttle = request.app[keys.THROTTLE]
    source = request.remote or "-"
    if throttle.blocked(source):
        raise RateLimited("Too many failed sign-ins from this address; try again in a minute.")
    try:
        session = request.app[keys.VERIFIER].verify_session(token.strip())
    except AuthError:
        throttle.failed(source)
        raise Unauthenticated() from None
    principal = session.principal
    if request.app[keys.SESSIONS].refused(principal.org, principal.user_id, session.issued_at):
        raise Unauthenticated()  # an administrator ended this user's sessions after the token was issued
    request[USER_ID] = principal.user_id
    await request.app[keys.DIRECTORY].seen(principal)
    return principal


def require_role(principal: Principal, *roles: str) -> None:
    if not any(principal.has(r) for r in roles):
        raise Forbidden("Your role does not allow this.", code="role")


def context(request: web.Request) -> RequestContext:
    return RequestContext(request_id=request.get(REQUEST_ID, "-"), source=request.remote)
