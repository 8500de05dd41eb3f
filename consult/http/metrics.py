"""Operational metrics in the Prometheus text format (``GET /metrics``), never public by default.

``/metrics`` exists only when ``CONSULT_METRICS_TOKEN`` is set and answers only a request that
bears that secret (``Authorization: Bearer …``); anything else gets the same 404 as an unknown
path. Labels carry route templates, methods, status codes, event types and policy effects —
never a raw path, a user id, a client reference or any text.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from consult.errors import NotFound
from consult.policy.engine import PolicyEngine
from consult.policy.model import Decision, ItemRequest
from consult.policy.rules import Policy

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    """The service's metrics in a registry of their own (one per app, so tests never share)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("konsulta_http_requests", "HTTP requests by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("konsulta_http_request_duration_seconds", "HTTP request time by route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.events = Counter("konsulta_ws_events_delivered", "Live events written to WebSocket connections",
                              ["type"], registry=self.registry)
        self.decisions = Counter("konsulta_policy_decisions", "Policy decisions by effect (permit, deny, redact)",
                                 ["effect"], registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.db_time = Histogram("konsulta_db_statement_duration_seconds", "Time of each database statement",
                                 buckets=DB_BUCKETS, registry=self.registry)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        # A client may send any method token: only the standard ones become a label value.
        key = (method if method in METHODS else "OTHER", route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(key[0], route, str(status)),
                                               self.latency.labels(key[0], route))
        children[0].inc()
        children[1].observe(seconds)

    def event_delivered(self, kind: str) -> None:
        self.events.labels(kind).inc()

    def decision(self, decision: Decision) -> None:
        self.decisions.labels(decision.effect).inc()

    def statement(self, seconds: float) -> None:
        self.db_time.observe(seconds)

    def gauges(self, read: Callable[[], dict[str, tuple[str, float]]]) -> None:
        """Values read at each scrape: name -> (help, value)."""
        self.registry.register(_Gauges(read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Gauges(Collector):
    def __init__(self, read: Callable[[], dict[str, tuple[str, float]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (text, value) in self._read().items():
            family = GaugeMetricFamily(name, text)
            family.add_metric([], value)
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class CountedPolicyEngine(PolicyEngine):
    """The policy engine, counting every decision it hands out by effect; deciding stays pure."""

    def __init__(self, policy: Policy, metrics: Metrics) -> None:
        super().__init__(policy)
        self._metrics = metrics

    def decide(self, req: ItemRequest) -> Decision:
        decision = super().decide(req)
        self._metrics.decision(decision)
        return decision

    def decide_identifier(self, *args: Any, **kwargs: Any) -> Decision:
        decision = super().decide_identifier(*args, **kwargs)
        self._metrics.decision(decision)
        return decision


def handler(token: str, metrics: Metrics, before: Callable[[], Awaitable[None]]):  # type: ignore[no-untyped-def]
    """``GET /metrics`` behind the bearer secret ``token``."""
    expected = f"Bearer {token}".encode()

    async def serve(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise NotFound()
        await before()
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve

