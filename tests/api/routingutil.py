"""Helpers for routing tests: the real app with a controllable clock and no background ticks,
so a test advances the clock and runs the routing step itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from consult.http import app as app_module
from consult.http import keys
from consult.http.app import create_app
from consult.model import FixedClock
from tests.conftest import Api

# Monday 2 March 2026, 09:00 in Helsinki (UTC+2): an ordinary working day.
MONDAY_9 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


class RoutedApi(Api):
    def __init__(self, client: Any, clock: FixedClock) -> None:
        super().__init__(client)
        self.clock = clock

    @property
    def app(self) -> Any:
        return self.client.app

    async def tick(self) -> dict[str, int]:
        return await self.app[keys.ROUTING].tick()

    async def advance(self, **delta: float) -> dict[str, int]:
        self.clock.advance(**delta)
        return await self.tick()


async def routed_api(aiohttp_client: Any, settings: Any, monkeypatch: Any, at: datetime = MONDAY_9) -> RoutedApi:
    monkeypatch.setattr(app_module, "ROUTING_TICK_SECONDS", 3600.0)
    clock = FixedClock(at)
    client = await aiohttp_client(create_app(settings, clock=clock))
    return RoutedApi(client, clock)
