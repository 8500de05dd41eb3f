"""The real client behind a reverse proxy: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are
believed only from ``CONSULT_TRUSTED_PROXIES``, so everything after this middleware — the audit
log's source address, the sign-in throttle — sees the client's address, and no client can name
its own.

The client is the rightmost address in ``X-Forwarded-For`` that is not itself a trusted proxy:
each proxy appends the address it was connected from, so entries to the left of the first
untrusted hop are whatever the client chose to send.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from consult.http.middleware import Handler

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def trusts(self, address: str | None) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip.version == n.version and ip in n for n in self.networks)

    def client(self, peer: str | None, forwarded_for: list[str], forwarded_proto: str | None,
               scheme: str) -> tuple[str | None, str]:
        """The client address and scheme, given the connecting peer and the headers it sent."""
        if not self.trusts(peer) or not forwarded_for:
            return peer, scheme
        hops = [h.strip() for value in forwarded_for for h in value.split(",")]
        client, index = peer, len(hops)
        for index in range(len(hops) - 1, -1, -1):
            ip = _ip(hops[index])
            if ip is None:
                break  # garbage from beyond the proxies: the last good hop is the client
            client = str(ip)
            if not self.trusts(client):
                break
        return client, _proto(forwarded_proto, index, len(hops)) or scheme


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _proto(header: str | None, index: int, hops: int) -> str | None:
    """The scheme the client used: the proxies' single value, or the one beside the client's hop."""
    if not header:
        return None
    values = [v.strip().lower() for v in header.split(",")]
    value = values[0] if len(values) == 1 else values[index] if len(values) == hops else None
    return value if value in ("http", "https") else None


def forwarded(proxies: TrustedProxies) -> Middleware:
    @web.middleware
    async def real_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not proxies.networks:
            return await handler(request)
        remote, scheme = proxies.client(request.remote, request.headers.getall("X-Forwarded-For", []),
                                        request.headers.get("X-Forwarded-Proto"), request.scheme)
        if remote is None or (remote == request.remote and scheme == request.scheme):
            return await handler(request)
        return await handler(request.clone(remote=remote, scheme=scheme))

    return real_client
