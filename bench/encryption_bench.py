"""The cost of encryption at rest (docs/capabilities.md C4), measured against the same work without it, same run.

1. Message path: store N messages (text + 3 data items) through the real group-committing
   writer, once sealed under the consultation's data key (what the service does) and once with
   the same bytes unsealed (the reference); then read the last 1,000 back, opened vs. raw.
2. Key rotation: 100,000 messages in 1,000 consultations, then `KeyManagement.rotate()` —
   rotation rewraps data keys (one per consultation), never the messages themselves.

    python bench/encryption_bench.py [--messages 5000] [--rotation-messages 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consult.model import SystemClock  # noqa: E402
from consult.model.consultations import Consultation  # noqa: E402
from consult.services.content import Content  # noqa: E402
from consult.services.deployment import KeyFiles, bind_keys  # noqa: E402
from consult.services.keys import KeyManagement  # noqa: E402
from consult.services.vault import Vault  # noqa: E402
from consult.storage import consultations as consultation_store  # noqa: E402
from consult.storage import messages as message_store  # noqa: E402
from consult.storage import migrate  # noqa: E402
from consult.storage.db import Database  # noqa: E402

TEXT = "Asiakkaan vuokra-asiakirja puuttuu vielä; hakemus on käsittelyssä ja päätös tulee viikolla. " * 3
ITEMS = ["in process", "2026-12-31", "housing allowance 412.50 EUR/month"]


async def new_consultation(db: Database, content: Content, now: datetime) -> str:
    cid = str(uuid.uuid4())

    async def unit(conn):  # type: ignore[no-untyped-def]
        key = await content.key(conn, cid, create_at=now)
        await consultation_store.insert_consultation(conn, Consultation(
            seq=0, id=cid, topic="other", urgency="normal", question_sealed=content.seal_question(key, cid, "q"),
            question_spans=None, purpose="tt.application_intake", origin_org="kela", created_by="bench",
            created_role="advisor", target_org="vantaa", pool=None, expert_id=None, client_ref=None,
            case_ref=None, status="open", claimed_by=None, claimed_at=None, first_response_at=None,
            closed_at=None, outcome=None, outcome_note_sealed=None, outcome_note_spans=None, closed_by=None,
            closed_org=None, closed_role=None, legal_hold=False, shredded_at=None, created_at=now,
            escalated_pool=None, question_flagged=(), outcome_flagged=()))

    await db.write(unit)
    return cid


def message_rows(content: Content, key, cid: str, now: datetime, sealed: bool) -> message_store.SealedMessage:  # type: ignore[no-untyped-def]
    mid = str(uuid.uuid4())
    text = content.seal_text(key, mid, TEXT) if sealed else TEXT.encode()
    items = tuple(
        message_store.SealedItem(i, "application.status",
                                 content.seal_item(key, mid, i, "value", v) if sealed else v.encode())
        for i, v in enumerate(ITEMS))
    return message_store.SealedMessage(
        id=mid, consultation_id=cid, author_id="bench", author_org="kela", author_role="advisor",
        author_name="Bench", text_sealed=text, text_spans=None, flagged_categories=(), created_at=now, items=items)


async def store_messages(db: Database, content: Content, cid: str, n: int, *, sealed: bool,
                         concurrency: int = 32) -> float:
    now = datetime.now(UTC)

    async def one() -> None:
        async def unit(conn):  # type: ignore[no-untyped-def]
            key = await content.key(conn, cid)
            await message_store.insert_message(conn, message_rows(content, key, cid, now, sealed))

        await db.write(unit)

    started = time.perf_counter()
    for start in range(0, n, concurrency):
        await asyncio.gather(*(one() for _ in range(min(concurrency, n - start))))
    return n / (time.perf_counter() - started)


async def read_back(db: Database, content: Content, cid: str, *, opened: bool) -> float:
    started = time.perf_counter()
    for _ in range(5):
        async with db.read() as conn:
            row = await consultation_store.get(conn, cid)
            rows = await message_store.list_messages(conn, cid, after_seq=None, limit=1000)
            if opened:
                await content.open_messages(conn, row, rows)
    return (time.perf_counter() - started) / 5 * 1000


async def bulk(db: Database, content: Content, consultations: int, per: int) -> None:
    now = datetime.now(UTC)
    for _ in range(consultations):
        cid = await new_consultation(db, content, now)

        async def unit(conn, cid=cid):  # type: ignore[no-untyped-def]
            key = await content.key(conn, cid)
            for _ in range(per):
                await message_store.insert_message(conn, message_rows(content, key, cid, now, True))

        await db.write(unit)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rotation-messages", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rotation_messages = 500, 5_000

    with tempfile.TemporaryDirectory(prefix="konsulta-crypto-bench-") as tmp:
        work = Path(tmp)
        url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url)
        await db.start()
        try:
            # The keys as `consult init` makes them: files created and their fingerprints recorded,
            # which rotation checks before it changes anything.
            files = KeyFiles(work / "keys.json", work / "audit.key", "bench", "bench.konsulta.invalid")
            keyring = (await bind_keys(db, files, SystemClock(), create=True)).keyring
            content = Content(Vault(keyring, keyring))
            now = datetime.now(UTC)
            sealed_cid = await new_consultation(db, content, now)
            plain_cid = await new_consultation(db, content, now)
            plain_rate = await store_messages(db, content, plain_cid, args.messages, sealed=False)
            sealed_rate = await store_messages(db, content, sealed_cid, args.messages, sealed=True)
            plain_read = await read_back(db, content, plain_cid, opened=False)
            sealed_read = await read_back(db, content, sealed_cid, opened=True)

            consultations = 1000 if args.rotation_messages >= 1000 else 10
            per = max(1, args.rotation_messages // consultations)
            started = time.perf_counter()
            await bulk(db, content, consultations, per)
            setup = time.perf_counter() - started
            rotation = await KeyManagement(db, keyring, SystemClock()).rotate()
        finally:
            await db.close()

    print(f"encryption benchmark: AES-256-GCM per field under per-consultation data keys, SQLite WAL, "
          f"{args.messages} messages of {len(TEXT)} chars + {len(ITEMS)} items, 32 concurrent writers")
    print(f"{'figure':44}{'sealed':>12}{'reference':>12}{'ratio':>8}")
    print(f"{'store messages (msg/s)':44}{sealed_rate:12.0f}{plain_rate:12.0f}{sealed_rate / plain_rate:8.2f}")
    print(f"{'read last 1,000 messages (ms)':44}{sealed_read:12.1f}{plain_read:12.1f}{sealed_read / plain_read:8.2f}")
    print(f"key rotation: {consultations * per} messages in {consultations} consultations "
          f"(set up in {setup:.1f} s): {rotation['rewrapped']} data keys rewrapped in {rotation['seconds']:.2f} s "
          f"(including a {0.5:.1f} s settle pause for a running service's in-flight writes)")


if __name__ == "__main__":
    asyncio.run(main())
