"""The cost of searching one's own consultations on the server (POST /api/v1/consultations/search),
whose questions are sealed: a search opens up to 500 of them per request. Measured beside the
plain list page of 50 (the reference: GET /api/v1/consultations, the same records, 50 opened) in the same run,
through the real app in this process on SQLite.

    python bench/search_bench.py [--consultations 500] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from consult.auth.dev import DEMO_USERS  # noqa: E402
from consult.config import Settings  # noqa: E402
from consult.http import keys  # noqa: E402
from consult.http.app import create_app  # noqa: E402
from consult.storage import migrate  # noqa: E402

LIST = "/api/v1/consultations?limit=50"
SEARCH = "/api/v1/consultations/search"


async def timed(client: TestClient, url: str, headers: dict[str, str], rounds: int,
                words: str | None = None) -> tuple[float, dict]:
    """The median time of ``rounds`` list requests, or searches for ``words`` (in the body)."""
    times, body = [], {}
    for _ in range(rounds):
        start = time.perf_counter()
        request = (client.get(url, headers=headers) if words is None
                   else client.post(url, headers=headers, json={"q": words, "limit": 50}))
        async with request as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), body


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--consultations", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        migrate.upgrade(f"sqlite+aiosqlite:///{work / 'k.db'}")
        settings = Settings(database_url=f"sqlite+aiosqlite:///{work / 'k.db'}", key_file=work / "keys.json",
                            policy_dir=ROOT / "policies", data_dir=work, dev=True, demo=True)
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        try:
            aino = next(u for u in DEMO_USERS if u.user_id == "kela.aino")
            headers = {"Authorization": f"Bearer {client.app[keys.DEV_ISSUER].mint_for(aino)}"}
            for n in range(args.consultations):
                question = "Harvinainen kaamosvalo?" if n == 0 else f"Tavallinen kysymys numero {n} vuokrasta?"
                async with client.post("/api/v1/consultations", headers=headers, json={
                        "topic": "other", "urgency": "normal", "question": question, "purpose": "general",
                        "target_org": "vantaa"}) as r:
                    assert r.status == 201, await r.text()
            await timed(client, LIST, headers, args.rounds)  # warm-up
            ref, page = await timed(client, LIST, headers, args.rounds)
            miss, none = await timed(client, SEARCH, headers, args.rounds, "olematon")
            hit, oldest = await timed(client, SEARCH, headers, args.rounds, "kaamosvalo")
            many, found = await timed(client, SEARCH, headers, args.rounds, "vuokrasta")
            again, _ = await timed(client, LIST, headers, args.rounds)
            ref = min(ref, again)  # the reference measured before and after the searches
        finally:
            await client.close()
    assert len(page["items"]) == 50 and none["items"] == [] and len(oldest["items"]) == 1
    assert len(found["items"]) == 50
    scanned = min(args.consultations, 500)
    print(f"consultations of the caller: {args.consultations}; median of {args.rounds} requests each")
    print(f"  reference: list page of 50 (50 opened)          {ref:7.2f} ms")
    print(f"  search, first 50 of many match (~50 opened)     {many:7.2f} ms  ({many / ref:.2f}x reference)")
    print(f"  search, only the oldest matches ({scanned} opened)   {hit:7.2f} ms  ({hit / ref:.2f}x reference)")
    print(f"  search, nothing matches ({scanned} opened)           {miss:7.2f} ms  ({miss / ref:.2f}x reference)")
    print(f"  per consultation looked at: {miss / scanned * 1000:.0f} µs (reference {ref / 50 * 1000:.0f} µs)")


if __name__ == "__main__":
    asyncio.run(main())
