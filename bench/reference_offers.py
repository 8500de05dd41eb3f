"""Reference for bench/routing_bench.py: a bare aiohttp offer-and-claim server.

No authentication, agreements, roster, policy, encryption or audit: POST /offer inserts and
commits a row and pushes the offer to every connected expert socket; POST /claim/{id} is a
first-wins UPDATE (200, or 409). The store is an SQLite file (WAL, synchronous=FULL — Konsulta's
durability) or a PostgreSQL database (asyncpg, a pool of connections, each statement its own
committed transaction), the same table either way.

    python bench/reference_offers.py PORT DBFILE
    python bench/reference_offers.py PORT postgresql://user@host:port/database
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

experts: set[web.WebSocketResponse] = set()

POOL_SIZE = 10  # as many connections as a Konsulta instance keeps for reading


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    experts.add(ws)
    await ws.send_str(json.dumps({"type": "ready"}))
    try:
        async for _ in ws:
            pass
    finally:
        experts.discard(ws)
    return ws


async def push(cid: str, question: str) -> None:
    event = json.dumps({"type": "consultation.offered", "consultation": {"id": cid, "question": question}})
    for ws in list(experts):
        await ws.send_str(event)


async def offer(request: web.Request) -> web.Response:
    body = await request.json()
    db: sqlite3.Connection = request.app["db"]
    cid = str(uuid.uuid4())
    db.execute("INSERT INTO consultations (id, question, status) VALUES (?, ?, 'open')", (cid, body["question"]))
    db.commit()
    await push(cid, body["question"])
    return web.json_response({"id": cid}, status=201)


async def claim(request: web.Request) -> web.Response:
    db: sqlite3.Connection = request.app["db"]
    cur = db.execute("UPDATE consultations SET status = 'claimed', claimed_by = ? WHERE id = ? AND status = 'open'",
                     (request.query.get("by", "?"), request.match_info["id"]))
    db.commit()
    return web.json_response({"ok": cur.rowcount == 1}, status=200 if cur.rowcount == 1 else 409)


async def offer_pg(request: web.Request) -> web.Response:
    body = await request.json()
    cid = str(uuid.uuid4())
    await request.app["pool"].execute("INSERT INTO consultations (id, question, status) VALUES ($1, $2, 'open')",
                                      cid, body["question"])
    await push(cid, body["question"])
    return web.json_response({"id": cid}, status=201)


async def claim_pg(request: web.Request) -> web.Response:
    done = await request.app["pool"].execute(
        "UPDATE consultations SET status = 'claimed', claimed_by = $1 WHERE id = $2 AND status = 'open'",
        request.query.get("by", "?"), request.match_info["id"])
    won = done == "UPDATE 1"
    return web.json_response({"ok": won}, status=200 if won else 409)


async def _ok(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def sqlite_app(path: str) -> web.Application:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS consultations (id TEXT PRIMARY KEY, question TEXT, status TEXT, "
               "claimed_by TEXT)")
    app = web.Application()
    app["db"] = db
    app.router.add_post("/offer", offer)
    app.router.add_post("/claim/{id}", claim)
    return app


def postgresql_app(url: str) -> web.Application:
    import asyncpg  # only this store needs it

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app["pool"] = await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        await app["pool"].execute("CREATE TABLE IF NOT EXISTS consultations (id TEXT PRIMARY KEY, question TEXT, "
                                  "status TEXT, claimed_by TEXT)")
        yield
        await app["pool"].close()

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_post("/offer", offer_pg)
    app.router.add_post("/claim/{id}", claim_pg)
    return app


def main() -> None:
    port, store = int(sys.argv[1]), sys.argv[2]
    app = postgresql_app(store) if store.startswith("postgresql://") else sqlite_app(store)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", _ok)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
