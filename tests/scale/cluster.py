"""Several real `consult serve --demo` processes on one PostgreSQL database, optionally behind
Debian's nginx (tests/test_deploy_nginx.py's ``Nginx``, its upstream listing every instance): for
tests of what several instances do together — presence, leases, a SIGKILL mid-traffic, live
events crossing instances and clients resuming on another after a SIGKILL.

Every instance shares one data directory (the key files, the audit checkpoint file and the
development issuer's key, as README "Several instances" asks), and has its own working
directory for its log (``<name>/server.log``), its own port and its own ``CONSULT_INSTANCE_ID``.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from consult.auth.dev import DEMO_USERS, DevIssuer
from tests.serverproc import ServerProcess
from tests.test_deploy_nginx import CLIENT, PROXY, Nginx
from tests.test_deploy_nginx import _nginx as nginx_binary


class Instance(ServerProcess):
    """One `consult serve` of the cluster: its own directory and port, the shared data directory."""

    def __init__(self, root: Path, name: str, database_url: str, **env: str) -> None:
        own = root / name
        own.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.data = root / "data"
        super().__init__(own, **{
            "CONSULT_DATA_DIR": str(self.data), "CONSULT_KEY_FILE": str(self.data / "keys.json"),
            "CONSULT_DATABASE_URL": database_url, "CONSULT_INSTANCE_ID": name,
            "CONSULT_TRUSTED_PROXIES": f"{PROXY}/32", **env})

    def token(self, user_id: str) -> str:
        issuer = DevIssuer(self.data / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
        return issuer.mint_for(next(u for u in DEMO_USERS if u.user_id == user_id))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        path = self.tmp / "server.log"
        return path.read_text()[-4000:] if path.exists() else ""


class Cluster:
    """``names`` instances on ``database_url``; the first starts alone (it creates the keys of an
    empty database), the others after it."""

    def __init__(self, root: Path, database_url: str, names: Sequence[str] = ("a", "b", "c"), **env: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        self.root = root
        self.database_url = database_url
        self.instances = [Instance(root, name, database_url, **env) for name in names]

    def start(self) -> Cluster:
        first, *rest = self.instances
        first.start()
        for instance in rest:
            instance.start()
        return self

    def stop(self) -> None:
        """SIGTERM to every instance still running (each shuts down cleanly)."""
        for instance in self.instances:
            instance.stop()

    def __getitem__(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    @property
    def alive(self) -> list[Instance]:
        return [i for i in self.instances if i.alive]

    @property
    def ports(self) -> list[int]:
        return [i.port for i in self.instances]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A `consult` command with the cluster's settings (those of its first instance)."""
        first = self.instances[0]
        return subprocess.run([sys.executable, "-m", "consult", *args], cwd=first.tmp, env=first.env,
                              capture_output=True, text=True, timeout=timeout)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        """Rows of one statement on the cluster's database, on a connection of its own (in a thread
        of its own, so it may be called from a running event loop too)."""
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        async def run() -> list[Any]:
            engine = create_async_engine(self.database_url)
            try:
                async with engine.connect() as conn:
                    return list((await conn.execute(text(statement), params)).all())
            finally:
                await engine.dispose()

        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(asyncio.run, run()).result()

    def lease_holder(self, job: str) -> str | None:
        """The instance holding the lease of ``job`` now (by the database's clock), if any."""
        rows = self.sql("SELECT holder FROM job_leases WHERE name = :name AND expires_at > now()", name=job)
        return str(rows[0][0]) if rows else None


@contextmanager
def cluster_behind_nginx(root: Path, database_url: str, names: Sequence[str] = ("a", "b", "c"),
                         **env: str) -> Iterator[tuple[Cluster, Nginx]]:
    """A started cluster and nginx in front of all of it; both stopped on leaving."""
    binary = nginx_binary()
    cluster = Cluster(root, database_url, names, **env)
    try:
        cluster.start()
        proxy = Nginx(binary, cluster.ports)
        try:
            yield cluster, proxy.start()
        finally:
            proxy.stop()
    finally:
        cluster.stop()


def wait_for(check: Any, timeout: float, what: str) -> None:
    """Poll ``check()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


def edge_session(edge: Nginx) -> aiohttp.ClientSession:
    """An HTTPS client of ``edge`` that trusts its certificate, from the address nginx admits."""
    tls = ssl.create_default_context(cafile=str(edge.cert))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, local_addr=(CLIENT, 0)))


def all_message_ids(instance: Instance, cid: str) -> set[str]:
    """Every message id of consultation ``cid`` readable through ``instance``, page by page."""
    found: set[str] = set()
    cursor = ""
    while True:
        status, page = instance.call("GET", f"/api/v1/consultations/{cid}/messages?limit=200{cursor}", "kela.aino")
        assert status == 200, page
        found |= {m["id"] for m in page["items"]}
        if not page["next"]:
            return found
        cursor = f"&cursor={page['next']}"
