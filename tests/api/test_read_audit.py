"""Every read of client data or content leaves an audit record (docs/capabilities.md C5), derived from the route
table: each route the app serves is either exercised here — and must append a record by its caller
when it answers — or listed as carrying no client data, with a response schema that names no
client, question or content field. A new route that is neither fails the test, and so does a
content route that answers without a record. Live WebSocket deliveries are recorded before their
frames leave, and the client access report shows all of these reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import pytest

from consult.http import keys
from consult.storage import audit_log
from tests.api.wsutil import connect, next_event
from tests.synthetic import hetu

QUESTION = "QUESTION-SENTINEL: does the rent attachment need resubmitting?"
TEXT = "MESSAGE-SENTINEL about the application"
VALUE = "VALUE-SENTINEL in process"
KNOWLEDGE_Q = "KNOWLEDGE-SENTINEL kysymys vuokrasopimuksesta"
PDF = b"%PDF-1.7\nATTACHMENT-SENTINEL\n%%EOF\n"
CONSENT = {"categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
           "method": "oral", "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä",
           "valid_until": (datetime.now(UTC) + timedelta(days=90)).date().isoformat()}
#: Fields whose presence in a response schema means the route can answer with client data or content.
CONTENT_FIELDS = frozenset({"client_ref", "question", "text", "value", "messages", "outcome_note", "note",
                            "answer", "evidence_ref", "case_ref"})


@dataclass
class World:
    """One client, a claimed consultation with a message, an offered one, a consent, a prohibition,
    an attachment and a knowledge entry."""

    api: Any
    ref: str = ""
    cid: str = ""
    offered: str = ""
    consent: str = ""
    prohibition: str = ""
    attachment: str = ""
    entry: str = ""
    counter: list[int] = field(default_factory=lambda: [70])

    def sentinels(self) -> list[str]:
        return [self.ref, QUESTION, TEXT, VALUE, KNOWLEDGE_Q, "ATTACHMENT-SENTINEL"]

    async def consultation(self, *, claim: bool = True, user: str = "kela.aino") -> str:
        cid = (await self.api.open_consultation(user, purpose="tt.application_intake", client_ref=self.ref,
                                                question=QUESTION))["id"]
        if claim:
            await self.api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
        return cid

    async def fresh_client(self) -> str:
        self.counter[0] += 1
        return await self.api.register(hetu(self.counter[0]))


async def build(api: Any) -> World:
    w = World(api)
    w.ref = await api.register(hetu(69))
    w.cid = await w.consultation()
    await api.call("POST", f"/api/v1/consultations/{w.cid}/messages", "kela.aino", expect=201, json={
        "text": TEXT, "data": [{"category": "application.status", "value": VALUE}]})
    w.offered = await w.consultation(claim=False)
    w.consent = (await api.call("POST", f"/api/v1/clients/{w.ref}/consents", "kela.aino", json=CONSENT,
                                expect=201))["id"]
    w.prohibition = (await api.call("POST", f"/api/v1/clients/{w.ref}/prohibitions", "kela.aino",
                                    json={"category": "debt"}, expect=201))["id"]
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="liite.pdf", content_type="application/pdf")
    r = await api.client.post(f"/api/v1/consultations/{w.cid}/attachments", data=form, headers=api.auth("kela.aino"))
    assert r.status == 201, await r.text()
    w.attachment = (await r.json())["id"]
    closed = await w.consultation()
    await api.call("POST", f"/api/v1/consultations/{closed}/close", "vantaa.sanna", json={"outcome": "advice_given"},
                   expect=200)
    w.entry = (await api.call("POST", f"/api/v1/consultations/{closed}/knowledge", "vantaa.sanna", expect=201,
                              json={"question": KNOWLEDGE_Q, "answer": "Vastaus ilman henkilötietoja."}))["id"]
    await api.call("POST", f"/api/v1/knowledge/{w.entry}/approve", "vantaa.mikko", expect=200)
    return w


@dataclass(frozen=True)
class Call:
    user: str
    path: str
    json: Any = None
    data: Any = None


Recipe = Callable[[World], Awaitable[Call]]
WHY = {"justification": "Complaint 2026-9 from the client needs the exchange reviewed."}


async def _new_consent(w: World) -> str:
    return (await w.api.call("POST", f"/api/v1/clients/{w.ref}/consents", "kela.aino", json=CONSENT,
                             expect=201))["id"]


async def _vantaa_discloses(w: World) -> str:
    """A consent recorded at Kela for the county's disclosure to Kela, for the county to confirm."""
    body = {**CONSENT, "disclosing_org": "vantaa", "recipient_orgs": ["kela"]}
    return (await w.api.call("POST", f"/api/v1/clients/{w.ref}/consents", "kela.aino", json=body,
                             expect=201))["id"]


