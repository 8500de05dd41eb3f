"""Edge middleware: request ids, JSON errors, security headers and an id-only access log."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from consult.errors import ApiError, MethodNotAllowed, NotFound, PayloadTooLarge

log = logging.getLogger("consult.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
USER_ID = web.RequestKey("user_id", str)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

#: ``frame-src blob:`` is for the inline preview of a PDF attachment only: the app frames a Blob it
#: made itself (typed application/pdf after checking its signature) and no other source; plugins
#: stay off (``object-src 'none'``) and nothing may frame the app (``frame-ancestors 'none'``).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-src blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
#: The app's own policy when it differs from ``CSP``: the browser's OpenID Connect code flow
#: must also reach the identity provider (discovery and token endpoint), and nothing else.
CSP_KEY = web.AppKey("content_security_policy", str)
#: Request counts and latencies by route template (consult/http/metrics.py), when wired.
METRICS_KEY: web.AppKey[Any] = web.AppKey("metrics")


def content_security_policy(connect_urls: tuple[str, ...] = ()) -> str:
    """``CSP`` with ``connect-src`` widened to the origins of ``connect_urls`` only."""
    origins = []
    for url in connect_urls:
        parts = urlsplit(url)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    if not origins:
        return CSP
    return CSP.replace("connect-src 'self'", "connect-src 'self' " + " ".join(dict.fromkeys(origins)))


SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def error_response(err: ApiError, request_id: str | None = None) -> web.Response:
    response = web.json_response(err.body(), status=err.status)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="konsulta"'
    return response


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as err:
        response = error_response(err, request_id)
    except web.HTTPException as exc:
        response = _from_http_exception(exc, request_id)
    except Exception:
        log.exception("unhandled error request_id=%s route=%s", request_id, _route(request))
        response = error_response(ApiError(), request_id)
    if not response.prepared:
        if CSP_KEY in request.app:
            response.headers.setdefault("Content-Security-Policy", request.app[CSP_KEY])
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("X-Request-ID", request_id)
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
    elapsed = time.perf_counter() - started
    route, user = _route(request), request.get(USER_ID, "-")
    metrics = request.app.get(METRICS_KEY)
    if metrics is not None:
        metrics.request(request.method, route, response.status, elapsed)
    log.info(
        "request id=%s method=%s route=%s status=%s user=%s ms=%.1f",
        request_id, request.method, route, response.status, user, elapsed * 1000,
        extra={"request_id": request_id, "method": request.method, "route": route, "status": response.status,
               "user_id": user, "ms": round(elapsed * 1000, 1)},
    )
    return response


def _from_http_exception(exc: web.HTTPException, request_id: str) -> web.StreamResponse:
    if exc.status == 404:
        return error_response(NotFound(), request_id)
    if exc.status == 405:
        return error_response(MethodNotAllowed(), request_id)
    if exc.status == 413:
        return error_response(PayloadTooLarge(), request_id)
    if 300 <= exc.status < 400:
        return exc  # redirects (e.g. static index) pass through
    if 400 <= exc.status < 500:
        err = ApiError(exc.reason or "Bad request.", code="bad_request")
        err.status = exc.status
        return error_response(err, request_id)
    log.error("http exception status=%s request_id=%s", exc.status, request_id)
    return error_response(ApiError(), request_id)


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource if request.match_info.route else None
    return info.canonical if info is not None else "-"
