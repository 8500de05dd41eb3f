"""Bad input gets a clear 4xx JSON error and writes nothing (docs/capabilities.md: public API, security floor)."""

from __future__ import annotations

import pytest

from consult.http import keys
from consult.storage import audit_log


def _is_error(body, code=None):
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code:
        assert body["error"]["code"] == code, body


async def _counts(api):
    async with api.client.app[keys.DB].read() as conn:
        return await audit_log.count(conn)


async def test_malformed_bodies(api):
    before = await _counts(api)
    headers = {**api.auth("kela.aino"), "Content-Type": "application/json"}
    for raw, status, code in [
        (b"{", 400, "bad_json"),
        (b"[]", 400, "bad_json"),
        (b"\xff\xfe", 400, "bad_json"),
        (b'"text"', 400, "bad_json"),
    ]:
        response = await api.client.post("/api/v1/consultations", data=raw, headers=headers)
        assert response.status == status
        _is_error(await response.json(), code)
    response = await api.client.post("/api/v1/consultations", data=b"topic=x",
                                     headers={**api.auth("kela.aino"), "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 415
    _is_error(await response.json())
    assert await _counts(api) == before


async def test_oversized_body_is_413(api):
    big = {"topic": "other", "urgency": "normal", "question": "x" * (2 * 1024 * 1024), "purpose": "general",
           "target_org": "vantaa"}
    body = await api.call("POST", "/api/v1/consultations", "kela.aino", json=big, expect=413)
    _is_error(body, "too_large")


@pytest.mark.parametrize("field,value", [
    ("topic", "astrology"), ("urgency", "yesterday"), ("purpose", "marketing"), ("target_org", "Vantaa City"),
    ("target_org", "espoo"), ("target_org", "kela"), ("question", ""), ("question", 42), ("question", "a\x00b"),
    ("expert_id", "vantaa.nobody"), ("pool", "nopool"), ("case_ref", "x" * 200),
])
async def test_invalid_consultation_fields_are_422(api, field, value):
    body = {"topic": "other", "urgency": "normal", "question": "q", "purpose": "general", "target_org": "vantaa",
            field: value}
    _is_error(await api.call("POST", "/api/v1/consultations", "kela.aino", json=body, expect=422))


async def test_general_purpose_carries_no_client(api):
    err = await api.call("POST", "/api/v1/consultations", "kela.aino", expect=422, json={
        "topic": "other", "urgency": "normal", "question": "q", "purpose": "general", "target_org": "vantaa",
        "client_ref": "cl_00000000000000000000"})
    _is_error(err, "purpose_binding")


@pytest.mark.parametrize("data,code", [
    ([{"category": "astrology", "value": "x"}], "unknown_category"),
    ([{"category": "application.status"}], "invalid_field"),
    ([{"category": "application.status", "value": ""}], "invalid_field"),
    ([{"category": "application.status", "value": {"a": 1}}], "invalid_field"),
    ([{"category": "application.status", "value": "x", "extra": 1}], "unknown_field"),
    (["not an object"], "invalid_field"),
    ("not a list", "invalid_field"),
    ([{"category": "application.status", "value": "x"}] * 51, "invalid_field"),
])
async def test_invalid_data_items_are_422_and_store_nothing(api, data, code):
    created = await api.open_consultation()
    before = await _counts(api)
    err = await api.call("POST", f"/api/v1/consultations/{created['id']}/messages", "kela.aino",
                         json={"text": "hi", "data": data}, expect=422)
    _is_error(err, code)
    assert await _counts(api) == before
    page = await api.call("GET", f"/api/v1/consultations/{created['id']}/messages", "kela.aino", expect=200)
    assert page["items"] == []


async def test_empty_message_is_422(api):
    created = await api.open_consultation()
    err = await api.call("POST", f"/api/v1/consultations/{created['id']}/messages", "kela.aino",
                         json={"text": "   "}, expect=422)
    _is_error(err, "empty_message")


async def test_unknown_routes_and_methods_are_json(api):
    response = await api.client.get("/api/v1/nothing-here")
    assert response.status == 404
    _is_error(await response.json(), "not_found")
    response = await api.client.delete("/api/v1/consultations", headers=api.auth("kela.aino"))
    assert response.status == 405
    _is_error(await response.json(), "method_not_allowed")


@pytest.mark.parametrize("query", ["cursor=%%%", "cursor=bTox", "limit=0", "limit=1000", "limit=abc", "status=gone"])
async def test_bad_query_is_400(api, query):
    _is_error(await api.call("GET", f"/api/v1/consultations?{query}", "kela.aino", expect=400))


async def test_hostile_path_ids_are_404(api):
    for bad in ["..%2F..%2Fetc", "x" * 300, "%00", "'; DROP TABLE consultations;--"]:
        response = await api.client.get(f"/api/v1/consultations/{bad}", headers=api.auth("kela.aino"))
        assert response.status == 404
        _is_error(await response.json(), "not_found")


async def test_security_headers(api):
    response = await api.client.get("/healthz")
    assert await response.json() == {"status": "ok"}
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # Frames only from the page's own Blobs (a PDF attachment's preview); no plugins, never framed.
    directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";"))
    assert directives["frame-src"] == "blob:" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    me = await api.client.get("/api/v1/me", headers=api.auth("kela.aino"))
    assert me.headers["Cache-Control"] == "no-store"