async def _notification(w: World) -> str:
    return (await w.api.call("POST", "/api/v1/child-welfare-notifications", "kela.aino", expect=201, json={
        "target_org": "vantaa", "client_ref": w.ref, "text": QUESTION}))["id"]


async def _suspended(w: World) -> str:
    cid = await _new_consent(w)
    await w.api.call("POST", f"/api/v1/consents/{cid}/suspend", "kela.aino", expect=200)
    return cid


async def _new_prohibition(w: World) -> str:
    return (await w.api.call("POST", f"/api/v1/clients/{w.ref}/prohibitions", "kela.aino",
                             json={"category": "housing.risk"}, expect=201))["id"]


async def _upload(w: World) -> Call:
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="toinen.pdf", content_type="application/pdf")
    return Call("kela.aino", f"/api/v1/consultations/{w.cid}/attachments", data=form)


async def _draft(w: World) -> str:
    closed = await w.consultation()
    await w.api.call("POST", f"/api/v1/consultations/{closed}/close", "vantaa.sanna",
                     json={"outcome": "advice_given"}, expect=200)
    return (await w.api.call("POST", f"/api/v1/consultations/{closed}/knowledge", "vantaa.sanna", expect=201,
                             json={"question": KNOWLEDGE_Q, "answer": "Toinen vastaus."}))["id"]


async def _participant_call(w: World) -> Call:
    return Call("kela.aino", f"/api/v1/consultations/{await w.consultation()}/participants",
                json={"user_id": "kela.eero"})


async def _close_call(w: World) -> Call:
    return Call("vantaa.sanna", f"/api/v1/consultations/{await w.consultation()}/close",
                json={"outcome": "advice_given"})


async def _propose_call(w: World) -> Call:
    closed = await w.consultation()
    await w.api.call("POST", f"/api/v1/consultations/{closed}/close", "vantaa.sanna",
                     json={"outcome": "advice_given"}, expect=200)
    return Call("vantaa.sanna", f"/api/v1/consultations/{closed}/knowledge",
                json={"question": KNOWLEDGE_Q, "answer": "Kolmas vastaus."})


async def _approve_call(w: World) -> Call:
    return Call("vantaa.mikko", f"/api/v1/knowledge/{await _draft(w)}/approve")


async def _reason_call(w: World) -> Call:
    """The reason of a sender's confirmation of flagged free text, kept beside the log."""
    await w.api.call("POST", f"/api/v1/consultations/{w.cid}/messages", "vantaa.sanna", expect=201, json={
        "text": "Asiakkaalla on masennus.",
        "sensitive_confirmation": {"reason": "Asiakas pyysi kertomaan tämän.", "categories": ["health"]}})
    page = await w.api.call("GET", f"/api/v1/audit/events?consultation_id={w.cid}&basis=sender-confirmation",
                            "vantaa.ville", expect=200)
    return Call("vantaa.ville", f"/api/v1/audit/reasons/{page['items'][0]['reason_id']}")


def fixed(make: Callable[[World], Call]) -> Recipe:
    async def recipe(w: World) -> Call:
        return make(w)

    return recipe


def after(setup: Callable[[World], Awaitable[str]], make: Callable[[World, str], Call]) -> Recipe:
    async def recipe(w: World) -> Call:
        return make(w, await setup(w))

    return recipe


