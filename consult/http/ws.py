"""The live channel ``/api/v1/ws`` (SPEC §5).

The token never travels in the URL: the first frame must be ``{"type": "auth", "token"}``;
the server answers ``ready`` or closes with 4401. Each connection has its own bounded queue,
so a slow reader cannot hold up anyone else; one that falls too far behind is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from consult.errors import RateLimited, Unauthenticated
from consult.http import keys
from consult.http.middleware import USER_ID
from consult.http.principal import context, sign_in
from consult.services.events import Reader
from consult.model import iso

log = logging.getLogger("consult.ws")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_RATE_LIMITED = 4429
QUEUE_LIMIT = 1000
MAX_FRAME = 16 * 1024


async def websocket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    app = request.app
    principal = await _authenticate(ws, request)
    if principal is None:
        return ws
    request[USER_ID] = principal.user_id
    await app[keys.DIRECTORY].seen(principal)

    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=QUEUE_LIMIT)

    def sink(event: dict[str, Any]) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("closing a connection that fell behind user=%s", principal.user_id)
            asyncio.get_running_loop().create_task(ws.close(code=CLOSE_TOO_SLOW, message=b"too slow"))

    bus = app[keys.BUS]
    sockets = app[keys.SOCKETS]
    sockets.add(ws)
    sender = asyncio.create_task(_send_loop(ws, queue))
    try:
        await ws.send_json(
            {"type": "ready", "user": principal.as_json(), "server_time": iso(app[keys.CLOCK].now())}
        )
        bus.subscribe(principal.user_id, sink, Reader(principal, context(request)))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                frame = None
            if isinstance(frame, dict) and frame.get("type") == "ping":
                queue.put_nowait({"type": "pong"})
            else:
                queue.put_nowait({"type": "error", "error": {"code": "bad_frame", "message": "Unknown frame."}})
    except (ConnectionResetError, asyncio.QueueFull):
        pass
    finally:
        bus.unsubscribe(principal.user_id, sink)
        sockets.discard(ws)
        queue.put_nowait(None) if not queue.full() else None
        sender.cancel()
        try:
            await sender
        except asyncio.CancelledError:
            pass
        if not ws.closed:
            await ws.close()
    return ws


async def _authenticate(ws: web.WebSocketResponse, request: web.Request) -> Any:
    app = request.app
    timeout = app[keys.SETTINGS].ws_auth_timeout
    try:
        msg = await ws.receive(timeout=timeout)
    except (TimeoutError, asyncio.TimeoutError):
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"authentication required")
        return None
    token = None
    if msg.type == WSMsgType.TEXT:
        try:
            frame = json.loads(msg.data)
        except ValueError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "auth" and isinstance(frame.get("token"), str):
            token = frame["token"]
    if token is None:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"authentication required")
        return None
    try:
        return await sign_in(request, token)
    except RateLimited:
        await ws.close(code=CLOSE_RATE_LIMITED, message=b"too many failed sign-ins")
        return None
    except Unauthenticated:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"authentication failed")
        return None


async def _send_loop(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    while True:
        event = await queue.get()
        if event is None or ws.closed:
            return
        try:
            await ws.send_str(json.dumps(event, separators=(",", ":")))
        except (ConnectionResetError, RuntimeError):
            return


async def close_all(app: web.Application) -> None:
    """On shutdown: tell every client the server is going away (1001)."""
    for ws in list(app[keys.SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
