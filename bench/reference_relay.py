"""Reference for bench/delivery_bench.py: a bare aiohttp WebSocket relay.

No authentication, no policy, no encryption, no audit: POST /send inserts and commits the
message into SQLite (WAL, synchronous=FULL — the same durability as Konsulta) and pushes it
to the recipient's WebSockets. Run: python bench/reference_relay.py PORT DBFILE
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time

from aiohttp import web

sockets: dict[str, set[web.WebSocketResponse]] = {}


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    user = request.query["user"]
    sockets.setdefault(user, set()).add(ws)
    await ws.send_str(json.dumps({"type": "ready"}))
    try:
        async for _ in ws:
            pass
    finally:
        sockets[user].discard(ws)
    return ws


async def send(request: web.Request) -> web.Response:
    body = await request.json()
    db: sqlite3.Connection = request.app["db"]
    cur = db.execute(
        "INSERT INTO messages (sender, recipient, text, created_at) VALUES (?, ?, ?, ?)",
        (body["from"], body["to"], body["text"], time.time()),
    )
    db.commit()
    event = json.dumps({"type": "message.created", "message": {"id": cur.lastrowid, "text": body["text"]}})
    for ws in list(sockets.get(body["to"], ())):
        await ws.send_str(event)
    return web.json_response({"id": cur.lastrowid}, status=201)


async def _ok() -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, sender TEXT, recipient TEXT, "
               "text TEXT, created_at REAL)")
    app = web.Application()
    app["db"] = db
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/send", send)
    app.router.add_get("/healthz", lambda _r: _ok())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