#: Every route that can answer with a client_ref, a question, message content or other client data.
RECIPES: dict[tuple[str, str], Recipe] = {
    ("POST", "/api/v1/consultations"): fixed(lambda w: Call("kela.aino", "/api/v1/consultations", json={
        "topic": "application_intake", "urgency": "today", "question": QUESTION, "purpose": "sh.multidisciplinary",
        "target_org": "vantaa", "client_ref": w.ref})),
    ("GET", "/api/v1/consultations"): fixed(lambda w: Call("vantaa.mikko", "/api/v1/consultations")),
    ("POST", "/api/v1/consultations/search"): fixed(lambda w: Call(
        "kela.aino", "/api/v1/consultations/search", json={"q": "rent attachment"})),
    ("GET", "/api/v1/consultations/{id}"): fixed(lambda w: Call("kela.aino", f"/api/v1/consultations/{w.cid}")),
    ("POST", "/api/v1/child-welfare-notifications"): fixed(lambda w: Call(
        "kela.aino", "/api/v1/child-welfare-notifications",
        json={"target_org": "vantaa", "client_ref": w.ref, "text": QUESTION})),
    ("GET", "/api/v1/child-welfare-notifications/{id}"): after(
        _notification, lambda w, c: Call("vantaa.kaisa", f"/api/v1/child-welfare-notifications/{c}")),
    ("POST", "/api/v1/consultations/{id}/claim"): after(
        lambda w: w.consultation(claim=False), lambda w, c: Call("vantaa.sanna", f"/api/v1/consultations/{c}/claim")),
    ("POST", "/api/v1/consultations/{id}/participants"): _participant_call,
    ("POST", "/api/v1/consultations/{id}/close"): _close_call,
    ("POST", "/api/v1/consultations/{id}/messages"): fixed(lambda w: Call(
        "kela.aino", f"/api/v1/consultations/{w.cid}/messages", json={"text": TEXT})),
    ("POST", "/api/v1/consultations/{id}/messages/preview"): fixed(lambda w: Call(
        "kela.aino", f"/api/v1/consultations/{w.cid}/messages/preview",
        json={"text": TEXT, "data": [{"category": "health", "value": VALUE}]})),
    ("GET", "/api/v1/consultations/{id}/messages"): fixed(lambda w: Call(
        "vantaa.sanna", f"/api/v1/consultations/{w.cid}/messages")),
    ("POST", "/api/v1/clients"): fixed(lambda w: Call("kela.eero", "/api/v1/clients", json={"hetu": hetu(69)})),
    ("POST", "/api/v1/clients/lookup"): fixed(lambda w: Call("kela.tuula", "/api/v1/clients/lookup",
                                                             json={"hetu": hetu(69)})),
    ("POST", "/api/v1/clients/{ref}/consents"): fixed(lambda w: Call(
        "kela.aino", f"/api/v1/clients/{w.ref}/consents", json=CONSENT)),
    ("GET", "/api/v1/clients/{ref}/consents"): fixed(lambda w: Call("vantaa.paula", f"/api/v1/clients/{w.ref}/consents")),
    ("GET", "/api/v1/consents/{id}"): fixed(lambda w: Call("vantaa.paula", f"/api/v1/consents/{w.consent}")),
    ("GET", "/api/v1/consents/{id}/receipt"): fixed(lambda w: Call("kela.aino", f"/api/v1/consents/{w.consent}/receipt")),
    ("POST", "/api/v1/consents/{id}/versions"): after(
        _new_consent, lambda w, c: Call("kela.aino", f"/api/v1/consents/{c}/versions", json=CONSENT)),
    ("POST", "/api/v1/consents/{id}/revoke"): after(
        _new_consent, lambda w, c: Call("kela.aino", f"/api/v1/consents/{c}/revoke")),
    ("POST", "/api/v1/consents/{id}/confirm"): after(
        _vantaa_discloses, lambda w, c: Call("vantaa.paula", f"/api/v1/consents/{c}/confirm")),
    ("POST", "/api/v1/consents/{id}/suspend"): after(
        _new_consent, lambda w, c: Call("kela.aino", f"/api/v1/consents/{c}/suspend")),
    ("POST", "/api/v1/consents/{id}/resume"): after(
        _suspended, lambda w, c: Call("kela.aino", f"/api/v1/consents/{c}/resume")),
    ("POST", "/api/v1/clients/{ref}/prohibitions"): fixed(lambda w: Call(
        "kela.eero", f"/api/v1/clients/{w.ref}/prohibitions", json={"category": "health"})),
    ("GET", "/api/v1/clients/{ref}/prohibitions"): fixed(lambda w: Call(
        "kela.tuula", f"/api/v1/clients/{w.ref}/prohibitions")),
    ("POST", "/api/v1/prohibitions/{id}/revoke"): after(
        _new_prohibition, lambda w, p: Call("kela.aino", f"/api/v1/prohibitions/{p}/revoke")),
    ("POST", "/api/v1/consultations/{id}/attachments"): _upload,
    ("GET", "/api/v1/attachments/{id}"): fixed(lambda w: Call("vantaa.sanna", f"/api/v1/attachments/{w.attachment}")),
    ("GET", "/api/v1/queue"): fixed(lambda w: Call("vantaa.mikko", "/api/v1/queue")),
    ("GET", "/api/v1/audit/events"): fixed(lambda w: Call("kela.tuula", f"/api/v1/audit/events?client_ref={w.ref}")),
    ("GET", "/api/v1/audit/disclosures"): fixed(lambda w: Call("kela.tuula", "/api/v1/audit/disclosures")),
    ("GET", "/api/v1/audit/export"): fixed(lambda w: Call("kela.tuula", "/api/v1/audit/export")),
    ("GET", "/api/v1/audit/anomalies"): fixed(lambda w: Call("kela.tuula", "/api/v1/audit/anomalies")),
    ("GET", "/api/v1/audit/reasons/{id}"): _reason_call,
    ("GET", "/api/v1/clients/{ref}/access-report"): fixed(lambda w: Call(
        "kela.tuula", f"/api/v1/clients/{w.ref}/access-report")),
    ("GET", "/api/v1/clients/{ref}/log-extract"): fixed(lambda w: Call(
        "kela.tuula", f"/api/v1/clients/{w.ref}/log-extract?lang=sv")),
    ("GET", "/api/v1/retention/client-record"): fixed(lambda w: Call(
        "vantaa.ville", "/api/v1/retention/client-record")),
    ("POST", "/api/v1/consultations/{id}/break-glass"): fixed(lambda w: Call(
        "kela.tuula", f"/api/v1/consultations/{w.cid}/break-glass", json=WHY)),
    ("POST", "/api/v1/consultations/{id}/knowledge"): _propose_call,
    ("GET", "/api/v1/knowledge"): fixed(lambda w: Call("kela.aino", "/api/v1/knowledge?q=vuokrasopimuksesta")),
    ("POST", "/api/v1/knowledge/search"): fixed(lambda w: Call(
        "kela.aino", "/api/v1/knowledge/search", json={"q": "vuokrasopimuksesta"})),
    ("GET", "/api/v1/knowledge/drafts"): after(_draft, lambda w, _e: Call("vantaa.mikko", "/api/v1/knowledge/drafts")),
    ("GET", "/api/v1/knowledge/{id}"): fixed(lambda w: Call("kela.aino", f"/api/v1/knowledge/{w.entry}")),
    ("POST", "/api/v1/knowledge/{id}/approve"): _approve_call,
    ("POST", "/api/v1/knowledge/{id}/withdraw"): after(
        _draft, lambda w, e: Call("vantaa.sanna", f"/api/v1/knowledge/{e}/withdraw")),
}

