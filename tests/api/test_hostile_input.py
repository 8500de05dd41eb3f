"""Hostile input at the edge gets a 4xx JSON error, never a 500, and writes nothing
(docs/capabilities.md: public API, security floor).

Each case was an unhandled error before: a body nested too deep for the JSON parser, a lone
UTF-16 surrogate that cannot be encoded, a non-ASCII digit in an integer parameter, a cursor
with a number SQLite cannot hold, a time that cannot be represented in UTC, and a month range
at the end of the calendar.
"""

from __future__ import annotations

import base64
import logging

import pytest
from sqlalchemy import func, select

from consult.http import keys
from consult.storage import audit_log, tables
from tests.api.wsutil import connect, next_event
from tests.synthetic import hetu

DEEP = 30_000
WS_DEEP = 5_000  # within the WebSocket's 16 KiB frame limit, far beyond the parser's recursion limit
SURROGATE = '"\\ud800"'  # the JSON escape of a lone high surrogate, as a client sends it


def _is_error(body: object) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) >= {"code", "message"}, body


async def _state(api) -> tuple[int, int, int]:
    async with api.client.app[keys.DB].read() as conn:
        consultations = (await conn.execute(select(func.count()).select_from(tables.consultations))).scalar_one()
        messages = (await conn.execute(select(func.count()).select_from(tables.messages))).scalar_one()
        return consultations, messages, await audit_log.count(conn)


async def _send_raw(api, method: str, path: str, user: str, raw: str) -> tuple[int, object]:
    headers = {**api.auth(user), "Content-Type": "application/json"}
    response = await api.client.request(method, path, data=raw.encode(), headers=headers)
    assert response.content_type == "application/json", (response.status, await response.text())
    return response.status, await response.json()


