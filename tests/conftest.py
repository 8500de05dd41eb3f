"""Shared fixtures: the real app on a fresh SQLite file, with the development issuer for tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import os

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import settings as hypothesis_settings

from consult.auth.dev import DEMO_USERS, DevIssuer
from consult.config import Settings
from consult.http import keys
from consult.http.app import create_app

ROOT = Path(__file__).resolve().parent.parent

# Property and fuzz tests (hypothesis, schemathesis) are deterministic: the examples are derived
# from each test, not from a random seed or a saved database, so a failure on one machine is the
# same failure on every machine and every run. HYPOTHESIS_PROFILE=explore searches at random.
hypothesis_settings.register_profile("konsulta", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "konsulta"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'konsulta.db'}",
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