#: Routes that answer with no client data and no content, and why.
NO_CLIENT_DATA: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness",
    ("GET", "/readyz"): "readiness",
    ("GET", "/api/v1/openapi.json"): "the API description",
    ("GET", "/api/v1/me"): "the caller themself",
    ("GET", "/api/v1/experts"): "staff directory",
    ("PUT", "/api/v1/experts/{user_id}"): "staff directory",
    ("POST", "/api/v1/consultations/{id}/read"): "a read receipt: ids and a time",
    ("POST", "/api/v1/scan"): "what kinds of identifier the caller's own text holds; nothing is looked up",
    ("POST", "/api/v1/consultations/{id}/legal-hold"): "the hold flag (itself recorded)",
    ("GET", "/api/v1/keys/status"): "key versions",
    ("GET", "/api/v1/audit/verify"): "hashes and sizes (itself recorded)",
    ("GET", "/api/v1/audit/tree-head"): "hashes",
    ("GET", "/api/v1/audit/checkpoint"): "a signed hash",
    ("GET", "/api/v1/audit/verifier-key"): "a public key",
    ("GET", "/api/v1/audit/proof/inclusion"): "hashes",
    ("GET", "/api/v1/audit/proof/consistency"): "hashes",
    ("GET", "/api/v1/config"): "the web app's settings",
    ("GET", "/api/v1/policy"): "the policy rules",
    ("GET", "/api/v1/agreements"): "agreements between organisations",
    ("POST", "/api/v1/agreements"): "agreements between organisations",
    ("GET", "/api/v1/agreements/{id}"): "agreements between organisations",
    ("PUT", "/api/v1/agreements/{id}"): "agreements between organisations",
    ("GET", "/api/v1/pools"): "pool settings and counts",
    ("PUT", "/api/v1/pools/{org}/{name}"): "pool settings",
    ("GET", "/api/v1/roster"): "staff duty",
    ("POST", "/api/v1/roster/periods"): "staff duty",
    ("DELETE", "/api/v1/roster/periods/{id}"): "staff duty",
    ("POST", "/api/v1/roster/rules"): "staff duty",
    ("DELETE", "/api/v1/roster/rules/{id}"): "staff duty",
    ("GET", "/api/v1/holidays"): "public holidays",
    ("GET", "/api/v1/stats"): "aggregate statistics without personal data",
    ("GET", "/api/v1/stats.csv"): "aggregate statistics without personal data",
    ("GET", "/api/v1/dev/users"): "development issuer: demo users",
    ("POST", "/api/v1/dev/token"): "development issuer: a token",
    ("POST", "/api/v1/dev/token/renew"): "development issuer: a fresh token for the bearer",
    ("POST", "/api/v1/sessions/end"): "staff sessions (the act is audited as sessions.end: tests/ops/test_sessions.py)",
    ("GET", "/api/v1/ws"): "live events: recorded per delivery (test_live_deliveries_are_recorded_before_the_frame)",
    ("GET", "/"): "the web app",
}


