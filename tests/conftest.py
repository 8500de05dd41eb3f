"""Shared fixtures: the real app on a fresh SQLite file, with the development issuer for tokens.

The SQLite file starts as a copy of one database migrated to the code's head once per session
(per xdist worker), instead of migrating a new file for every test; a test about what happens to a
new or older database is marked ``new_database`` and starts from no file at all. PostgreSQL tests
that are not about migrations likewise get a database created from a migrated template
(``pg_migrated``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import settings as hypothesis_settings

from consult.auth.dev import DEMO_USERS, DevIssuer
from consult.config import Settings
from consult.http import keys
from consult.http.app import create_app
from consult.storage import migrate

PG_URL = os.environ.get("CONSULT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
#: The start of the name of every database the tests create there (and drop again): several
#: checkouts sharing one server can each set their own.
PG_PREFIX = os.environ.get("CONSULT_TEST_PG_PREFIX", "konsulta")

ROOT = Path(__file__).resolve().parent.parent

# Property and fuzz tests (hypothesis, schemathesis) are deterministic: the examples are derived
# from each test, not from a random seed or a saved database, so a failure on one machine is the
# same failure on every machine and every run. KONSULTA_HYPOTHESIS_PROFILE picks the profile:
# `konsulta` (the everyday run), `thorough` (the same seeded search with many more examples per
# property, for a nightly or manual run; see `examples`), or `explore` (searches at random; also
# `--hypothesis-profile=explore`). HYPOTHESIS_PROFILE is read when the first is not set.
HYPOTHESIS_PROFILE = os.environ.get("KONSULTA_HYPOTHESIS_PROFILE") or os.environ.get("HYPOTHESIS_PROFILE", "konsulta")
hypothesis_settings.register_profile("konsulta", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("thorough", derandomize=True, database=None, print_blob=True,
                                     max_examples=1000)
hypothesis_settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


def examples(everyday: int, thorough: int) -> int:
    """A property's number of examples: ``thorough`` under the thorough profile, else ``everyday``."""
    return thorough if HYPOTHESIS_PROFILE == "thorough" else everyday


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "new_database: the `settings` database file does not exist yet (no copy of the migrated "
        "template): for tests of what start-up, `db upgrade` or `init` do to a new or older database")


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file at the migration head, migrated once per session the way a new database is."""
    path = tmp_path_factory.mktemp("migrated") / "konsulta.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the migrated template is not one self-contained file: {leftovers}"
    return path


async def _pg_admin(statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


def _pg_url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session (per xdist worker), the template of
    ``pg_migrated``; skips, saying so, when no server is reachable."""
    name = f"{PG_PREFIX}_template_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set CONSULT_TEST_PG_URL to run this")
    try:
        migrate.upgrade(_pg_url(name))  # every connection to it is closed again: CREATE ... TEMPLATE needs that
        yield name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_migrated(pg_template: str) -> AsyncIterator[str]:
    """The URL of a new PostgreSQL database at head, a copy of the migrated template, dropped afterwards."""
    name = f"{PG_PREFIX}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield _pg_url(name)
    finally:
        await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    database = tmp_path / "konsulta.db"
    if request.node.get_closest_marker("new_database") is None:
        # A plain copy: the file gets this process's default mode, so a test that relies on the
        # service creating the file (owner-only) is found failing and marked new_database.
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), database)
    return Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        key_file=tmp_path / "keys.json",
        policy_dir=ROOT / "policies",
        data_dir=tmp_path,
        dev=True,
        demo=True,
        ws_auth_timeout=2.0,
    )


class Api:
    """A thin client over the real app: tokens for demo users and JSON helpers."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.issuer: DevIssuer = client.app[keys.DEV_ISSUER]

    def token(self, user_id: str) -> str:
        user = next(u for u in DEMO_USERS if u.user_id == user_id)
        return self.issuer.mint_for(user)

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    async def call(self, method: str, path: str, user: str | None = None, json: Any = None,
                   expect: int | None = None, **kwargs: Any) -> Any:
        headers = self.auth(user) if user else {}
        headers.update(kwargs.pop("headers", {}))
        response = await self.client.request(method, path, json=json, headers=headers, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        if expect is not None:
            assert response.status == expect, (response.status, body)
        return body

    async def register(self, hetu: str, user: str = "kela.aino") -> str:
        body = await self.call("POST", "/api/v1/clients", user, json={"hetu": hetu})
        return body["client_ref"]

    async def open_consultation(self, user: str = "kela.aino", **fields: Any) -> dict[str, Any]:
        payload = {
            "topic": "application_intake",
            "urgency": "immediate",
            "question": "Does the client need to resubmit the rent attachment?",
            "purpose": "tt.application_intake",
            "target_org": "vantaa",
            **fields,
        }
        return await self.call("POST", "/api/v1/consultations", user, json=payload, expect=201)


@pytest.fixture
async def api(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> Api:
    client = await aiohttp_client(create_app(settings))
    return Api(client)