def _no_unhandled_error(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


@pytest.mark.parametrize("shape", ["array", "object"])
async def test_a_body_nested_thirty_thousand_deep_is_400(api, caplog, shape):
    """Resource exhaustion at the edge: nesting is refused before it reaches the recursion limit."""
    before = await _state(api)
    nested = "[" * DEEP + "]" * DEEP if shape == "array" else '{"a":' * DEEP + "1" + "}" * DEEP
    status, body = await _send_raw(api, "POST", "/api/v1/consultations", "kela.aino",
                                   '{"topic": "other", "question": ' + nested + "}")
    assert status == 400, body
    _is_error(body)
    assert await _state(api) == before
    _no_unhandled_error(caplog)


async def test_moderate_nesting_is_still_a_field_error_not_a_parse_error(api):
    """The depth limit leaves room for every body the API describes."""
    status, body = await _send_raw(api, "POST", "/api/v1/consultations", "kela.aino",
                                   '{"question": ' + "[" * 10 + "]" * 10 + "}")
    assert status == 422, body


async def test_a_lone_surrogate_in_a_question_is_400_and_nothing_is_stored(api, caplog):
    before = await _state(api)
    raw = ('{"topic": "application_intake", "urgency": "immediate", "purpose": "tt.application_intake", '
           '"target_org": "vantaa", "question": ' + SURROGATE + "}")
    status, body = await _send_raw(api, "POST", "/api/v1/consultations", "kela.aino", raw)
    assert status == 400, body
    _is_error(body)
    assert await _state(api) == before
    _no_unhandled_error(caplog)


async def test_a_lone_surrogate_in_a_case_reference_or_a_key_is_400(api, caplog):
    before = await _state(api)
    for field in ('"case_ref": ' + SURROGATE, '"question": "Kysymys?", ' + SURROGATE + ': 1'):
        raw = ('{"topic": "application_intake", "urgency": "immediate", "purpose": "tt.application_intake", '
               '"target_org": "vantaa", "question": "Kysymys?", ' + field + "}")
        status, body = await _send_raw(api, "POST", "/api/v1/consultations", "kela.aino", raw)
        assert status == 400, body
    assert await _state(api) == before
    _no_unhandled_error(caplog)


@pytest.mark.parametrize("raw", [
    '{"text": ' + SURROGATE + "}",
    '{"text": "ok", "data": [{"category": "application.status", "value": ' + SURROGATE + "}]}",
    '{"text": "ok", "data": [{"category": "application.status", "value": "x\\udfffy"}]}',
])
async def test_a_lone_surrogate_in_a_message_is_400_and_nothing_is_stored(api, caplog, raw):
    consultation = await api.open_consultation()
    before = await _state(api)
    for path in (f"/api/v1/consultations/{consultation['id']}/messages",
                 f"/api/v1/consultations/{consultation['id']}/messages/preview"):
        status, body = await _send_raw(api, "POST", path, "kela.aino", raw)
        assert status == 400, body
        _is_error(body)
    assert await _state(api) == before
    _no_unhandled_error(caplog)


async def test_a_surrogate_pair_is_text_like_any_other(api):
    """Only a lone surrogate is refused: an escaped pair is one character beyond the BMP."""
    consultation = await api.open_consultation()
    status, body = await _send_raw(api, "POST", f"/api/v1/consultations/{consultation['id']}/messages",
                                   "kela.aino", '{"text": "Kiitos \\ud83d\\ude42"}')
    assert status == 201, body
    assert body["text"] == "Kiitos \U0001f642"


LIST_PATHS = ["/api/v1/consultations", "/api/v1/queue", "/api/v1/knowledge", "/api/v1/knowledge/drafts",
              "/api/v1/audit/events", "/api/v1/audit/disclosures"]


async def test_limit_takes_only_ascii_digits(api, caplog):
    for digit in ["\u00b2", "\u0663", "\uff13", "1\u00b2", "+5", " 5", "5 ", "-1", "1e2", "0x10", "1_0"]:
        for path in LIST_PATHS:
            user = ("kela.tuula" if "/audit/" in path else "vantaa.sanna" if "queue" in path or "drafts" in path
                    else "kela.eero")  # a user who may list it: the role is checked first (403)
            response = await api.client.get(path, params={"limit": digit}, headers=api.auth(user))
            assert response.status == 400, (path, digit, response.status, await response.text())
            _is_error(await response.json())
    _no_unhandled_error(caplog)


@pytest.mark.parametrize("digit", ["\u00b2", "\u0663", "99999999999999999999"])
async def test_audit_indexes_and_the_holiday_year_take_only_ascii_digits(api, caplog, digit):
    for path, name in (("/api/v1/audit/proof/inclusion", "index"), ("/api/v1/holidays", "year")):
        user = "kela.tuula"
        response = await api.client.get(path, params={name: digit}, headers=api.auth(user))
        assert 400 <= response.status < 500, (path, response.status)
        _is_error(await response.json())
    _no_unhandled_error(caplog)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("number", ["1" * 30, str(2 ** 63), str(2 ** 64), "\u0663", "-0", "+5"])
async def test_a_cursor_with_an_impossible_number_is_400(api, caplog, number):
    consultation = await api.open_consultation()
    for path, kind, user in (("/api/v1/consultations", "c", "kela.aino"),
                             (f"/api/v1/consultations/{consultation['id']}/messages", "m", "kela.aino"),
                             ("/api/v1/audit/events", "a", "kela.tuula"),
                             ("/api/v1/audit/disclosures", "a", "kela.tuula")):
        response = await api.client.get(path, params={"cursor": _cursor(f"{kind}:{number}")},
                                         headers=api.auth(user))
        assert response.status == 400, (path, number, response.status, await response.text())
        _is_error(await response.json())
    _no_unhandled_error(caplog)


EXTREME_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-05:00", "9999-12-31", "0001-01-01",
                 "1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "２０２６-01-01T00:00:00Z"]


@pytest.mark.parametrize("moment", EXTREME_TIMES)
async def test_times_that_cannot_be_represented_are_4xx(api, caplog, moment):
    """Consents, agreements, the roster and audit filters read times through one parser."""
    ref = await api.register(hetu(901))
    before = await _state(api)
    consent = {"categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
               "method": "oral", "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä"}
    writes = [
        ("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", {**consent, "valid_until": moment}),
        ("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", {**consent, "valid_from": moment}),
        ("POST", "/api/v1/agreements", "kela.admin", {"reference": "Kela–Espoo", "parties": ["kela", "espoo"],
                                                      "valid_from": moment, "topics": ["other"]}),
        ("POST", "/api/v1/roster/periods", "vantaa.admin", {"user_id": "vantaa.mikko", "starts_at": moment,
                                                            "ends_at": "2026-03-02T12:00:00Z"}),
        ("POST", "/api/v1/roster/periods", "vantaa.admin", {"user_id": "vantaa.mikko",
                                                            "starts_at": "2026-03-02T10:00:00Z", "ends_at": moment}),
        ("POST", "/api/v1/roster/rules", "vantaa.admin", {"user_id": "vantaa.mikko", "weekday": 1, "start": "08:00",
                                                          "end": "16:00", "valid_from": moment[:10]}),
    ]
    for method, path, user, body in writes:
        response = await api.client.request(method, path, json=body, headers=api.auth(user))
        assert 400 <= response.status < 500, (path, body, response.status, await response.text())
        _is_error(await response.json())
    for path, name, user in (("/api/v1/roster", "from", "vantaa.admin"), ("/api/v1/roster", "to", "vantaa.admin"),
                             ("/api/v1/audit/events", "from", "kela.tuula"), ("/api/v1/audit/events", "to", "kela.tuula"),
                             ("/api/v1/audit/export", "to", "kela.tuula"),
                             ("/api/v1/audit/anomalies", "from", "kela.tuula"),
                             (f"/api/v1/clients/{ref}/access-report", "from", "kela.tuula"),
                             (f"/api/v1/clients/{ref}/log-extract", "to", "kela.tuula")):
        response = await api.client.get(path, params={name: moment}, headers=api.auth(user))
        assert 400 <= response.status < 500, (path, name, response.status, await response.text())
        _is_error(await response.json())
    consultations, messages, _audit = await _state(api)
    assert (consultations, messages) == before[:2]
    _no_unhandled_error(caplog)


@pytest.mark.parametrize("months", [("9999-12", "9999-12"), ("0001-01", "0001-01"), ("9999-01", "9999-12"),
                                    ("2026-01", "9999-12"), ("0000-01", "0000-02"), ("２０２６-01", "2026-02"),
                                    ("2026-1", "2026-02"), ("2026-01-01", "2026-02")])
async def test_extreme_month_ranges_of_the_statistics_are_refused_as_malformed(api, caplog, months):
    """A month out of the accepted years or not written YYYY-MM is a parameter the query declaration
    refuses: 400 bad_query naming it, like every other query parameter."""
    first, last = months
    for path in ("/api/v1/stats", "/api/v1/stats.csv"):
        response = await api.client.get(path, params={"from": first, "to": last}, headers=api.auth("kela.admin"))
        assert response.status == 400, (path, months, response.status, await response.text())
        assert (await response.json())["error"]["code"] == "bad_query"
    _no_unhandled_error(caplog)


async def test_a_hostile_websocket_frame_is_answered_and_the_socket_stays_usable(api, caplog):
    """The live socket reads frames with the same loader: no unhandled error, and a ping after
    the hostile frames is still answered."""
    ws = await connect(api, "kela.aino")
    for frame in ("[" * WS_DEEP + "]" * WS_DEEP, '{"type": ' + SURROGATE + "}", '{"type": "ping", "n": NaN}'):
        await ws.send_str(frame)
        assert (await next_event(ws, "error"))["error"]["code"] == "bad_frame"
    await ws.send_str('{"type": "ping"}')
    await next_event(ws, "pong")
    await ws.close()
    _no_unhandled_error(caplog)


async def test_a_hostile_authentication_frame_closes_the_socket_as_unauthenticated(api, caplog):
    for frame in ("[" * WS_DEEP + "]" * WS_DEEP, '{"type": "auth", "token": ' + SURROGATE + "}"):
        ws = await api.client.ws_connect("/api/v1/ws")
        await ws.send_str(frame)
        msg = await ws.receive(timeout=5)
        assert msg.type.name in ("CLOSE", "CLOSED") and ws.close_code == 4401, (msg.type, ws.close_code)
        await ws.close()
    _no_unhandled_error(caplog)


@pytest.mark.parametrize("raw", [
    '{"question": "\ud800"}'.encode("utf-16-le", "surrogatepass"),  # no escape: a raw UTF-16 code unit
    '{"question": "Kysymys?"}'.encode("utf-16"),
    b'{"question": "Kysymys?", "n": NaN}',
    b'{"question": "Kysymys?", "n": 1e400}',
    b'{"question": "Kysymys?", "n": -Infinity}',
])
async def test_a_body_that_is_not_plain_utf8_json_is_400(api, caplog, raw):
    """Only UTF-8 JSON is read (RFC 8259 8.1): UTF-16 would let a lone surrogate in unescaped."""
    before = await _state(api)
    response = await api.client.post("/api/v1/consultations", data=raw, headers={
        **api.auth("kela.aino"), "Content-Type": "application/json"})
    assert response.status == 400, (response.status, await response.text())
    body = await response.json()
    _is_error(body)
    assert body["error"]["code"] == "bad_json"
    assert await _state(api) == before
    _no_unhandled_error(caplog)


async def test_an_escaped_backslash_before_u_d800_is_ordinary_text(api):
    """``\\\\ud800`` in JSON is a backslash and the letters "ud800", not a surrogate."""
    consultation = await api.open_consultation()
    status, body = await _send_raw(api, "POST", f"/api/v1/consultations/{consultation['id']}/messages",
                                   "kela.aino", '{"text": "polku C:\\\\ud800"}')
    assert status == 201, body
    assert body["text"] == "polku C:\\ud800"


@pytest.mark.parametrize("part,code", [
    ("[" * 4000 + "]" * 4000, "invalid_field"),
    ('{"reason": "Asiakas pyysi \\ud800 tätä.", "categories": ["debt"]}', "invalid_field"),
    ('{"reason": "Asiakas pyysi tätä.", "categories": ["debt"], "n": NaN}', "invalid_field"),
    ('{"reason": "Asiakas pyysi tätä.", "categories": ["debt"], "extra": 1}', "unknown_field"),
])
async def test_the_attachment_confirmation_part_is_read_by_the_same_loader(api, caplog, part, code):
    """The multipart upload's JSON part gets what a JSON body gets: no 500, nothing stored."""
    import aiohttp

    consultation = await api.open_consultation()
    before = await _state(api)
    form = aiohttp.FormData()
    form.add_field("file", b"%PDF-1.7\nX\n%%EOF\n", filename="liite.pdf", content_type="application/pdf")
    form.add_field("sensitive_confirmation", part)
    response = await api.client.post(f"/api/v1/consultations/{consultation['id']}/attachments", data=form,
                                     headers=api.auth("kela.aino"))
    assert response.status == 422, (response.status, await response.text())
    body = await response.json()
    _is_error(body)
    assert body["error"]["code"] == code
    assert await _state(api) == before
    _no_unhandled_error(caplog)
