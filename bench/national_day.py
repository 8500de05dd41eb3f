"""A simulated day at national scale: Kela's advisors and the wellbeing services counties' experts
on THREE `consult serve` instances sharing one PostgreSQL database.

The nominal population is 2,000 Kela advisors and 300 experts in 22 counties (the 21 wellbeing
services counties and the city of Helsinki), each county with its own agreement with Kela, a
benefits pool (``toimeentulotuki``) whose experts are on duty, and a social-work intake pool of
two social workers for sosiaalihuoltolaki 35 § contacts. Every user exists and has a token (each
signs in once, ``GET /api/v1/me``). Every expert and social worker holds a WebSocket, spread over
the three instances; a sampled number of advisors (``--active``) is at work at any moment, each
with a socket of their own, one consultation after another:

- urgency ``immediate``/``today``/``normal`` (20/30/50 %); about 8 % are 35 § referrals to the
  intake (``immediate``, under the client's consent);
- about 70 % name a client (``POST /clients``), a third of those with a consent recorded first
  (county -> Kela, ``income.other``) under which the expert later sends an item;
- on-duty experts get ``consultation.offered`` on their socket and two of them try to claim it
  (the loser's 409 is the expected race, not an error);
- 5–20 messages from both sides, some with data items (``application.status``, ``income.other``,
  ``service_need.referral``), a read receipt and a read of the thread, then the expert closes it.

It reports requests and latency percentiles by kind, errors (any non-2xx other than the 409 of a
lost claim race: must be zero), live events expected vs received per socket (lost and duplicated:
must be zero), the database's growth per consultation and per message (``pg_total_relation_size``
of every table before and after) extrapolated to a month at a stated national volume, and the CPU
of the load generator, of each instance and of the database backends. Autovacuum may be off on the
server, so the run itself runs ``VACUUM (ANALYZE)`` every ``--vacuum-every`` seconds (said in the
output). The database is created and dropped again.

    python bench/national_day.py [--seconds 120] [--active 40] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consult.auth.dev import DevIssuer  # noqa: E402
from tests.synthetic import hetu  # noqa: E402

PG_URL = os.environ.get("CONSULT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
PG_PREFIX = os.environ.get("CONSULT_TEST_PG_PREFIX", "konsulta")

#: The 21 wellbeing services counties and the city of Helsinki (which organises the same services).
COUNTIES = (
    "vantaa", "helsinki", "ita_uusimaa", "keski_uusimaa", "lansi_uusimaa", "varsinais_suomi", "satakunta",
    "kanta_hame", "pirkanmaa", "paijat_hame", "kymenlaakso", "etela_karjala", "etela_savo", "pohjois_savo",
    "pohjois_karjala", "keski_suomi", "etela_pohjanmaa", "pohjanmaa", "keski_pohjanmaa", "pohjois_pohjanmaa",
    "kainuu", "lappi",
)
POOL = "toimeentulotuki"
INTAKE = "social_work_intake"
SOCIAL_WORKERS_PER_COUNTY = 2
CLAIMERS = 2  # on-duty experts who try to claim each offered consultation
URGENCIES = (("immediate", 0.2), ("today", 0.3), ("normal", 0.5))
TOPICS = ("application_intake", "attachments", "primary_benefits", "urgent_assistance", "other")
LINES = ("Hakemus on vastaanotettu ja käsittelyssä.", "Liitteet puuttuvat vielä osittain.",
         "Asiakas kysyy täydentävästä tuesta.", "Tarkistan tilanteen ja palaan asiaan.",
         "Vuokra-asiakirja on toimitettu.", "Päätös tehdään tällä viikolla.", "Kiitos, tämä riittää.")
#: National volume assumed for the month's extrapolation.
CONSULTATIONS_PER_ADVISOR_DAY = 2
WORKING_DAYS_PER_MONTH = 21


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends_cpu(before: dict[int, float]) -> float:
    """CPU seconds since ``before`` of the processes in it that still run."""
    return sum(cpu_seconds(pid) - then for pid, then in before.items() if os.path.exists(f"/proc/{pid}"))


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pick(weighted: tuple[tuple[str, float], ...], rng: random.Random) -> str:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


# -- the database ---------------------------------------------------------------------------------

def _dsn(name: str) -> str:
    """An asyncpg DSN for database ``name`` on the server of PG_URL."""
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + f"/{name}"


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn("postgres"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class Database:
    """The run's own database: sizes, counts, VACUUM (ANALYZE) and the CPU of its backends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
        self.vacuums: list[float] = []
        self.waits: Counter[str] = Counter()
        self.samples = 0

    async def query(self, sql: str) -> list[Any]:
        import asyncpg

        conn = await asyncpg.connect(_dsn(self.name))
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    async def sizes(self) -> dict[str, int]:
        rows = await self.query("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                "WHERE n.nspname = 'public' AND c.relkind = 'r'")
        return {str(r[0]): int(r[1]) for r in rows}

    async def counts(self) -> tuple[int, int]:
        rows = await self.query("SELECT (SELECT count(*) FROM consultations), (SELECT count(*) FROM messages)")
        return int(rows[0][0]), int(rows[0][1])

    async def backends(self) -> set[int]:
        rows = await self.query(f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.name}' "
                                "AND pid <> pg_backend_pid()")
        return {int(r[0]) for r in rows}

    async def sample_waits(self, stop: asyncio.Event, every: float = 0.25) -> None:
        """What the database's non-idle backends are doing, sampled until ``stop``: in a
        transaction but waiting for the application ("Client"), for a row lock ("Lock"), for the
        disk or the WAL ("IO", "LWLock"), or running ("CPU")."""
        import asyncpg

        conn = await asyncpg.connect(_dsn(self.name))
        try:
            while not stop.is_set():
                rows = await conn.fetch(
                    "SELECT coalesce(wait_event_type, 'CPU'), count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle' "
                    "AND backend_type = 'client backend' AND application_name <> 'konsulta-events' GROUP BY 1")
                self.samples += 1
                for kind, count in rows:
                    self.waits[str(kind)] += int(count)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
        finally:
            await conn.close()

    async def vacuum(self) -> None:
        started = time.perf_counter()
        await self.query("VACUUM (ANALYZE)")
        self.vacuums.append(time.perf_counter() - started)

    async def vacuum_every(self, seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            if not stop.is_set():
                await self.vacuum()


# -- the instances --------------------------------------------------------------------------------

def write_config(work: Path) -> tuple[Path, Path]:
    """A policy directory whose taxonomy knows the 22 counties, and the CONSULT_CONFIG file naming
    them with synthetic controller details."""
    policies = work / "policies"
    policies.mkdir()
    for path in (ROOT / "policies").iterdir():
        if path.is_file():
            (policies / path.name).write_text(path.read_text())
    extra = "".join(f'\n[organisations.{c}]\nkind = "wellbeing_county"\nname = "Hyvinvointialue {c}"\n'
                    for c in COUNTIES if c != "vantaa")
    taxonomy = policies / "taxonomy.toml"
    taxonomy.write_text(taxonomy.read_text() + extra)
    lines = [f"orgs = {json.dumps(['kela', *COUNTIES])}"]
    for c in COUNTIES:
        if c == "vantaa":
            continue
        lines += [f"[controllers.{c}]", f'name_fi = "Hyvinvointialue {c}"', f'name_sv = "Välfärdsområde {c}"',
                  f'name_en = "Wellbeing services county {c}"', 'address = "Esimerkkikatu 1, 00100 Esimerkki"',
                  'phone = "029 000 000"', 'privacy_contact = "tietosuoja@example.invalid"',
                  'web = "https://example.invalid"']
    config = work / "konsulta.toml"
    config.write_text("\n".join(lines) + "\n")
    return policies, config


class Instance:
    def __init__(self, work: Path, name: str, database_url: str, policies: Path, config: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = work / name
        self.dir.mkdir()
        data = work / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
        self.env.update({
            "CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(data), "CONSULT_KEY_FILE": str(data / "keys.json"),
            "CONSULT_DATABASE_URL": database_url, "CONSULT_POLICY_DIR": str(policies), "CONSULT_CONFIG": str(config),
            "CONSULT_INSTANCE_ID": name, "CONSULT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> subprocess.Popen[bytes]:
        with (self.dir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "consult", "serve", "--port", str(self.port)],
                                         cwd=self.dir, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        return self.proc

    async def start(self) -> None:
        self.launch()
        assert self.proc is not None
        deadline = time.monotonic() + 90
        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.base}/readyz") as r:
                        if r.status == 200:
                            return
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"instance {self.name} did not start: {self.log()}")
                await asyncio.sleep(0.2)

    def keep_log(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{self.name}.log").write_bytes((self.dir / "server.log").read_bytes())

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


# -- users, requests and sockets --------------------------------------------------------------------

@dataclass
class User:
    user_id: str
    org: str
    role: str
    token: str = ""
    instance: int = 0


@dataclass
class Stats:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    lost_races: int = 0
    consultations: int = 0
    messages: int = 0
    referrals: int = 0
    consents: int = 0
    items: int = 0
    urgency: Counter[str] = field(default_factory=Counter)


class Socket:
    """One user's live channel: what arrived, by kind, and the event ids seen."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.event_ids: list[int] = []
        self.received: dict[str, list[str]] = defaultdict(list)
        self.expected: dict[str, set[str]] = defaultdict(set)
        self.changed = asyncio.Event()
        self.on_offer: Any = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.closed_early = False
        self.unreadable: str | None = None  # a frame this script could not read (it stops reading)

    async def open(self, http: aiohttp.ClientSession, base: str) -> None:
        ws = await http.ws_connect(base.replace("http://", "ws://") + "/api/v1/ws", heartbeat=30)
        await ws.send_json({"type": "auth", "token": self.user.token})
        ready = await ws.receive_json(timeout=30)
        if ready.get("type") != "ready":
            raise RuntimeError(f"socket of {self.user.user_id}: {ready}")
        self.ws = ws
        self.reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            await self._frames(ws)
        except (KeyError, TypeError, ValueError) as exc:  # reported as an error, not as lost events
            self.unreadable = f"{type(exc).__name__}: {exc}"

    async def _frames(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if "event_id" in frame:
                self.event_ids.append(frame["event_id"])
            kind = frame.get("type")
            if kind == "message.created":
                self.received[kind].append(frame["message"]["id"])
            elif kind in ("consultation.offered", "consultation.claimed"):
                # The other experts a consultation was offered to learn of its claim by id only.
                about = frame.get("consultation")
                self.received[kind].append(about["id"] if about else frame["consultation_id"])
                if kind == "consultation.offered" and self.on_offer is not None:
                    self.on_offer(frame)
            self.changed.set()
        self.closed_early = True

    def missing(self) -> int:
        return sum(len(want - set(self.received[kind])) for kind, want in self.expected.items())

    def duplicates(self) -> int:
        twice = len(self.event_ids) - len(set(self.event_ids))
        return twice + len(self.received["message.created"]) - len(set(self.received["message.created"]))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader


class Day:
    def __init__(self, args: argparse.Namespace, instances: list[Instance], issuer: DevIssuer) -> None:
        self.args = args
        self.instances = instances
        self.issuer = issuer
        self.stats = Stats()
        self.rng = random.Random(args.seed)
        self.advisors = [User(f"kela.advisor{n:04d}", "kela", "advisor") for n in range(args.advisors)]
        counties = COUNTIES[:args.counties]
        self.counties = counties
        self.experts: dict[str, list[User]] = {c: [] for c in counties}
        for n in range(args.experts):
            county = counties[n % len(counties)]
            self.experts[county].append(User(f"{county}.expert{n // len(counties):02d}", county, "expert"))
        self.intake = {c: [User(f"{c}.sw{n}", c, "social_worker") for n in range(SOCIAL_WORKERS_PER_COUNTY)]
                       for c in counties}
        self.admins = {org: User(f"{org}.admin", org, "admin") for org in ("kela", *counties)}
        everyone = [*self.advisors, *(u for us in self.experts.values() for u in us),
                    *(u for us in self.intake.values() for u in us), *self.admins.values()]
        for n, user in enumerate(everyone):
            user.token = issuer.mint(sub=user.user_id, org=user.org, roles=[user.role], name=user.user_id,
                                     ttl=6 * 3600)
            user.instance = n % len(instances)
        self.everyone = everyone
        self.sockets: dict[str, Socket] = {}
        self.claimed: dict[str, asyncio.Future[User]] = {}
        self.clients = 0
        self.http: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    # requests ------------------------------------------------------------------------------------

    async def call(self, kind: str, method: str, path: str, user: User, body: Any = None, *,
                   race: bool = False) -> Any:
        """One request to a random instance; its latency is recorded under ``kind``. Any answer
        but 2xx is an error, except a 409 where ``race`` says a lost claim race is expected."""
        assert self.http is not None
        base = self.rng.choice(self.instances).base
        started = time.perf_counter()
        try:
            async with self.http.request(method, base + path, json=body,
                                         headers={"Authorization": f"Bearer {user.token}"}) as r:
                raw = await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.errors[f"{kind} {type(exc).__name__}"] += 1
            return None
        self.stats.latency[kind].append((time.perf_counter() - started) * 1000)
        if 200 <= status < 300:
            return json.loads(raw) if raw else {}
        if status == 409 and race:
            self.stats.lost_races += 1
            return None
        self.stats.errors[f"{kind} {status}"] += 1
        if len(self.stats.error_samples) < 10:
            self.stats.error_samples.append(f"{kind} {method} {status}: {raw[:300]!r}")
        return None

    # set-up --------------------------------------------------------------------------------------

    async def setup(self) -> None:
        """Every user signs in once; agreements, pools and the experts on duty; every expert's and
        social worker's socket opens."""
        sem = asyncio.Semaphore(32)

        async def bounded(coro: Any) -> Any:
            async with sem:
                return await coro

        await asyncio.gather(*(bounded(self.call("setup", "GET", "/api/v1/me", u)) for u in self.everyone))
        kela = self.admins["kela"]
        since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        for county in self.counties:
            admin = self.admins[county]
            await self.call("setup", "POST", "/api/v1/agreements", kela, {
                "reference": f"Kela ja {county}: toimeentulotuen yhteistyö", "parties": ["kela", county],
                "valid_from": since})
            for pool in (POOL, INTAKE):
                await self.call("setup", "PUT", f"/api/v1/pools/{county}/{pool}", admin, {"reoffers": 1})
        names = [(u, POOL) for us in self.experts.values() for u in us]
        names += [(u, INTAKE) for us in self.intake.values() for u in us]
        await asyncio.gather(*(bounded(self.call("setup", "PUT", f"/api/v1/experts/{u.user_id}",
                                                 self.admins[u.org], {"name": u.user_id, "pools": [pool],
                                                                      "topics": list(TOPICS), "on_duty": True}))
                               for u, pool in names))
        assert self.http is not None
        for user, _pool in names:
            sock = self.sockets[user.user_id] = Socket(user)
            sock.on_offer = lambda frame, user=user: self._offered(user, frame)
            await sock.open(self.http, self.instances[user.instance].base)

    def _offered(self, expert: User, frame: dict[str, Any]) -> None:
        """Two of the experts offered a consultation try to claim it, a moment apart."""
        cid = frame["consultation"]["id"]
        pool = self.intake if frame["consultation"].get("purpose") == "sh.referral" else self.experts
        members = pool[expert.org]
        chosen = random.Random(cid).sample(members, min(CLAIMERS, len(members)))
        if expert in chosen:
            task = asyncio.get_running_loop().create_task(self._claim(expert, cid))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _claim(self, expert: User, cid: str) -> None:
        await asyncio.sleep(self.rng.uniform(0, 0.3))
        if await self.call("claim", "POST", f"/api/v1/consultations/{cid}/claim", expert, race=True) is not None:
            won = self.claim_of(cid)
            if not won.done():
                won.set_result(expert)

    def claim_of(self, cid: str) -> asyncio.Future[User]:
        """Who won the claim of ``cid``: set by the claim, awaited by the advisor (either may come first)."""
        return self.claimed.setdefault(cid, asyncio.get_running_loop().create_future())

    # one advisor's day ---------------------------------------------------------------------------

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.args.think)

    async def advisor(self, slot: int, stop: asyncio.Event) -> None:
        """One desk: advisors take turns at it (a sampled fraction of all advisors is active at once)."""
        assert self.http is not None
        turn = 0
        while not stop.is_set():
            user = self.advisors[(slot + turn * self.args.active) % len(self.advisors)]
            turn += 1
            sock = self.sockets.get(user.user_id)
            if sock is None:
                sock = self.sockets[user.user_id] = Socket(user)
                await sock.open(self.http, self.instances[user.instance].base)
            await self.consultation(user, sock)

    async def new_client(self, advisor: User) -> str | None:
        self.clients += 1
        n = self.clients
        birth = f"{1 + n % 28:02d}{1 + (n // 28) % 12:02d}{50 + (n // 336) % 50:02d}"
        answer = await self.call("client", "POST", "/api/v1/clients", advisor,
                                 {"hetu": hetu(n // 16800, birth=birth)})
        return None if answer is None else str(answer["client_ref"])

    async def consent(self, advisor: User, ref: str, body: dict[str, Any]) -> str | None:
        until = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
        answer = await self.call("consent", "POST", f"/api/v1/clients/{ref}/consents", advisor,
                                 {"method": "written", "valid_until": until, **body})
        if answer is None:
            return None
        self.stats.consents += 1
        return str(answer["id"])

    async def consultation(self, advisor: User, sock: Socket) -> None:
        rng = self.rng
        county = rng.choice(self.counties)
        referral = rng.random() < 0.08
        urgency = "immediate" if referral else pick(URGENCIES, rng)
        body: dict[str, Any] = {"topic": rng.choice(TOPICS), "urgency": urgency, "target_org": county,
                                "question": "Asiakkaan hakemuksen tilanne ja tarvittavat liitteet?",
                                "purpose": "tt.application_intake", "pool": POOL}
        consent: str | None = None
        if referral or rng.random() < 0.7:
            ref = await self.new_client(advisor)
            if ref is None:
                return
            body["client_ref"] = ref
            if referral:
                body.update(purpose="sh.referral", pool=INTAKE, topic="other",
                            question="Asiakas tarvitsee sosiaalihuollon arviota, otatteko yhteyttä?")
                consent = await self.consent(advisor, ref, {
                    "categories": ["service_need.referral"], "recipient_orgs": [county], "purpose": "sh.referral"})
            elif rng.random() < 0.33:
                body["purpose"] = "tt.income_calculation"
                consent = await self.consent(advisor, ref, {
                    "categories": ["income.other"], "disclosing_org": county, "recipient_orgs": ["kela"],
                    "purpose": "tt.income_calculation"})
        created = await self.call("create", "POST", "/api/v1/consultations", advisor, body)
        if created is None:
            return
        cid = created["id"]
        self.stats.consultations += 1
        self.stats.referrals += referral
        self.stats.urgency[urgency] += 1
        members = (self.intake if referral else self.experts)[county]
        if created.get("offered_to") != len(members):
            self.stats.errors["create offered_to"] += 1
        for member in members:
            self.sockets[member.user_id].expected["consultation.offered"].add(cid)
        try:
            expert = await asyncio.wait_for(asyncio.shield(self.claim_of(cid)), 30)
        except TimeoutError:
            self.stats.errors["unclaimed within 30 s"] += 1
            return
        finally:
            self.claimed.pop(cid, None)
        sock.expected["consultation.claimed"].add(cid)
        await self.dialogue(advisor, sock, expert, cid, referral, consent)

    async def dialogue(self, advisor: User, sock: Socket, expert: User, cid: str, referral: bool,
                       consent: str | None) -> None:
        rng = self.rng
        path = f"/api/v1/consultations/{cid}"
        count = rng.randint(5, 20)
        last = ""
        for n in range(count):
            await self.pause()
            sender = advisor if n % 2 == 0 or rng.random() < 0.2 else expert
            body: dict[str, Any] = {"text": rng.choice(LINES)}
            if n == 0 and referral and consent:
                body["data"] = [{"category": "service_need.referral", "value": "Tuen tarve arvioitava.",
                                 "consent_id": consent}]
            elif n == 1 and consent and not referral:
                body = {"text": "Muut tulot alla.", "data": [{"category": "income.other", "value": 1200,
                                                              "consent_id": consent}]}
                sender = expert
            elif rng.random() < 0.25:
                body["data"] = [{"category": "application.status", "value": "käsittelyssä"}]
            answer = await self.call("message", "POST", f"{path}/messages", sender, body)
            if answer is None:
                continue
            self.stats.messages += 1
            self.stats.items += len(body.get("data", []))
            last = answer["id"]
            sock.expected["message.created"].add(last)
            self.sockets[expert.user_id].expected["message.created"].add(last)
            if rng.random() < 0.15:
                reader = rng.choice((advisor, expert))
                await self.call("read thread", "GET", f"{path}/messages?limit=50", reader)
        if last:
            await self.call("read receipt", "POST", f"{path}/read", advisor, {"message_id": last})
        outcome = "referred" if referral else "advice_given"
        await self.call("close", "POST", f"{path}/close", expert, {"outcome": outcome})

    # the end -------------------------------------------------------------------------------------

    async def settle(self, within: float) -> None:
        """Wait until every socket holds what it should, or ``within`` seconds have passed."""
        deadline = time.monotonic() + within
        for sock in self.sockets.values():
            while sock.missing() and not sock.closed_early and time.monotonic() < deadline:
                sock.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sock.changed.wait(), max(0.01, deadline - time.monotonic()))


def _table(title: str, rows: list[tuple[str, ...]]) -> None:
    print(title)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print("  " + "  ".join(cells))


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


async def run(args: argparse.Namespace) -> int:
    name = f"{PG_PREFIX}_national_{uuid.uuid4().hex[:8]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL not reachable at {PG_URL}: {exc}", file=sys.stderr)
        return 3
    db = Database(name)
    instances: list[Instance] = []
    try:
        with tempfile.TemporaryDirectory(prefix="konsulta-national-") as tmp:
            work = Path(tmp)
            policies, config = write_config(work)
            from consult.storage import migrate

            await asyncio.to_thread(migrate.upgrade, db.url)
            instances = [Instance(work, n, db.url, policies, config) for n in ("a", "b", "c")]
            await instances[0].start()  # the first start creates the keys of the empty database
            await asyncio.gather(*(i.start() for i in instances[1:]))
            issuer = DevIssuer(work / "data" / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
            try:
                return await _day(args, db, instances, issuer)
            finally:
                for instance in instances:
                    instance.stop()
                    if args.logs:
                        instance.keep_log(Path(args.logs))
    finally:
        for instance in instances:
            instance.stop()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _day(args: argparse.Namespace, db: Database, instances: list[Instance], issuer: DevIssuer) -> int:
    day = Day(args, instances, issuer)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        day.http = http
        setup_started = time.perf_counter()
        await day.setup()
        setup_seconds = time.perf_counter() - setup_started
        await db.vacuum()
        size_before = await db.sizes()
        counts_before = await db.counts()
        backends = await db.backends()
        cpu_before = {"load generator": own_cpu(), **{f"instance {i.name}": cpu_seconds(i.proc.pid)
                                                       for i in instances if i.proc}}
        pg_before = {pid: cpu_seconds(pid) for pid in backends}
        stop = asyncio.Event()
        vacuum = asyncio.create_task(db.vacuum_every(args.vacuum_every, stop))
        sampler = asyncio.create_task(db.sample_waits(stop))
        started = time.perf_counter()
        desks = [asyncio.create_task(day.advisor(n, stop)) for n in range(args.active)]
        await asyncio.sleep(args.seconds)
        stop.set()
        await asyncio.gather(*desks)  # each desk finishes its consultation
        await asyncio.gather(vacuum, sampler)
        elapsed = time.perf_counter() - started
        await asyncio.gather(*list(day.tasks))
        await day.settle(30)
        cpu_after = {"load generator": own_cpu(), **{f"instance {i.name}": cpu_seconds(i.proc.pid)
                                                      for i in instances if i.proc}}
        pg_cpu = backends_cpu(pg_before)
        for sock in day.sockets.values():
            await sock.close()
    await db.vacuum()
    size_after = await db.sizes()
    counts_after = await db.counts()
    return report(args, day, db, elapsed, setup_seconds, cpu_before, cpu_after, pg_cpu, len(backends),
                  (size_before, size_after), (counts_before, counts_after))


def report(args: argparse.Namespace, day: Day, db: Database, elapsed: float, setup_seconds: float,
           cpu_before: dict[str, float], cpu_after: dict[str, float], pg_cpu: float, backends: int,
           sizes: tuple[dict[str, int], dict[str, int]], counts: tuple[tuple[int, int], tuple[int, int]]) -> int:
    s = day.stats
    experts = sum(len(v) for v in day.experts.values())
    workers = sum(len(v) for v in day.intake.values())
    print(f"national day: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average before "
          f"the report {os.getloadavg()[0]:.1f}; three instances on one PostgreSQL database")
    print(f"population: {len(day.advisors)} Kela advisors, {experts} experts and {workers} intake social workers "
          f"in {len(day.counties)} counties, {len(day.admins)} admins — all signed in once, with tokens "
          f"(set-up {setup_seconds:.1f} s)")
    print(f"simulated: {args.active} advisors at work at once (advisors take turns at {args.active} desks), "
          f"every expert and social worker with a socket ({experts + workers}), {len(day.sockets)} sockets in all, "
          f"spread over the instances; think time {args.think:.2f} s x 0.5-1.5 between acts; {elapsed:.0f} s of "
          f"traffic ({args.seconds:.0f} s of new consultations, then each desk finished its own)")
    print(f"traffic: {s.consultations} consultations ({', '.join(f'{k} {v}' for k, v in sorted(s.urgency.items()))}; "
          f"{s.referrals} 35 § referrals), {s.messages} messages ({s.messages / max(1, s.consultations):.1f} per "
          f"consultation), {s.items} data items, {s.consents} consents, {s.lost_races} claim races lost (409, "
          f"expected)")
    print(f"VACUUM (ANALYZE) ran {len(db.vacuums)} times (autovacuum is off on this server), "
          f"{sum(db.vacuums):.1f} s in all")
    rows: list[tuple[str, ...]] = [("kind", "requests", "p50 ms", "p95 ms", "p99 ms", "per s")]
    total = 0
    for kind, values in sorted(s.latency.items()):
        if kind == "setup":
            continue
        total += len(values)
        rows.append((kind, str(len(values)), f"{statistics.median(values):.1f}", f"{percentile(values, 0.95):.1f}",
                     f"{percentile(values, 0.99):.1f}", f"{len(values) / elapsed:.1f}"))
    rows.append(("all", str(total), "", "", "", f"{total / elapsed:.1f}"))
    _table("requests by kind (setup excluded):", rows)
    for sock in day.sockets.values():
        if sock.unreadable is not None:
            s.errors["frame the script could not read"] += 1
            s.error_samples.append(f"socket of {sock.user.user_id}: {sock.unreadable}")
    errors = sum(s.errors.values())
    print(f"errors: {errors}" + (f" {dict(s.errors)}" if errors else ""))
    for sample in s.error_samples:
        print(f"  {sample}")
    expected = Counter[str]()
    received = Counter[str]()
    for sock in day.sockets.values():
        for kind, want in sock.expected.items():
            expected[kind] += len(want)
            received[kind] += len(want & set(sock.received[kind]))
    lost = sum(sock.missing() for sock in day.sockets.values())
    duplicates = sum(sock.duplicates() for sock in day.sockets.values())
    short = [sock.user.user_id for sock in day.sockets.values() if sock.missing()]
    print("live events, expected vs received over every socket: " + ", ".join(
        f"{kind} {received[kind]}/{expected[kind]}" for kind in sorted(expected))
        + f"; lost {lost} (on {len(short)} sockets), duplicates {duplicates}")
    samples = max(1, db.samples)
    print(f"database backends busy, on average over {db.samples} samples: " + ", ".join(
        f"{kind} {count / samples:.2f}" for kind, count in db.waits.most_common())
        + " (Lock: waiting for a row lock, the audit head's; Client: in a transaction, waiting for the instance; "
        "IO/LWLock: the disk and the WAL; CPU: running)")
    wall = elapsed
    cpu = [(who, cpu_after[who] - cpu_before[who]) for who in cpu_before]
    cpu.append((f"PostgreSQL ({backends} backends of this database)", pg_cpu))
    print("CPU during the traffic: " + ", ".join(f"{who} {sec:.1f} s ({sec / wall:.0%} of a core)" for who, sec in cpu))
    (c0, m0), (c1, m1) = counts
    grown = sum(sizes[1].values()) - sum(sizes[0].values())
    consultations, messages = max(1, c1 - c0), max(1, m1 - m0)
    per_c, per_m = grown / consultations, grown / messages
    top = sorted(((t, sizes[1].get(t, 0) - sizes[0].get(t, 0)) for t in sizes[1]), key=lambda x: -x[1])[:8]
    print(f"database growth: {_mb(grown)} for {c1 - c0} consultations and {m1 - m0} messages: "
          f"{per_c / 1e3:,.1f} kB per consultation with its messages, {per_m / 1e3:,.1f} kB per message "
          f"(the whole growth over either); largest: " + ", ".join(f"{t} {_mb(b)}" for t, b in top))
    live = sizes[1].get("live_events", 0) - sizes[0].get("live_events", 0)
    kept_per_c = (grown - live) / consultations
    day_volume = CONSULTATIONS_PER_ADVISOR_DAY * 2000
    month = day_volume * WORKING_DAYS_PER_MONTH
    print(f"a month nationally, assuming {CONSULTATIONS_PER_ADVISOR_DAY} consultations per advisor per working day, "
          f"2,000 advisors, {WORKING_DAYS_PER_MONTH} working days ({month:,} consultations, this run's mix of "
          f"{s.messages / max(1, s.consultations):.1f} messages each): {kept_per_c * month / 1e9:,.1f} GB a month "
          f"that stays ({kept_per_c / 1e3:,.1f} kB per consultation without live_events); live_events are pruned "
          f"after CONSULT_EVENT_RETENTION_HOURS (24 h), so they level off at about a day's worth, "
          f"{live / consultations * day_volume / 1e9:,.2f} GB")
    ok = errors == 0 and lost == 0 and duplicates == 0 and s.consultations > 0
    print("result: " + ("OK: no errors, no lost or duplicated events" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120, help="seconds of traffic (default 120)")
    parser.add_argument("--active", type=int, default=40, help="advisors at work at once (default 40)")
    parser.add_argument("--advisors", type=int, default=2000, help="Kela advisors in all (default 2000)")
    parser.add_argument("--experts", type=int, default=300, help="county experts in all (default 300)")
    parser.add_argument("--counties", type=int, default=len(COUNTIES), help="counties (default 22)")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between one desk's acts")
    parser.add_argument("--vacuum-every", type=float, default=30, help="seconds between VACUUM (ANALYZE) runs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", help="a directory to copy the instances' logs to")
    parser.add_argument("--quick", action="store_true",
                        help="a ~20 s smoke run at small scale (unless the counts are given)")
    args = parser.parse_args()
    if args.quick:
        given = set(sys.argv)
        for flag, value in (("--seconds", 10.0), ("--active", 4), ("--advisors", 40), ("--experts", 44),
                            ("--counties", 22), ("--think", 0.2), ("--vacuum-every", 5.0)):
            if flag not in given:
                setattr(args, flag[2:].replace("-", "_"), value)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