def served_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, static files aside."""
    out = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:  # static files
            continue
        for route in resource:
            if route.method not in ("HEAD", "OPTIONS"):
                out.add((route.method, path))
    return out


def _schema_fields(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                found |= set(value)
            found |= _schema_fields(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _schema_fields(value)
    return found


async def _records(api: Any) -> list[dict[str, Any]]:
    async with api.client.app[keys.DB].read() as conn:
        rows: list[dict[str, Any]] = []
        async for part in audit_log.iter_query(conn, audit_log.EventFilter()):
            rows += part
    return rows


async def test_every_route_is_either_audited_here_or_carries_no_client_data(api):
    """The list is the route table: a route added without deciding whether it reads client data
    fails here, and a route declared free of client data may not name a client or content field."""
    served = served_routes(api.client.app)
    known = set(RECIPES) | set(NO_CLIENT_DATA)
    assert served - known == set(), f"routes neither audited nor declared free of client data: {served - known}"
    assert set(RECIPES) - served == set() and set(NO_CLIENT_DATA) - served == set()
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    for (method, path) in NO_CLIENT_DATA:
        operation = document["paths"].get(path, {}).get(method.lower(), {})
        named = _schema_fields(operation.get("responses", {})) & CONTENT_FIELDS
        assert not named, f"{method} {path} is declared free of client data but its response names {named}"
    for (method, path), operation in ((m_p, document["paths"][m_p[1]][m_p[0].lower()]) for m_p in served
                                      if m_p[1] in document["paths"] and m_p[0].lower() in document["paths"][m_p[1]]):
        if _schema_fields(operation.get("responses", {})) & CONTENT_FIELDS:
            assert (method, path) in RECIPES, f"{method} {path} can answer with client data: audit it"


async def test_every_content_route_writes_a_record_by_its_caller(api):
    """Each route that can answer with client data, called by a user allowed to, appends at least
    one audit record by that user before answering — reads as well as writes."""
    w = await build(api)
    unaudited = []
    for (method, template), recipe in sorted(RECIPES.items()):
        call = await recipe(w)
        before = len(await _records(api))
        headers = api.auth(call.user)
        response = await api.client.request(method, call.path, json=call.json, data=call.data, headers=headers)
        body = await response.read()
        assert 200 <= response.status < 300, (method, template, response.status, body[:300])
        new = (await _records(api))[before:]
        if not [r for r in new if r["actor_id"] == call.user]:
            unaudited.append(f"{method} {template}")
    assert unaudited == []


async def test_routes_free_of_client_data_answer_none(api):
    """The routes declared free of client data, where they can be called without an object id,
    answer with none of the client's ref, question, message text or item values."""
    w = await build(api)
    callers = {"GET /api/v1/stats": "kela.tuula", "GET /api/v1/stats.csv": "kela.tuula",
               "GET /api/v1/keys/status": "kela.admin", "GET /api/v1/audit/verify": "kela.tuula",
               "GET /api/v1/audit/tree-head": "kela.tuula", "GET /api/v1/audit/checkpoint": "kela.tuula"}
    for (method, path) in NO_CLIENT_DATA:
        if method != "GET" or "{" in path or path == "/api/v1/ws":
            continue
        user = callers.get(f"{method} {path}", "vantaa.sanna")
        response = await api.client.get(path, headers=api.auth(user))
        text = (await response.read()).decode("utf-8", "replace")
        for sentinel in w.sentinels():
            assert sentinel not in text, (path, sentinel)


