"""Where a request came from, carried into every audit record."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    source: str | None = None


SYSTEM_CONTEXT = RequestContext(request_id="system")
