"""The edge side of authentication: the bearer header → ``Principal``, or 401."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from consult.auth import AuthError
from consult.errors import RateLimited, Unauthenticated
from consult.http import keys
from consult.http.middleware import REQUEST_ID, USER_ID
from consult.model import Principal, actions
from consult.model.context import RequestContext

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    throttle = request.app[keys.THROTTLE]
    source = request.remote or "-"
    if throttle.blocked(source):
        raise RateLimited("Too many failed sign-ins from this address; try again in a minute.")
    try:
        principal = request.app[keys.VERIFIER].verify(token.strip())
    except AuthError:
        throttle.failed(source)
        raise Unauthenticated() from None
    request[USER_ID] = principal.user_id
    request[PRINCIPAL] = principal
    await request.app[keys.DIRECTORY].seen(principal)
    return principal


def guarded(handler: Handler, action: str) -> Handler:
    """``handler`` behind the role check of ``action`` (consult/model/actions.py): 401 without a
    valid token, 403 ``role`` when none of the caller's roles may attempt the action."""
    actions.roles_for(action)  # an unknown action fails when the routes are built, not per request

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        actions.require(await authenticate(request), action)
        return await handler(request)

    return checked


def context(request: web.Request) -> RequestContext:
    return RequestContext(request_id=request.get(REQUEST_ID, "-"), source=request.remote)
