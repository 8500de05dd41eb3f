"""An optional witness: each checkpoint the file keeps is also POSTed (``text/plain``, the signed
note as it is) to ``CONSULT_WITNESS_URL``, a service run by someone else who keeps the newest
one, so that a rollback of both the database and the checkpoint file still shows.

Offering a checkpoint never waits on the witness: one POST runs at a time in the background, only
the newest checkpoint is ever sent, and a failure is logged (size and reason, nothing else) and
retried with the next checkpoint.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

log = logging.getLogger("consult.audit")

TIMEOUT_SECONDS = 10.0


class Witness:
    def __init__(self, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._pending: tuple[str, int] | None = None  # the newest note not yet accepted
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.accepted = 0  # the size of the newest checkpoint the witness took
        self.failures = 0

    def __repr__(self) -> str:
        return "Witness()"  # the URL may carry a token: never printed

    def submit(self, note: str, size: int) -> None:
        """Offer the checkpoint ``note`` of ``size`` (returns at once)."""
        if self._pending is None or size >= self._pending[1]:
            self._pending = (note, size)
        self.retry()

    def retry(self) -> None:
        """Send what is pending unless a send is under way (a timer tick calls this)."""
        if self._pending is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._send())

    @property
    def pending(self) -> bool:
        return self._pending is not None

    async def _send(self) -> None:
        while self._pending is not None:
            note, size = self._pending
            reason = await self._post(note)
            if reason is not None:
                self.failures += 1
                log.warning("witness did not take audit checkpoint %d (%s); retried with the next checkpoint",
                            size, reason)
                return
            self.accepted = max(self.accepted, size)
            if self._pending is not None and self._pending[1] <= size:
                self._pending = None

    async def _post(self, note: str) -> str | None:
        """None once the witness answered 2xx, else a short reason without the URL or the note."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.url, data=note.encode("utf-8"),
                                          headers={"Content-Type": "text/plain; charset=utf-8"}) as response:
                await response.read()
                return None if 200 <= response.status < 300 else f"status {response.status}"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return type(exc).__name__

    async def close(self, *, wait: float = 5.0) -> None:
        """Give a send under way (the last checkpoint at shutdown) ``wait`` seconds, then stop."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), wait)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                await asyncio.wait([self._task])  # stopped, not merely asked to stop
        if self._session is not None:
            await self._session.close()
