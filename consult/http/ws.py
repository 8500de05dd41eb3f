"""The live channel ``/api/v1/ws`` (public API, docs/capabilities.md).

The token never travels in the URL: the first frame must be ``{"type": "auth", "token"}``;
the server answers ``ready`` or closes with 4401. Each connection has its own bounded queue,
so a slow reader cannot hold up anyone else; one that falls too far behind is closed.

A connection lives only as long as its token: when the token's ``exp`` plus the leeway
(``CONSULT_TOKEN_LEEWAY_SECONDS``) has passed, the server closes it with 4401 and hands it no
further event, unless the client sent a fresh token for the same user and organisation as
another ``auth`` frame (answered ``auth.ok``; a token for anyone else closes it with 4401).
When an administrator ends the user's sessions, the connection is closed with 4403.

Resuming: ``ready`` names the newest ``event_id``; an ``auth`` frame with ``last_event_id`` N gets,
after ``ready``, the user's kept events after N in id order and then ``live.resumed``
(consult/services/live.py). The connection is subscribed before ``ready`` but held: what arrives
meanwhile waits behind the replay, and what the replay already contained is not sent again. A
connection that does not resume gets no kept event up to the id its ``ready`` named. One that
loses a kept event (its delivery record could not be written) gets nothing after it and is closed
with 1013, to resume from the last event it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from consult.auth import Session
from consult.errors import RateLimited, Unauthenticated
from consult.http import keys
from consult.http.middleware import USER_ID
from consult.http.principal import context, sign_in_session
from consult.http.validation import BadJson, loads
from consult.model import Principal, iso, wire
from consult.services.events import Reader

log = logging.getLogger("consult.ws")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_SESSION_ENDED = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_RATE_LIMITED = 4429
QUEUE_LIMIT = 1000
MAX_FRAME = 16 * 1024

#: Closes started by a session ending, held until done (the event loop keeps only weak references).
_closing: set[asyncio.Task[Any]] = set()


@dataclass
class LiveSession:
    """One open connection: whom it serves and until when (Unix seconds)."""

    principal: Principal
    expires_at: float
    ended: bool = False

    def current(self) -> bool:
        return not self.ended and time.time() <= self.expires_at


async def websocket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    app = request.app
    session, resume = await _authenticate(ws, request)
    if session is None:
        return ws
    principal = session.principal
    request[USER_ID] = principal.user_id
    await app[keys.DIRECTORY].seen(principal)
    live = LiveSession(principal, session.expires_at)

    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=QUEUE_LIMIT)

    def sink(event: dict[str, Any]) -> None:
        if not live.current():
            # The token ran out (or the session was ended) between two turns of the receive
            # loop: nothing more goes out; the loop closes the connection.
            return
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("closing a connection that fell behind user=%s", principal.user_id)
            asyncio.get_running_loop().create_task(ws.close(code=CLOSE_TOO_SLOW, message=b"too slow"))

    def gap() -> None:
        # A kept event could not be recorded, so it was not sent: the client resumes from the last
        # one it got (the replay records and sends it), rather than go on past the gap.
        log.warning("closing a connection that lost a live event, to resume user=%s", principal.user_id)
        _close_later(ws, WSCloseCode.TRY_AGAIN_LATER, b"resume")

    bus = app[keys.BUS]
    sockets = app[keys.SOCKETS]
    sockets[ws] = live
    ctx = context(request)
    metrics = app[keys.METRICS]
    sender = asyncio.create_task(_send_loop(ws, queue, metrics))
    try:
        # Held until the replay (if any) is sent: nothing arrives before ``ready``, nothing twice.
        bus.subscribe(principal.user_id, sink, Reader(principal, ctx), hold=True, on_gap=gap)
        try:
            newest = await app[keys.LIVE].newest()
        except Exception as exc:  # the database is unreachable: the client reconnects later
            log.error("live connection refused, newest event id unreadable: %s", type(exc).__name__)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"try again later")
            return ws
        await ws.send_json({"type": "ready", "user": principal.as_json(), "server_time": iso(app[keys.CLOCK].now()),
                            "expires_at": _iso_seconds(live.expires_at), "last_event_id": newest})
        if resume is BAD_RESUME:
            await ws.send_json(_bad_frame("last_event_id must be a non-negative integer."))
        # Without a resume the socket starts at ``ready``: the client's views, read after it, show
        # every event up to ``newest``, which an instance whose feed is behind may not have handed on yet.
        floor = newest
        if isinstance(resume, int):
            floor = await _replay(ws, request, principal, Reader(principal, ctx), sink, resume, newest)
        bus.release(sink, floor)
        while True:
            if live.ended:
                break
            remaining = live.expires_at - time.time()
            if remaining <= 0:
                live.ended = True
                await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"token expired")
                break
            try:
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = loads(msg.data)
            except BadJson:
                frame = None
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "ping":
                queue.put_nowait({"type": "pong"})
            elif kind == "auth":
                if not await _renew(ws, request, live, frame):
                    break
                bus.subscribe(principal.user_id, sink, Reader(live.principal, ctx))
                queue.put_nowait({"type": "auth.ok", "expires_at": _iso_seconds(live.expires_at)})
            else:
                queue.put_nowait(_bad_frame("Unknown frame."))
    except (ConnectionResetError, asyncio.QueueFull):
        pass
    finally:
        live.ended = True
        bus.unsubscribe(principal.user_id, sink)
        sockets.pop(ws, None)
        queue.put_nowait(None) if not queue.full() else None
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        if not ws.closed:
            await ws.close()
    return ws


async def _renew(ws: web.WebSocketResponse, request: web.Request, live: LiveSession, frame: dict[str, Any]) -> bool:
    """A fresh token on the open connection: it must name the same user in the same organisation."""
    token = frame.get("token")
    session = await _verify(ws, request, token if isinstance(token, str) else None)
    if session is None:
        live.ended = True
        return False
    if (session.principal.user_id, session.principal.org) != (live.principal.user_id, live.principal.org):
        live.ended = True
        log.warning("refused a token for another user on an open connection user=%s", live.principal.user_id)
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"token for another user")
        return False
    live.principal, live.expires_at = session.principal, session.expires_at
    return True


def _bad_frame(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": "bad_frame", "message": message}}


#: The ``last_event_id`` of an ``auth`` frame was not a non-negative integer.
BAD_RESUME = "bad"


def _resume_from(frame: dict[str, Any]) -> int | str | None:
    """The id to resume after, None when the frame asks for no resume, or ``BAD_RESUME``."""
    if "last_event_id" not in frame:
        return None
    value = frame["last_event_id"]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return BAD_RESUME


async def _replay(ws: web.WebSocketResponse, request: web.Request, principal: Principal, reader: Reader,
                  sink: Any, after: int, newest: int) -> int:
    """Send the user's kept events after ``after`` and then ``live.resumed``; the id up to which
    the connection has had every kept event (live ones up to it are not sent again)."""
    app = request.app
    try:
        replay = await app[keys.LIVE].replay(principal.user_id, after, newest, sink, reader)
    except Exception as exc:  # the client re-reads its views; live events go on
        log.error("replay of live events failed: %s", type(exc).__name__)
        await ws.send_json({"type": "live.resumed", "from": after, "replayed": 0, "complete": False})
        return min(after, newest)
    metrics = app[keys.METRICS]
    for event in replay.events:
        await ws.send_str(wire.dumps(event, separators=(",", ":")))
        metrics.event_delivered(str(event.get("type", "-")))
    await ws.send_json({"type": "live.resumed", "from": after, "replayed": len(replay.events),
                        "complete": replay.complete})
    return replay.floor


async def _authenticate(ws: web.WebSocketResponse, request: web.Request) -> tuple[Session | None, int | str | None]:
    """The session of the first frame's token, and where it asks to resume from."""
    app = request.app
    timeout = app[keys.SETTINGS].ws_auth_timeout
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"authentication required")
        return None, None
    token = None
    resume: int | str | None = None
    if msg.type == WSMsgType.TEXT:
        try:
            frame = loads(msg.data)
        except BadJson:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "auth" and isinstance(frame.get("token"), str):
            token = frame["token"]
            resume = _resume_from(frame)
    return await _verify(ws, request, token), resume