async def test_offered_consultations_listed_are_recorded_with_their_client(api):
    """GET /consultations shows an on-duty expert the question and client of every consultation
    offered to them: each one listed is recorded, and the client access report shows it."""
    ref = await api.register(hetu(80))
    offered = (await api.open_consultation(purpose="sh.multidisciplinary", client_ref=ref, question=QUESTION))["id"]
    page = await api.call("GET", "/api/v1/consultations", "vantaa.mikko", expect=200)
    assert any(c["id"] == offered and c["client_ref"] == ref for c in page["items"])
    queue = await api.call("GET", "/api/v1/queue", "vantaa.mikko", expect=200)
    assert any(q["id"] == offered for q in queue["items"])
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", "vantaa.ville", expect=200)
    seen = {(p["who"]["id"], p["action"], p["consultation_id"]) for p in report["processing"]}
    assert ("vantaa.mikko", "consultation.list", offered) in seen
    assert ("vantaa.mikko", "queue.read", offered) in seen


async def test_consent_reads_and_prohibition_list_appear_in_the_access_report(api):
    """Reading a consent, its receipt and the prohibitions are processing of the client's data."""
    ref = await api.register(hetu(81))
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    await api.call("GET", f"/api/v1/consents/{consent['id']}", "kela.eero", expect=200)
    await api.call("GET", f"/api/v1/consents/{consent['id']}/receipt", "kela.eero", expect=200)
    await api.call("GET", f"/api/v1/clients/{ref}/prohibitions", "kela.eero", expect=200)
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", "kela.tuula", expect=200)
    actions = [p["action"] for p in report["processing"] if p["who"]["id"] == "kela.eero"]
    assert sorted(actions) == ["consent.read", "consent.receipt", "prohibition.list"]


async def test_live_deliveries_are_recorded_before_the_frame(api):
    """A consultation offered live and a message delivered live are reads by their recipient: the
    record (``live.<event>``) is committed before the frame reaches the socket, names the message
    and the categories shown, and the recipient's organisation sees it in the access report."""
    ref = await api.register(hetu(82))
    ws = await connect(api, "vantaa.sanna")
    try:
        cid = (await api.open_consultation(purpose="tt.application_intake", client_ref=ref, question=QUESTION,
                                           expert_id="vantaa.sanna"))["id"]
        offered = await next_event(ws, "consultation.offered")
        assert offered["consultation"]["id"] == cid
        rows = await _records(api)  # read at once: the record is there before the frame
        assert [r for r in rows if r["action"] == "live.consultation.offered" and r["consultation_id"] == cid
                and r["actor_id"] == "vantaa.sanna" and r["client_ref"] == ref]
        await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
        sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
            "text": TEXT, "data": [{"category": "application.status", "value": VALUE},
                                   {"category": "health", "value": "NO-CONSENT"}]})
        event = await next_event(ws, "message.created")
        assert event["message"]["id"] == sent["id"]
        rows = await _records(api)
        [live] = [r for r in rows if r["action"] == "live.message.created" and r["message_id"] == sent["id"]]
        assert live["actor_id"] == "vantaa.sanna" and live["actor_org"] == "vantaa" and live["client_ref"] == ref
        assert live["categories"] == ["application.status"]  # the withheld health item was not shown
    finally:
        await ws.close()
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", "vantaa.ville", expect=200)
    actions = {(p["who"]["id"], p["action"]) for p in report["processing"]}
    assert {("vantaa.sanna", "live.consultation.offered"), ("vantaa.sanna", "live.message.created")} <= actions


