"""Readiness (``GET /readyz``): 200 only when this instance can serve correctly — the database is
reachable and at the code's schema head, the keys still match the fingerprints it recorded, and
the policy is loaded. ``/healthz`` stays a liveness check."""

from __future__ import annotations

from aiohttp import web

from consult.http import keys
from consult.http import schemas as s
from consult.http.route import Route
from consult.services.deployment import readiness


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks = await readiness(app[keys.DB], app[keys.BOUND_KEYS], app[keys.KEY_FILES],
                             policy_loaded=keys.POLICY in app)
    # An identity provider whose keys this instance has never had (unreachable since start-up and
    # none kept on disk): its users cannot sign in here, so the instance is not ready.
    checks["identity"] = "failed" if app[keys.VERIFIER].issuers_without_keys() else "ok"
    failed = [name for name, outcome in checks.items() if outcome != "ok"]
    if not failed:
        return web.json_response({"status": "ready"})
    failed = [name for name, outcome in checks.items() if outcome == "failed"]
    return web.json_response({"status": "not_ready", "failed": failed, "checks": checks}, status=503)


READY_ROUTES: tuple[Route, ...] = (
    Route("GET", "/readyz", readyz,
          "Readiness: database reachable and current, keys match, policy loaded, every identity provider's keys known",
          who="anyone", auth=False, response=s.Ready, errors=(),
          other_responses=((503, "Not ready; names the check that failed", s.NotReady),)),
)
