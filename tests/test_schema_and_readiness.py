"""Schema checked at start, and readiness: a database behind the code's migration head does not
serve (SQLite and PostgreSQL), and ``/readyz`` is 200 only when the database is reachable and
current, the keys match their recorded fingerprints and the policy is loaded."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from consult.crypto import FileKeyring
from consult.errors import ConfigError
from consult.http import keys
from consult.http.app import create_app
from consult.storage import migrate
from tests.conftest import Api
from tests.test_storage import PG_URL, _pg_available

BEHIND = "0005"

# What start-up does to a new or older database is the subject: no copy of the migrated template.
pytestmark = pytest.mark.new_database


async def test_sqlite_database_one_migration_behind_refuses_to_start(aiohttp_client, settings):
    """Property: an existing embedded database is never served (nor silently upgraded) behind head."""
    await asyncio.to_thread(migrate.upgrade, settings.database_url, BEHIND)
    with pytest.raises(ConfigError) as caught:
        await aiohttp_client(create_app(settings))
    assert str(caught.value) == (f"the database is at schema revision {BEHIND}, this version needs "
                                 f"{migrate.head()}: run `consult db upgrade`")
    assert await asyncio.to_thread(migrate.current, settings.database_url) == BEHIND


async def test_new_sqlite_database_gets_its_schema_at_first_start(api):
    """Property: the quick start keeps working: an absent embedded database is created at head."""
    settings = api.client.app[keys.SETTINGS]
    assert await asyncio.to_thread(migrate.current, settings.database_url) == migrate.head()


@pytest.fixture
async def pg_database():
    if not await _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set CONSULT_TEST_PG_URL to run this")
    name = f"konsulta_schema_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()


async def test_postgresql_database_one_migration_behind_refuses_to_start(aiohttp_client, settings, pg_database):
    """Property: a PostgreSQL database behind head does not serve (it used to answer 500s)."""
    await asyncio.to_thread(migrate.upgrade, pg_database, BEHIND)
    with pytest.raises(ConfigError, match=f"schema revision {BEHIND}.*run `consult db upgrade`"):
        await aiohttp_client(create_app(replace(settings, database_url=pg_database)))


async def test_unmigrated_postgresql_database_is_one_line(aiohttp_client, settings, pg_database):
    """Property: an empty PostgreSQL database is a one-line configuration error, not a traceback."""
    with pytest.raises(ConfigError) as caught:
        await aiohttp_client(create_app(replace(settings, database_url=pg_database)))
    assert str(caught.value) == f"the database has no schema, this version needs {migrate.head()}: " \
                                "run `consult db upgrade`"


async def test_postgresql_at_head_serves_and_is_ready(aiohttp_client, settings, pg_database):
    await asyncio.to_thread(migrate.upgrade, pg_database)
    api = Api(await aiohttp_client(create_app(replace(settings, database_url=pg_database))))
    assert await api.call("GET", "/readyz", expect=200) == {"status": "ready"}


async def test_readyz_is_ready_when_everything_holds(api):
    assert await api.call("GET", "/readyz", expect=200) == {"status": "ready"}
    assert await api.call("GET", "/healthz", expect=200) == {"status": "ok"}


async def test_readyz_names_a_schema_that_moved_behind_head(api):
    """Property: readiness fails, naming the schema, when the database is no longer at head."""
    db = api.client.app[keys.DB]

    async def behind(conn):
        await conn.execute(text(f"UPDATE alembic_version SET version_num = '{BEHIND}'"))

    await db.write(behind)
    body = await api.call("GET", "/readyz", expect=503)
    assert body == {"status": "not_ready", "failed": ["schema"],
                    "checks": {"database": "ok", "schema": "failed", "keys": "ok", "policy": "ok", "identity": "ok"}}
    assert await api.call("GET", "/healthz", expect=200) == {"status": "ok"}  # liveness is not readiness


async def test_readyz_names_keys_that_no_longer_match(api, settings, tmp_path):
    """Property: a key file replaced under a running server makes it not ready (and says which check)."""
    other = tmp_path / "other" / "keys.json"
    other.parent.mkdir()
    FileKeyring.open(other, create=True)
    shutil.copy2(other, settings.key_file)
    body = await api.call("GET", "/readyz", expect=503)
    assert body["failed"] == ["keys"] and body["checks"]["database"] == "ok"
    assert str(settings.key_file) not in str(body)


async def test_readyz_names_a_database_that_lost_its_schema(api):
    """Property: a database without its revision makes the instance not ready, with a 503 not a 500."""
    db = api.client.app[keys.DB]

    async def drop(conn):
        await conn.execute(text("DROP TABLE alembic_version"))

    await db.write(drop)
    body = await api.call("GET", "/readyz", expect=503)
    assert body["failed"] == ["schema"]


async def test_readyz_names_an_unreachable_database(aiohttp_client, settings, pg_database):
    """Property: when the database refuses connections the instance is not ready, naming the database."""
    await asyncio.to_thread(migrate.upgrade, pg_database)
    api = Api(await aiohttp_client(create_app(replace(settings, database_url=pg_database))))
    await api.call("GET", "/readyz", expect=200)
    name = pg_database.rsplit("/", 1)[1]
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            await conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        body = await api.call("GET", "/readyz", expect=503)
        assert body == {"status": "not_ready", "failed": ["database"],
                        "checks": {"database": "failed", "schema": "skipped", "keys": "skipped", "policy": "ok", "identity": "ok"}}
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        await api.call("GET", "/readyz", expect=200)
    finally:
        await admin.dispose()


async def test_readyz_is_in_the_openapi_document_with_its_503(api):
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    responses = document["paths"]["/readyz"]["get"]["responses"]
    assert set(responses) == {"200", "503"}
