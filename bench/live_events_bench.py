"""The cost of keeping live events on the SQLite message path: the CPU of writing one message's
event rows (each recipient's rendering sealed under the consultation's key and inserted), measured
inside the write unit, beside the CPU of a whole write unit that only writes the audit record a
message post also writes. Process CPU time (``time.process_time``), so a busy machine matters less
than to wall-clock figures; see bench/delivery_bench.py for the whole path over HTTP.

    python bench/live_events_bench.py [--units 2000] [--recipients 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consult import app as root  # noqa: E402
from consult.audit.records import AuditRecord, record  # noqa: E402
from consult.config import Settings  # noqa: E402
from consult.model import Principal, SystemClock  # noqa: E402
from consult.model.context import RequestContext  # noqa: E402
from consult.services.events import EventBus, Subject  # noqa: E402
from consult.services.live import LiveEvents  # noqa: E402
from consult.services.vault import consultation_owner  # noqa: E402

EVENT = {"type": "message.created", "message": {
    "id": str(uuid.uuid4()), "consultation_id": "", "author": {"id": "kela.aino", "name": "Aino", "org": "kela",
                                                              "role": "advisor"},
    "text": "Does the client need to resubmit the rent attachment? " * 3,
    "data": [{"category": "application.status", "value": "in process"},
             {"category": "health", "withheld": True, "rule": "r", "citation": "c", "reason": "Not permitted."}],
    "created_at": "2026-03-02T07:00:00Z", "read_by": []}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="konsulta-live-bench-") as tmp:
        work = Path(tmp)
        settings = Settings(database_url=f"sqlite+aiosqlite:///{work / 'k.db'}", key_file=work / "keys.json",
                            policy_dir=ROOT / "policies", data_dir=work, dev=True)
        clock = SystemClock()
        async with root.database(settings) as db:
            vault = root.vault_of(await root.keys(db, settings, clock, create=True))
            live = LiveEvents(db, vault, EventBus(), clock, retention=__import__("datetime").timedelta(hours=24))
            cid = str(uuid.uuid4())
            await db.write(lambda conn: vault.key(conn, consultation_owner(cid), create_at=clock.now()))
            who = Principal("kela.aino", "kela", frozenset({"advisor"}), "Aino")
            ctx = RequestContext("bench")
            rendered = [(f"user{i}", EVENT) for i in range(args.recipients)]
            subject = Subject(cid, "ref", "tt.application_intake")
            events_cpu: list[float] = []
            audit_cpu: list[float] = []

            async def unit(conn: object) -> None:
                t0 = time.process_time()
                await record(conn, who, ctx, clock.now(), [AuditRecord(action="message.create", consultation_id=cid)])
                t1 = time.process_time()
                await live.write(conn, cid, rendered, subject)  # type: ignore[arg-type]
                t2 = time.process_time()
                audit_cpu.append(t1 - t0)
                events_cpu.append(t2 - t1)

            for _ in range(args.units):
                await db.write(unit)
    skip = args.units // 10  # warm-up
    ev, au = events_cpu[skip:], audit_cpu[skip:]
    print(f"live events bench: {len(ev)} units, {args.recipients} recipients per message, SQLite")
    print(f"  event rows (seal + insert), CPU per message: median {statistics.median(ev) * 1e6:.0f} us, "
          f"mean {statistics.fmean(ev) * 1e6:.0f} us")
    print(f"  one audit record (for scale), CPU:           median {statistics.median(au) * 1e6:.0f} us, "
          f"mean {statistics.fmean(au) * 1e6:.0f} us")


if __name__ == "__main__":
    asyncio.run(main())
