"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

import re


def _normalise(path: str) -> str:
    return re.sub(r"{[^}]+}", "{}", path)


async def test_openapi_matches_routes(api):
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    assert document["openapi"].startswith("3.")
    documented = {(m.upper(), _normalise(p)) for p, ops in document["paths"].items() for m in ops}
    served = set()
    for route in api.client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method == "HEAD" or path.startswith("/static") or path == "/":
            continue
        served.add((route.method, _normalise(path)))
    assert documented == served


async def test_spec_paths_are_all_present(api):
    """The public API's paths (docs/capabilities.md) keep their names."""
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    for path in ["/healthz", "/api/v1/openapi.json", "/api/v1/me", "/api/v1/experts", "/api/v1/experts/{user_id}",
                 "/api/v1/consultations", "/api/v1/consultations/{id}", "/api/v1/consultations/{id}/claim",
                 "/api/v1/consultations/{id}/participants", "/api/v1/consultations/{id}/close",
                 "/api/v1/consultations/{id}/messages", "/api/v1/ws"]:
        assert path in document["paths"], path
