"""Finding a registered client by HETU without registering one (docs/capabilities.md C3, C5).

A privacy officer preparing a client access report knows the client by identity code, but may not
register clients. ``POST /api/v1/clients/lookup`` answers with the client's ref or 404, never
creates a client, never returns the HETU, and is audited (``client.lookup``) either way.
"""

from __future__ import annotations

from aiohttp import web

from consult.errors import NotFound
from consult.http import keys
from consult.http.api_clients import Hetu
from consult.http.principal import caller, context
from consult.http.route import Route
from consult.http.shapes import Answer


class Found(Answer):
    client_ref: str


async def lookup_client(request: web.Request, body: Hetu) -> web.Response:
    ref = await request.app[keys.CLIENTS].lookup(caller(request), body.hetu, context(request))
    if ref is None:
        raise NotFound("No client is registered with this identity code.", code="unknown_client")
    return web.json_response({"client_ref": ref})


LOOKUP_ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v1/clients/lookup", lookup_client, action="client.lookup",
          summary="Find a registered client by HETU (never registers; audited; the HETU is never returned)",
          who="privacy officer, advisor, expert, social worker",
          body=Hetu, response=Found,
          errors=(400, 401, 403, 404, 413, 415, 422)),
)