async def test_events_without_content_need_no_record(api):
    """Presence carries no client data: it is delivered without a record."""
    ws = await connect(api, "vantaa.sanna")
    try:
        before = len(await _records(api))
        other = await connect(api, "vantaa.mikko")
        while (await next_event(ws, "presence"))["user_id"] != "vantaa.mikko":
            pass
        await other.close()
        assert [r for r in (await _records(api))[before:] if r["action"].startswith("live.")] == []
    finally:
        await ws.close()


@pytest.mark.parametrize("fail", [False, True])
async def test_the_ledger_writes_pending_deliveries_at_shutdown_and_never_delivers_unrecorded(api, fail):
    """On shutdown what is pending is recorded, then delivered; a batch whose records cannot be
    written (here: a database that is not running) is not delivered at all."""
    from consult.model import Principal
    from consult.model.context import RequestContext
    from consult.services.deliveries import DeliveryLedger
    from consult.services.events import EventBus, Reader
    from consult.storage.db import Database

    app = api.client.app
    bus = EventBus()
    db = Database(app[keys.SETTINGS].database_url) if fail else app[keys.DB]  # the first is never started
    ledger = DeliveryLedger(db, bus, app[keys.CLOCK])
    ledger.start()
    received: list[dict[str, Any]] = []
    reader = Reader(Principal("vantaa.sanna", "vantaa", frozenset({"expert"}), "Sanna"), RequestContext("ws-test"))
    bus.subscribe("vantaa.sanna", received.append, reader)
    before = len(await _records(api))
    event = {"type": "consultation.offered", "consultation": {"id": "c-shutdown", "client_ref": "cl_00",
                                                               "purpose": "general", "question": QUESTION}}
    bus.publish(["vantaa.sanna"], lambda _u: event)
    await ledger.close()  # without yielding first: the batch is still pending
    rows = [r for r in (await _records(api))[before:] if r["consultation_id"] == "c-shutdown"]
    if fail:
        assert received == [] and rows == []
    else:
        assert received == [event]
        assert [(r["action"], r["actor_id"], r["request_id"]) for r in rows] == [
            ("live.consultation.offered", "vantaa.sanna", "ws-test")]


async def test_the_ledger_keeps_publication_order(api):
    """An event recorded in its act's own transaction never overtakes one still being recorded:
    frames reach each connection in the order they were published."""
    from consult.model import Principal
    from consult.model.context import RequestContext
    from consult.services.deliveries import DeliveryLedger
    from consult.services.events import EventBus, Reader

    app = api.client.app
    bus = EventBus()
    ledger = DeliveryLedger(app[keys.DB], bus, app[keys.CLOCK])
    ledger.start()
    received: list[str] = []
    reader = Reader(Principal("vantaa.sanna", "vantaa", frozenset({"expert"}), "Sanna"), RequestContext("ws-order"))
    bus.subscribe("vantaa.sanna", lambda e: received.append(e["type"]), reader)
    bus.publish(["vantaa.sanna"], lambda _u: {"type": "consultation.claimed", "consultation": {
        "id": "c-order", "client_ref": None, "purpose": "general", "question": "q"}})
    recorded = [replace(d, recorded=True) for d in bus.prepare(["vantaa.sanna"], lambda _u: {
        "type": "message.created", "message": {"id": "m-order", "consultation_id": "c-order", "data": []}})]
    bus.send(recorded)
    bus.publish(["vantaa.sanna"], lambda _u: {"type": "presence", "user_id": "x", "presence": "online"})
    await ledger.close()
    assert received == ["consultation.claimed", "message.created", "presence"]
