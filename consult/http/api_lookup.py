"""Finding a registered client by HETU without registering one (docs/capabilities.md C3, C5).

A privacy officer preparing a client access report knows the client by identity code, but may not
register clients. ``POST /api/v1/clients/lookup`` answers with the client's ref or 404, never
creates a client, never returns the HETU, and is audited (``client.lookup``) either way.
"""

from __future__ import annotations

from aiohttp import web

from consult.errors import NotFound, Unprocessable
from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http.api import Route
from consult.http.principal import authenticate, context


async def lookup_client(request: web.Request) -> web.Response:
    who = await authenticate(request)
    data = await v.json_body(request)
    hetu = data.get("hetu")
    if not isinstance(hetu, str) or len(hetu) > 32:
        raise Unprocessable("hetu is not a valid Finnish personal identity code.", code="invalid_hetu")
    ref = await request.app[keys.CLIENTS].lookup(who, hetu, context(request))
    if ref is None:
        raise NotFound("No client is registered with this identity code.", code="unknown_client")
    return web.json_response({"client_ref": ref})


LOOKUP_ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v1/clients/lookup", lookup_client, action="client.lookup",
          summary="Find a registered client by HETU (never registers; audited; the HETU is never returned)",
          who="privacy officer, advisor, expert, social worker",
          body={"type": "object", "required": ["hetu"], "properties": {"hetu": s.STR}},
          response={"type": "object", "required": ["client_ref"], "properties": {"client_ref": s.STR}},
          errors=(400, 401, 403, 404, 413, 415, 422)),
)
