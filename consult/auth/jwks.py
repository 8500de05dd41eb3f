"""The trusted issuers' signing keys, kept current: each JWKS is fetched at start-up, again every
``CONSULT_JWKS_REFRESH_MINUTES`` (so a key the provider removed stops being trusted), and at once
— at most once a minute per issuer — when a token names a key not yet known (a provider's new
key works without waiting for the refresh).

The last good JWKS of each provider is kept in the data directory, so the service starts while a
provider is unreachable: the outage is one log line, not a traceback. A JWKS comes only over
https:// (plain http:// only from this host, checked in ``consult.config``), without redirects.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from consult.auth.tokens import Session, TokenVerifier, TrustedKey, UnknownKey, load_jwks_file, parse_jwks
from consult.model import Principal

log = logging.getLogger("consult.auth")

#: A token with an unknown key fetches its issuer's JWKS again at most this often.
REFETCH_MIN_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 10.0
MAX_JWKS_BYTES = 1024 * 1024


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or read; the message names why, never its content."""


@dataclass(frozen=True)
class KeySource:
    """Where one issuer's keys come from: a URL (cached on disk) or a file."""

    issuer: str
    location: str
    cache_dir: Path

    @property
    def is_url(self) -> bool:
        return "://" in self.location

    @property
    def cache_file(self) -> Path:
        digest = hashlib.sha256(f"{self.issuer}\n{self.location}".encode()).hexdigest()[:24]
        return self.cache_dir / f"jwks-{digest}.json"

    async def fetch(self) -> list[TrustedKey]:
        if not self.is_url:
            try:
                return await asyncio.to_thread(load_jwks_file, Path(self.location))
            except ValueError as exc:
                raise JwksUnavailable(str(exc)) from None
        try:
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
            async with (aiohttp.ClientSession(timeout=timeout) as session,
                        session.get(self.location, allow_redirects=False,
                                    headers={"Accept": "application/json"}) as response):
                if response.status != 200:
                    raise JwksUnavailable(f"answered {response.status}")
                body = await response.content.read(MAX_JWKS_BYTES + 1)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise JwksUnavailable(f"unreachable ({type(exc).__name__})") from None
        if len(body) > MAX_JWKS_BYTES:
            raise JwksUnavailable("answered more than 1 MB")
        try:
            document = json.loads(body)
            keys = parse_jwks(document)
        except ValueError:
            raise JwksUnavailable("answered something that is not a JWKS") from None
        await asyncio.to_thread(self._save, document)
        return keys

    def _save(self, document: dict[str, Any]) -> None:
        """Keep the public keys (only) as the last good JWKS, written whole or not at all."""
        public = {"keys": [key.jwk for key in parse_jwks(document)]}
        record = {"issuer": self.issuer, "jwks": self.location, "fetched_at": int(time.time()), "keys": public}
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            partial = self.cache_file.with_suffix(".tmp")
            partial.write_text(json.dumps(record))
            os.replace(partial, self.cache_file)
        except OSError as exc:
            log.warning("cannot keep the JWKS of issuer=%s in %s: %s", self.issuer, self.cache_dir, exc.strerror)

    def cached(self) -> tuple[list[TrustedKey], int] | None:
        """The last good keys and when they were fetched, if this host kept them."""
        try:
            record = json.loads(self.cache_file.read_text())
            if record.get("issuer") != self.issuer or record.get("jwks") != self.location:
                return None
            return parse_jwks(record["keys"]), int(record["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


class IdentityProviders:
    """The verifier's keys, refreshed from their sources; ``verify`` is the one way in."""

    def __init__(self, verifier: TokenVerifier, sources: list[KeySource], *, refresh_seconds: float,
                 refetch_min_seconds: float = REFETCH_MIN_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.verifier = verifier
        self.sources = {s.issuer: s for s in sources}
        self.refresh_seconds = refresh_seconds
        self.refetch_min_seconds = refetch_min_seconds
        self.clock = clock
        self._last_refetch: dict[str, float] = {}
        self._locks = {name: asyncio.Lock() for name in self.sources}

    async def load(self) -> None:
        """Every issuer's keys at start-up: fetched, else the last good ones kept on disk. A file
        that cannot be read stops start-up (``JwksUnavailable``); an unreachable provider does not."""
        for source in self.sources.values():
            try:
                self.verifier.set_keys(source.issuer, await source.fetch())
                continue
            except JwksUnavailable as exc:
                if not source.is_url:
                    raise
                reason = str(exc)
            kept = await asyncio.to_thread(source.cached)
            if kept is not None:
                keys, fetched_at = kept
                self.verifier.set_keys(source.issuer, keys)
                log.warning("identity provider issuer=%s JWKS %s: using its %d keys kept at %s "
                            "(fetched again every %d min)", source.issuer, reason, len(keys),
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fetched_at)),
                            int(self.refresh_seconds // 60))
            else:
                log.error("identity provider issuer=%s JWKS %s and no keys are kept on this host: its "
                          "tokens are refused until it answers (tried again for a token at most once a "
                          "minute, and every %d min)", source.issuer, reason, int(self.refresh_seconds // 60))

    async def verify(self, token: str) -> Principal:
        """The token's principal, or ``AuthError``. A key not yet known fetches its issuer's
        JWKS once (rate-limited) before the token is refused."""
        return (await self.verify_session(token)).principal

    async def verify_session(self, token: str) -> Session:
        """``verify``, with when the token was issued and when it runs out."""
        try:
            return self.verifier.verify_session(token)
        except UnknownKey as exc:
            if exc.issuer is None or not await self.refetch(exc.issuer):
                raise
        return self.verifier.verify_session(token)

    async def refetch(self, issuer: str) -> bool:
        """Fetch one issuer's keys now, for a token naming a key not known, unless such a fetch
        was made within ``refetch_min_seconds``; True if fresh keys were fetched."""
        source = self.sources.get(issuer)
        if source is None:
            return False
        async with self._locks[issuer]:
            last = self._last_refetch.get(issuer)
            if last is not None and self.clock() - last < self.refetch_min_seconds:
                return False
            self._last_refetch[issuer] = self.clock()
            return await self._refresh(source)

    async def _refresh(self, source: KeySource) -> bool:
        try:
            keys = await source.fetch()
        except JwksUnavailable as exc:
            # The keys we have stay trusted: the provider may be briefly down.
            log.warning("identity provider issuer=%s JWKS %s; keeping its current keys", source.issuer, exc)
            return False
        if self.verifier.set_keys(source.issuer, keys):
            log.info("identity provider issuer=%s keys now kid=%s", source.issuer,
                     ",".join(str(kid) for kid in self.verifier.key_ids(source.issuer)))
        return True

    async def refresh_all(self) -> None:
        for source in self.sources.values():
            async with self._locks[source.issuer]:
                await self._refresh(source)
