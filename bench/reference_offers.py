"""Reference for bench/routing_bench.py: a bare aiohttp offer-and-claim server.

No authentication, agreements, roster, policy, encryption or audit: POST /offer inserts and
commits a row into SQLite (WAL, synchronous=FULL — Konsulta's durability) and pushes the offer
to every connected expert socket; POST /claim/{id} is a first-wins UPDATE (200, or 409).
Run: python bench/reference_offers.py PORT DBFILE
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid

from aiohttp import web

experts: set[web.WebSocketResponse] = set()


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


async def offer(request: web.Request) -> web.Response:
    body = await request.json()
    db: sqlite3.Connection = request.app["db"]
    cid = str(uuid.uuid4())
    db.execute("INSERT INTO consultations (id, question, status) VALUES (?, ?, 'open')", (cid, body["question"]))
    db.commit()
    event = json.dumps({"type": "consultation.offered", "consultation": {"id": cid, "question": body["question"]}})
    for ws in list(experts):
        await ws.send_str(event)
    return web.json_response({"id": cid}, status=201)


async def claim(request: web.Request) -> web.Response:
    db: sqlite3.Connection = request.app["db"]
    cur = db.execute("UPDATE consultations SET status = 'claimed', claimed_by = ? WHERE id = ? AND status = 'open'",
                     (request.query.get("by", "?"), request.match_info["id"]))
    db.commit()
    return web.json_response({"ok": cur.rowcount == 1}, status=200 if cur.rowcount == 1 else 409)


async def _ok(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS consultations (id TEXT PRIMARY KEY, question TEXT, status TEXT, "
               "claimed_by TEXT)")
    app = web.Application()
    app["db"] = db
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/offer", offer)
    app.router.add_post("/claim/{id}", claim)
    app.router.add_get("/healthz", _ok)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