async def _verify(ws: web.WebSocketResponse, request: web.Request, token: str | None) -> Session | None:
    """The session of ``token``, or None after closing the connection with the reason."""
    if token is None:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"authentication required")
        return None
    try:
        return await sign_in_session(request, token)
    except RateLimited:
        await ws.close(code=CLOSE_RATE_LIMITED, message=b"too many failed sign-ins")
        return None
    except Unauthenticated:
        await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"authentication failed")
        return None


async def _send_loop(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any] | None], metrics: Any) -> None:
    while True:
        event = await queue.get()
        if event is None or ws.closed:
            return
        try:
            await ws.send_str(wire.dumps(event, separators=(",", ":")))
        except (ConnectionResetError, RuntimeError):
            return
        metrics.event_delivered(str(event.get("type", "-")))


def end_sessions(app: web.Application):  # type: ignore[no-untyped-def]
    """The listener of ``Sessions.on_end``: close the ended user's connections at once (4403),
    handing them nothing more from this moment."""

    def close(org: str, user_id: str) -> None:
        loop = asyncio.get_running_loop()
        for ws, live in list(app[keys.SOCKETS].items()):
            if live.principal.org == org and live.principal.user_id == user_id:
                live.ended = True
                _close_later(ws, CLOSE_SESSION_ENDED, b"session ended", loop)

    return close


def _close_later(ws: web.WebSocketResponse, code: int, message: bytes,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
    task = (loop or asyncio.get_running_loop()).create_task(ws.close(code=code, message=message))
    # The loop keeps only a weak reference to a task: hold it until the close is done.
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def close_all(app: web.Application) -> None:
    """On shutdown: tell every client the server is going away (1001)."""
    sockets: dict[web.WebSocketResponse, LiveSession] = app[keys.SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def _iso_seconds(at: float) -> str | None:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(at, UTC))
