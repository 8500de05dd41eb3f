"""Helpers for WebSocket tests: connect, authenticate, wait for an event of a type, or make sure
none of a type is waiting."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType


async def connect(api: Any, user_id: str) -> ClientWebSocketResponse:
    ws = await api.client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": api.token(user_id)})
    ready = await ws.receive_json(timeout=5)
    assert ready["type"] == "ready", ready
    assert ready["user"]["id"] == user_id
    return ws


async def next_event(ws: ClientWebSocketResponse, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """Skip other events until one of ``kind`` arrives."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no {kind} event within {timeout}s")
        msg = await ws.receive(timeout=remaining)
        if msg.type != WSMsgType.TEXT:
            raise AssertionError(f"socket closed while waiting for {kind}: {msg.type}")
        event = msg.json()
        if event.get("type") == kind:
            return event


async def no_event(ws: ClientWebSocketResponse, kind: str, timeout: float = 5.0) -> None:
    """Assert that no event of ``kind`` is waiting on ``ws``, without a sleep window.

    A barrier instead: the socket's own ping frame, whose pong the server queues behind every
    event already handed to this connection. Every event passes through the delivery ledger in
    publication order, so call this once an event published with or after the one that must not
    arrive has been received (on any socket), or, for an event that carries no content (nothing
    for the ledger to record), once the request whose act would have published it has answered.
    """
    await ws.send_json({"type": "ping"})
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no pong within {timeout}s")
        msg = await ws.receive(timeout=remaining)
        if msg.type != WSMsgType.TEXT:
            raise AssertionError(f"socket closed while waiting for the pong: {msg.type}")
        event = msg.json()
        if event.get("type") == "pong":
            return
        if event.get("type") == kind:
            raise AssertionError(f"unexpected {kind} event: {event}")
