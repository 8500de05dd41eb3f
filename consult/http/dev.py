"""Development-only endpoints: the demo users and tokens for them. Mounted only in dev mode."""

from __future__ import annotations

from aiohttp import web

from consult.auth.dev import DEMO_USERS, demo_user
from consult.errors import Unprocessable
from consult.http import keys
from consult.http.principal import caller
from consult.http.route import Route
from consult.http.shapes import Answer, Body, UserId


class DemoUser(Answer):
    id: str
    org: str
    roles: list[str]
    name: str


class DemoUsers(Answer):
    items: list[DemoUser]
    next: str | None


class TokenRequest(Body):
    user_id: UserId


class Token(Answer):
    token: str
    token_type: str


async def list_demo_users(_request: web.Request) -> web.Response:
    items = [{"id": u.user_id, "org": u.org, "roles": list(u.roles), "name": u.name} for u in DEMO_USERS]
    return web.json_response({"items": items, "next": None})


async def demo_token(request: web.Request, body: TokenRequest) -> web.Response:
    user = demo_user(body.user_id)
    if user is None:
        raise Unprocessable("Not a demo user.", code="unknown_user")
    token = request.app[keys.DEV_ISSUER].mint_for(user, ttl=request.app[keys.SETTINGS].dev_token_seconds)
    return web.json_response({"token": token, "token_type": "Bearer"})


async def renew_token(request: web.Request) -> web.Response:
    """A fresh token for the bearer of a still-valid one (the web app renews before expiry)."""
    who = caller(request)
    user = demo_user(who.user_id)
    if user is None or user.org != who.org:
        raise Unprocessable("Not a demo user.", code="unknown_user")
    token = request.app[keys.DEV_ISSUER].mint_for(user, ttl=request.app[keys.SETTINGS].dev_token_seconds)
    return web.json_response({"token": token, "token_type": "Bearer"})


DEV_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/dev/users", list_demo_users, "Demo users (development mode only)",
          who="anyone, in development mode", auth=False,
          response=DemoUsers, errors=()),
    Route("POST", "/api/v1/dev/token", demo_token, "A token for a demo user (development mode only)",
          who="anyone, in development mode", auth=False,
          body=TokenRequest, response=Token,
          errors=(400, 413, 415, 422)),
    Route("POST", "/api/v1/dev/token/renew", renew_token,
          "A fresh token for the bearer's demo user, before the current one expires (development mode only)",
          who="a demo user, in development mode",
          response=Token,
          errors=(401, 422)),
)
