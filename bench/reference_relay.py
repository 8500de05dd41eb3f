"""Reference for bench/delivery_bench.py and bench/scale_bench.py: a bare aiohttp WebSocket relay.

No authentication, no policy, no encryption, no audit: POST /send inserts and commits the
message — one transaction per message — and pushes it to the recipient's WebSockets. The store is
either an SQLite file (WAL, synchronous=FULL — the same durability as Konsulta) or a PostgreSQL
database (asyncpg, a pool of connections, each INSERT its own committed transaction under the
server's default synchronous_commit), the same table either way.

    python bench/reference_relay.py PORT DBFILE
    python bench/reference_relay.py PORT postgresql://user@host:port/database
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator

from aiohttp import web

sockets: dict[str, set[web.WebSocketResponse]] = {}

POOL_SIZE = 10  # as many connections as a Konsulta instance keeps for reading


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


async def push(recipient: str, message_id: int, text: str) -> None:
    event = json.dumps({"type": "message.created", "message": {"id": message_id, "text": text}})
    for ws in list(sockets.get(recipient, ())):
        await ws.send_str(event)


async def send(request: web.Request) -> web.Response:
    body = await request.json()
    db: sqlite3.Connection = request.app["db"]
    cur = db.execute(
        "INSERT INTO messages (sender, recipient, text, created_at) VALUES (?, ?, ?, ?)",
        (body["from"], body["to"], body["text"], time.time()),
    )
    db.commit()
    assert cur.lastrowid is not None
    await push(body["to"], cur.lastrowid, body["text"])
    return web.json_response({"id": cur.lastrowid}, status=201)


async def send_pg(request: web.Request) -> web.Response:
    body = await request.json()
    message_id = await request.app["pool"].fetchval(  # outside a transaction block: committed on return
        "INSERT INTO messages (sender, recipient, text, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        body["from"], body["to"], body["text"], time.time())
    await push(body["to"], message_id, body["text"])
    return web.json_response({"id": message_id}, status=201)


async def _ok() -> web.Response:
    return web.json_response({"status": "ok"})


def sqlite_app(path: str) -> web.Application:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, sender TEXT, recipient TEXT, "
               "text TEXT, created_at REAL)")
    app = web.Application()
    app["db"] = db
    app.router.add_post("/send", send)
    return app


def postgresql_app(url: str) -> web.Application:
    import asyncpg  # only this store needs it

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app["pool"] = await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        await app["pool"].execute("CREATE TABLE IF NOT EXISTS messages (id BIGSERIAL PRIMARY KEY, sender TEXT, "
                                  "recipient TEXT, text TEXT, created_at DOUBLE PRECISION)")
        yield
        await app["pool"].close()

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_post("/send", send_pg)
    return app


def main() -> None:
    port, store = int(sys.argv[1]), sys.argv[2]
    app = postgresql_app(store) if store.startswith("postgresql://") else sqlite_app(store)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", lambda _r: _ok())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
