"""Every writable text field of the OpenAPI document, with every way of writing every identifier
the scanner knows (docs/capabilities.md C2, C3, C5).

The fields are discovered from the document the service publishes — the string properties of
every request body, the file name of every multipart upload and the string query parameters —
so a field added without passing the content gate makes this test fail. Each field gets each
identifier, bare and inside a sentence, through the real app; then

- the database (every plain column; sealed content opened with the service's keys for identity
  codes, which must not be stored even sealed) holds none of them in clear,
- the audit log (its tables are in the database) holds none of them,
- no response and no live event that a user of another organisation receives holds any of them
  (every GET route of the document is read by every demo user of the other organisation, with
  every id the walk created; WebSocket frames are collected throughout).

Only requests that the service refused are allowed to have seen an identifier, and a refusal
is a 4xx, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest
from aiohttp import WSMsgType
from stdnum import iban as stdnum_iban

from sqlalchemy import select

from consult.auth.dev import DEMO_USERS
from consult.http import keys
from consult.storage import tables
from tests.api.gateutil import stored_texts
from tests.api.test_request_schemas import inline

PDF = b"%PDF-1.7\nGATE-WALK\n%%EOF\n"
ORG_OF = {u.user_id: u.org for u in DEMO_USERS}
CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"

# -- identifiers ---------------------------------------------------------------------------------

#: How people write an identity code: the separators and century signs the brief names.
HETU_FORMS = {
    "hyphen": "-", "plus": "+", "letter A": "A", "en dash": "\u2013", "minus sign": "\u2212",
    "non-breaking hyphen": "\u2011", "spaces": " - ",
}


@dataclass(frozen=True)
class Ident:
    kind: str
    variant: str
    value: str  # as submitted


class Identifiers:
    """A fresh identifier of each variant per submission, so every leak names its field."""

    def __init__(self) -> None:
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def hetu(self, form: str) -> Ident:
        i = self._next()
        birth = f"{i % 28 + 1:02d}{(i // 28) % 12 + 1:02d}{50 + (i // 336) % 50:02d}"
        individual = 900 + i % 100
        code = f"{birth}{HETU_FORMS[form].strip() or '-'}{individual}{CHECK[int(f'{birth}{individual}') % 31]}"
        if form == "spaces":
            code = f"{birth} - {individual}{code[-1]}"
        return Ident("hetu", form, code)

    def all(self, hetu_only: bool = False) -> list[Ident]:
        found = [self.hetu(form) for form in HETU_FORMS]
        if hetu_only:
            return found
        i = self._next()
        ibans = []
        for bank in ("123456", "654321"):
            bban = f"{bank}{i:08d}"
            ibans.append(f"FI{stdnum_iban.calc_check_digits('FI00' + bban)}{bban}")
        spaced = " ".join(ibans[0][k:k + 4] for k in range(0, len(ibans[0]), 4))
        return found + [
            Ident("iban", "grouped", spaced), Ident("iban", "compact", ibans[1]),
            Ident("phone", "national", f"040 1{i:06d}"), Ident("phone", "international", f"+358 50 2{i:06d}"),
            Ident("email", "address", f"asiakas.{i}@example.fi"),
        ]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).upper()


def needles(ident: Ident) -> list[str]:
    """What the identifier looks like in a haystack folded by ``Haystack``."""
    compact = re.sub(r"[\W_]", "", _fold(ident.value))
    if ident.kind == "hetu":
        date, tail = compact[:6], compact[-4:]
        return [date + tail] + [date + sign + tail for sign in "ABCDEFUVWXY"]
    if ident.kind == "phone":
        return [compact[1:] if compact.startswith("0") else compact[3:]]  # without 0 or +358
    if ident.kind == "email":
        return [_fold(ident.value)]
    return [compact]


def _readable(text: str) -> str:
    """``text`` as a reader would read it: JSON (and JSON Lines) with its escapes decoded, and
    percent-encoding (a Content-Disposition file name) decoded, so that an identifier written
    as ``\\u2013`` or ``%E2%80%93`` is still seen."""
    try:
        text = json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        lines = []
        for line in text.splitlines():
            try:
                lines.append(json.dumps(json.loads(line), ensure_ascii=False))
            except ValueError:
                lines.append(line)
        text = "\n".join(lines)
    return text + "\x00" + unquote(text) if "%" in text else text


class Haystack:
    """Texts folded once (NFKC, upper case, separators removed) for fast substring checks."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> None:
        self.parts.append((where, _readable(text)))

    def _folded(self, keep_at: bool) -> str:
        joined = "\x00".join(_fold(t) for _w, t in self.parts)
        return joined if keep_at else re.sub(r"[^\w\x00]|_", "", joined)

    def where(self, ident: Ident) -> list[str]:
        hits = []
        for where, text in self.parts:
            folded = _fold(text) if ident.kind == "email" else re.sub(r"[\W_]", "", _fold(text))
            if any(n in folded for n in needles(ident)):
                hits.append(where)
        return hits

    def index(self) -> "Index":
        return Index(self._folded(False), self._folded(True))

    @staticmethod
    def contains(index: "Index", ident: Ident) -> bool:
        if ident.kind == "email":
            return any(n in index.with_at for n in needles(ident))
        return any(n in index.shapes[ident.kind] for n in needles(ident))


#: Every substring of the folded text (separators removed) with the shape of a needle of each kind,
#: found at every position (a lookahead, so overlapping ones too): a needle is a substring of the text
#: exactly when it is one of these, so each look-up is one set membership instead of a scan.
SHAPES = {
    "hetu": re.compile(r"(?=(\d{6}[A-Y]?\d{3}[0-9A-Y]))"),
    "phone": re.compile(r"(?=(\d{9}))"),
    "iban": re.compile(r"(?=(FI\d{16}))"),
}


class Index:
    """A haystack's folded text, and the needle-shaped substrings of it by kind."""

    def __init__(self, bare: str, with_at: str) -> None:
        self.with_at = with_at
        self.shapes = {kind: set(shape.findall(bare)) for kind, shape in SHAPES.items()}


# -- the fields of the document ---------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    method: str
    path: str
    where: str  # "body", "query" or "filename"
    name: str  # dotted path in the body ("data[].value"), a query parameter, or "file"

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where}:{self.name}"


def _strings(schema: dict[str, Any], prefix: str) -> list[str]:
    if not isinstance(schema, dict):
        return []
    found = []
    for member in schema.get("anyOf", []):  # an optional field: its type or null
        found += [name for name in _strings(member, prefix) if name not in found]
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and "enum" not in schema and schema.get("format") != "binary":
        found.append(prefix)
    for name, sub in (schema.get("properties") or {}).items():
        found += _strings(sub, f"{prefix}.{name}" if prefix else name)
    if "items" in schema:
        found += _strings(schema["items"], f"{prefix}[]")
    return found


def writable_fields(doc: dict[str, Any]) -> list[Field]:
    doc = inline(doc, doc)
    fields = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for content_type, media in (op.get("requestBody") or {}).get("content", {}).items():
                schema = media["schema"]
                fields += [Field(method.upper(), path, "body", name) for name in _strings(schema, "")]
                if content_type.startswith("multipart/"):
                    fields += [Field(method.upper(), path, "filename", name)
                               for name, sub in schema.get("properties", {}).items()
                               if sub.get("format") == "binary"]
            for param in op.get("parameters", []):
                if param["in"] in ("query", "path") and _strings(param.get("schema", {}), "x"):
                    fields.append(Field(method.upper(), path, param["in"], param["name"]))
    return fields


# -- how to make a valid request of each operation ----------------------------------------------

Setup = Callable[["Walk"], Awaitable[dict[str, Any]]]


@dataclass
class Operation:
    user: str
    body: dict[str, Any] | None = None  # a valid body (form fields for a multipart upload)
    setup: Setup | None = None  # path parameters and anything else the request needs
    fresh: bool = False  # the operation uses up what its setup made (closing)
    query: dict[str, str] = field(default_factory=dict)


async def _no_setup(_walk: "Walk") -> dict[str, Any]:
    return {}


def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def _consultation(walk: "Walk") -> dict[str, Any]:
    return {"id": await walk.claimed()}


async def _closed(walk: "Walk") -> dict[str, Any]:
    cid = await walk.claimed()
    await walk.api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", expect=200,
                        json={"outcome": "advice_given"})
    return {"id": cid}


async def _client(walk: "Walk") -> dict[str, Any]:
    return {"ref": await walk.client()}


async def _consent(walk: "Walk") -> dict[str, Any]:
    ref = await walk.client()
    body = await walk.api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", expect=201, json=CONSENT)
    walk.ids["consents"].add(body["id"])
    return {"id": body["id"], "ref": ref}


async def _agreement(walk: "Walk") -> dict[str, Any]:
    body = await walk.api.call("POST", "/api/v1/agreements", "kela.admin", expect=201, json=AGREEMENT)
    walk.ids["agreements"].add(body["id"])
    return {"id": body["id"]}


async def _pool(_walk: "Walk") -> dict[str, Any]:
    return {"org": "vantaa", "name": "toimeentulotuki"}


async def _own_expert(_walk: "Walk") -> dict[str, Any]:
    return {"user_id": "vantaa.uusi"}


CONSENT = {"categories": ["income.other"], "recipient_orgs": ["vantaa"], "recipient_users": ["vantaa.mikko"],
           "purpose": "tt.income_calculation", "method": "written", "evidence_ref": "Lomake 12/2026",
           "valid_until": _in(90)}
AGREEMENT = {"reference": "Yhteistyösopimus 2026/1", "parties": ["kela", "vantaa"],
             "valid_from": "2020-01-01T00:00:00Z", "topics": [], "pools": []}
MESSAGE = {"text": "Tilanne", "data": [
    {"category": "application.status", "value": "Käsittelyssä"},
    {"category": "service_need.referral", "value": "Ohjaus sosiaalihuoltoon",
     "referral": {"condition": "unable_to_look_after_self", "justification": "Asiakas ei selviä itse",
                  "why_no_consent": "Asiakasta ei tavoitettu"}}]}

# (METHOD, path) → how to call it. An operation of the document missing here fails the test.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("PUT", "/api/v1/experts/{user_id}"): Operation(
        "vantaa.admin", {"name": "Uusi Asiantuntija", "topics": ["other"], "pools": ["backup"],
                         "languages": ["fi"], "on_duty": False}, _own_expert),
    ("POST", "/api/v1/consultations"): Operation(
        "kela.aino", {"topic": "application_intake", "urgency": "today", "question": "Kysymys",
                      "target_org": "vantaa", "case_ref": "TT-2026-1"}),
    ("POST", "/api/v1/child-welfare-notifications"): Operation(
        "kela.aino", {"target_org": "vantaa", "client_ref": "x", "text": "Huoli lapsesta"}),
    ("POST", "/api/v1/consultations/{id}/participants"): Operation("kela.aino", {"user_id": "kela.eero"},
                                                                   _consultation),
    ("POST", "/api/v1/consultations/{id}/close"): Operation(
        "vantaa.sanna", {"outcome": "advice_given", "note": "Neuvottu"}, _consultation, fresh=True),
    ("POST", "/api/v1/consultations/{id}/messages"): Operation("kela.aino", MESSAGE, _consultation),
    ("POST", "/api/v1/consultations/{id}/messages/preview"): Operation("kela.aino", MESSAGE, _consultation),
    ("POST", "/api/v1/consultations/{id}/read"): Operation("vantaa.sanna", {"message_id": "x"}, _consultation),
    ("POST", "/api/v1/clients"): Operation("kela.aino", {"hetu": "010190-900P"}),
    ("POST", "/api/v1/scan"): Operation("kela.aino", {"text": "Teksti", "purpose": "general"}),
    ("POST", "/api/v1/consultations/search"): Operation("kela.aino", {"q": "Kysymys", "limit": 5}),
    ("POST", "/api/v1/knowledge/search"): Operation("kela.aino", {"q": "Liite", "limit": 5}),
    ("POST", "/api/v1/clients/{ref}/consents"): Operation("kela.aino", CONSENT, _client),
    ("POST", "/api/v1/consents/{id}/versions"): Operation("kela.aino", CONSENT, _consent),
    ("POST", "/api/v1/clients/{ref}/prohibitions"): Operation("kela.aino", {"category": "health"}, _client),
    ("POST", "/api/v1/clients/lookup"): Operation("kela.aino", {"hetu": "010190-900P"}),
    ("POST", "/api/v1/consultations/{id}/attachments"): Operation("kela.aino", {"text": "Liite"}, _consultation),
    ("POST", "/api/v1/consultations/{id}/break-glass"): Operation(
        "kela.tuula", {"justification": "Asiakkaan valitus 2026-4 vaatii keskustelun tarkistamisen."}, _consultation),
    ("POST", "/api/v1/agreements"): Operation("kela.admin", AGREEMENT),
    ("PUT", "/api/v1/agreements/{id}"): Operation("kela.admin", {"reference": "Sopimus 2026/2"}, _agreement),
    ("PUT", "/api/v1/pools/{org}/{name}"): Operation("vantaa.admin", {"backup_pool": "backup"}, _pool),
    ("POST", "/api/v1/roster/periods"): Operation(
        "vantaa.admin", {"user_id": "vantaa.liisa", "starts_at": _in(30), "ends_at": _in(30.2)}),
    ("POST", "/api/v1/roster/rules"): Operation(
        "vantaa.admin", {"user_id": "vantaa.liisa", "weekday": 6, "start": "08:00", "end": "09:00",
                         "valid_from": "2030-01-01"}),
    ("POST", "/api/v1/consultations/{id}/knowledge"): Operation(
        "vantaa.sanna", {"question": "Miten liite toimitetaan?", "answer": "Verkkoasioinnissa.", "topic": "other"},
        _closed),
    ("POST", "/api/v1/dev/token"): Operation("kela.aino", {"user_id": "kela.aino"}),
    ("POST", "/api/v1/sessions/end"): Operation("kela.admin", {"user_id": "kela.eero"}),
    # Query strings: who reads them, with what.
    ("GET", "/api/v1/experts"): Operation("kela.aino"),
    ("GET", "/api/v1/consultations"): Operation("kela.aino"),
    ("GET", "/api/v1/consultations/{id}/messages"): Operation("kela.aino", None, _consultation),
    ("GET", "/api/v1/audit/events"): Operation("kela.tuula"),
    ("GET", "/api/v1/audit/disclosures"): Operation("kela.tuula"),
    ("GET", "/api/v1/audit/export"): Operation("kela.tuula", query={"format": "jsonl"}),
    ("GET", "/api/v1/audit/anomalies"): Operation("kela.tuula"),
    ("GET", "/api/v1/retention/client-record"): Operation("vantaa.ville"),
    ("GET", "/api/v1/audit/proof/inclusion"): Operation("kela.tuula", query={"index": "0", "size": "1"}),
    ("GET", "/api/v1/audit/proof/consistency"): Operation("kela.tuula", query={"first": "1", "second": "1"}),
    ("GET", "/api/v1/clients/{ref}/access-report"): Operation(
        "kela.tuula", None, _client, query={"from": "2020-01-01T00:00:00Z", "reason": "Asiakkaan pyyntö 2026-5"}),
    ("GET", "/api/v1/clients/{ref}/log-extract"): Operation(
        "kela.tuula", None, _client, query={"from": "2020-01-01T00:00:00Z", "reason": "Asiakkaan pyyntö 2026-5"}),
    ("GET", "/api/v1/pools"): Operation("vantaa.admin"),
    ("GET", "/api/v1/roster"): Operation("vantaa.admin"),
    ("GET", "/api/v1/stats"): Operation("kela.admin"),
    ("GET", "/api/v1/stats.csv"): Operation("kela.admin"),
    ("GET", "/api/v1/knowledge"): Operation("kela.aino"),
}

def _reader(path: str) -> Operation:
    """Who calls an operation that only reads or acts on ids in its path."""
    for prefix, user in (("/api/v1/audit", "kela.tuula"), ("/api/v1/roster", "vantaa.admin"),
                         ("/api/v1/pools", "vantaa.admin"), ("/api/v1/knowledge", "vantaa.sanna"),
                         ("/api/v1/prohibitions", "kela.aino"), ("/api/v1/clients", "kela.tuula")):
        if path.startswith(prefix):
            return Operation(user)
    return Operation("kela.aino")


#: Which pool of ids fills a path parameter, by the path segment before it.
ID_POOLS = {"consultations": "consultations", "attachments": "attachments", "agreements": "agreements",
            "consents": "consents", "clients": "clients", "knowledge": "knowledge", "experts": "users",
            "prohibitions": "prohibitions", "pools": "orgs", "periods": "periods", "rules": "rules",
            "reasons": "reasons", "child-welfare-notifications": "consultations"}


class Walk:
    def __init__(self, api: Any, purpose: str) -> None:
        self.api = api
        self.purpose = purpose
        self.ids: dict[str, set[str]] = {name: set() for name in set(ID_POOLS.values())}
        self.ids["users"] = set(ORG_OF)
        self.ids["orgs"] = {"kela", "vantaa"}
        self.submitted: list[tuple[Field, Ident, str, str, int]] = []  # field, ident, form, writer org, status
        self.errors: list[str] = []
        self._shared: dict[tuple[str, str], dict[str, Any]] = {}
        self._clients = 0

    async def client(self) -> str:
        """The walk's client (one is enough: consultations, consents and reports may share it)."""
        if self.ids["clients"]:
            return min(self.ids["clients"])
        self._clients += 1
        n = self._clients
        code = f"0101{n // 100 % 100:02d}-{900 + n % 100}"
        code += CHECK[int(code[:6] + code[7:10]) % 31]
        ref = await self.api.register(code)
        self.ids["clients"].add(ref)
        return ref

    async def claimed(self) -> str:
        fields: dict[str, Any] = {"purpose": self.purpose}
        if self.purpose != "general":
            fields["client_ref"] = await self.client()
        created = await self.api.open_consultation(**fields)
        cid = created["id"]
        await self.api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
        self.ids["consultations"].add(cid)
        return cid

    async def context(self, key: tuple[str, str], op: Operation) -> dict[str, Any]:
        setup = op.setup or _no_setup
        if op.fresh:
            return await setup(self)
        if key not in self._shared:
            self._shared[key] = await setup(self)
        return self._shared[key]

    async def submit(self, f: Field, op: Operation, ident: Ident, form: str) -> None:
        value = ident.value if form == "bare" else f"Tieto: {ident.value}, loppu"
        ctx = await self.context((f.method, f.path), op)
        params = {name: "x" for name in re.findall(r"{(\w+)}", f.path)} | {
            k: str(v) for k, v in ctx.items() if "{" + k + "}" in f.path}
        if f.where == "path":
            params[f.name] = value
        path = f.path.format(**{k: quote(v, safe="") for k, v in params.items()})
        headers = self.api.auth(op.user)
        query = dict(op.query)
        body = json.loads(json.dumps(op.body)) if op.body is not None else None
        if f.where == "query":
            query[f.name] = value
        elif f.where in ("path", "filename"):
            pass
        elif f.where == "body" and body is not None:
            _put(body, f.name, value, purpose=self.purpose, key=(f.method, f.path))
        elif f.where == "body":
            body = {}
            _put(body, f.name, value, purpose=self.purpose, key=(f.method, f.path))
        if f.path == "/api/v1/child-welfare-notifications" and body is not None and f.name != "client_ref":
            body["client_ref"] = await self.client()
        if f.path == "/api/v1/consultations" and f.method == "POST" and body is not None:
            body.setdefault("purpose", self.purpose)
            if self.purpose != "general" and "client_ref" not in body:
                body["client_ref"] = await self.client()
        if f.path.endswith("/attachments") and f.method == "POST":
            form_data = aiohttp.FormData()
            filename = value if f.where == "filename" else "liite.pdf"
            form_data.add_field("file", PDF, filename=filename, content_type="application/pdf")
            for name, part in (body or {}).items():
                if isinstance(part, dict | list):  # an object part of the form is JSON (as the document says)
                    form_data.add_field(name, json.dumps(part), content_type="application/json")
                else:
                    form_data.add_field(name, part)
            response = await self.api.client.post(path, data=form_data, headers=headers)
        else:
            response = await self.api.client.request(f.method, path, params=query, headers=headers,
                                                     json=body)
        text = await response.text()
        if response.status >= 500:
            self.errors.append(f"{f} {ident.variant} {form}: {response.status}")
        if response.status < 300 and f.method in ("POST", "PUT"):
            self._collect_ids(f, text)
        self.submitted.append((f, ident, form, ORG_OF[op.user], response.status))

    def _collect_ids(self, f: Field, text: str) -> None:
        try:
            body = json.loads(text)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        pool = {"/api/v1/consultations": "consultations", "/api/v1/agreements": "agreements",
                "/api/v1/child-welfare-notifications": "consultations",
                "/api/v1/clients/{ref}/consents": "consents", "/api/v1/consents/{id}/versions": "consents",
                "/api/v1/clients/{ref}/prohibitions": "prohibitions", "/api/v1/roster/periods": "periods",
                "/api/v1/roster/rules": "rules", "/api/v1/consultations/{id}/knowledge": "knowledge",
                "/api/v1/consultations/{id}/attachments": "attachments"}.get(f.path)
        if pool and f.method in ("POST", "PUT") and isinstance(body.get("id"), str):
            self.ids[pool].add(body["id"])
        if isinstance(body.get("client_ref"), str):
            self.ids["clients"].add(body["client_ref"])


def _put(body: dict[str, Any], name: str, value: str, *, purpose: str, key: tuple[str, str]) -> None:
    """Set the field ``name`` ("data[].value", "topics[]", "referral.justification") to ``value``."""
    parts = name.split(".")
    targets: list[Any] = [body]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        listed = part.endswith("[]")
        key_name = part[:-2] if listed else part
        nxt: list[Any] = []
        for t in targets:
            if listed:
                current = t.get(key_name)
                if last:
                    t[key_name] = [value]
                    continue
                if not isinstance(current, list) or not current:
                    t[key_name] = current = [{}]
                nxt += current
            elif last:
                t[key_name] = value
            else:
                t.setdefault(key_name, {})
                nxt.append(t[key_name])
        targets = nxt


# -- what other organisations see -----------------------------------------------------------------


class Listener:
    """Every WebSocket frame each demo user receives during the walk."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.frames: dict[str, list[str]] = {u: [] for u in ORG_OF}
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[Any] = []

    async def start(self) -> None:
        for user in ORG_OF:
            ws = await self.api.client.ws_connect("/api/v1/ws")
            await ws.send_json({"type": "auth", "token": self.api.token(user)})
            ready = await ws.receive_json(timeout=5)
            assert ready["type"] == "ready"
            self.sockets.append(ws)
            self.tasks.append(asyncio.create_task(self._drain(user, ws)))

    async def _drain(self, user: str, ws: Any) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.frames[user].append(msg.data)

    async def stop(self) -> None:
        await asyncio.sleep(0.2)
        for ws in self.sockets:
            await ws.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def crawl(walk: Walk, doc: dict[str, Any], haystacks: dict[str, Haystack]) -> None:
    """Every GET route of the document, as every demo user, with every id the walk made."""
    for path, operations in doc["paths"].items():
        if "get" not in operations or path in ("/api/v1/ws",):
            continue
        params = re.findall(r"{(\w+)}", path)
        fillings: list[dict[str, str]] = [{}]
        for param in params:
            segment = path.split("{" + param + "}")[0].rstrip("/").rsplit("/", 1)[-1]
            pool = ID_POOLS.get(segment)
            assert pool is not None, f"no id pool for {path} {{{param}}}: add it to ID_POOLS"
            fillings = [{**f, param: value} for f in fillings for value in sorted(walk.ids[pool])]
        query = {"format": "jsonl"} if path.endswith("/audit/export") else {}
        for user in ORG_OF:
            for filling in fillings:
                url = path.format(**{k: quote(v, safe="") for k, v in filling.items()})
                response = await walk.api.client.get(url, params=query, headers=walk.api.auth(user))
                if response.status >= 500:
                    walk.errors.append(f"GET {url} as {user}: {response.status}")
                haystacks[ORG_OF[user]].add(f"GET {path} as {user}", await response.text())
                disposition = response.headers.get("Content-Disposition")
                if disposition:
                    haystacks[ORG_OF[user]].add(f"GET {path} as {user} (Content-Disposition)", disposition)


# -- the walk ---------------------------------------------------------------------------------------

WORLDS = {
    # Every field with every identifier, in consultations without client data.
    "general": ("general", False),
    # Identity codes again where a consultation has a client, so that they become client links.
    "client": ("tt.application_intake", True),
}


@pytest.mark.parametrize("world", list(WORLDS))
async def test_no_identifier_in_any_writable_field_reaches_storage_the_log_or_another_organisation(api, world):
    """Property: whatever identifier is typed into whatever field of the API, the database holds
    it in clear nowhere (identity codes not even sealed), the audit log not at all, and no user
    of another organisation receives it — over REST or WebSocket."""
    purpose, hetu_only = WORLDS[world]
    doc = await api.call("GET", "/api/v1/openapi.json", expect=200)
    fields = writable_fields(doc)
    assert any(f.name == "note" for f in fields) and any(f.where == "filename" for f in fields)
    missing = sorted({(f.method, f.path) for f in fields if f.where != "path"} - set(OPERATIONS))
    assert not missing, f"operations with text fields that the walk does not know how to call: {missing}"

    walk = Walk(api, purpose)
    listener = Listener(api)
    await listener.start()
    identifiers = Identifiers()
    for f in fields:
        op = OPERATIONS.get((f.method, f.path)) or _reader(f.path)
        for form in ("bare",) if f.where == "path" else ("bare", "sentence"):
            for ident in identifiers.all(hetu_only=hetu_only):
                if f.where == "path" and f.name == "user_id" and ident.kind == "email":
                    continue  # a staff user id may be an e-mail address (a token's subject)
                await walk.submit(f, op, ident, form)
    await listener.stop()
    assert not walk.errors, walk.errors

    stored, sealed = Haystack(), Haystack()
    for where, text in await stored_texts(api.client.app):
        (sealed if where.endswith("(sealed)") else stored).add(where, text)
    seen = {org: Haystack() for org in ("kela", "vantaa")}
    for user, frames in listener.frames.items():
        for frame in frames:
            seen[ORG_OF[user]].add(f"WebSocket frame to {user}", frame)
    async with api.client.app[keys.DB].read() as conn:  # written reasons kept beside the log
        walk.ids["reasons"] = set((await conn.execute(select(tables.audit_reasons.c.id))).scalars())
    await crawl(walk, doc, seen)
    assert not walk.errors, walk.errors

    indexes = {"stored": stored.index(), "sealed": sealed.index(),
               **{org: h.index() for org, h in seen.items()}}
    leaks: list[str] = []
    for f, ident, form, writer_org, status in walk.submitted:
        places = ["stored"] + (["sealed"] if ident.kind == "hetu" else [])
        places += [org for org in seen if org != writer_org]
        for place in places:
            if Haystack.contains(indexes[place], ident):
                haystack = {"stored": stored, "sealed": sealed, **seen}[place]
                leaks.append(f"{f} → {place} {haystack.where(ident)[:2]}: [{ident.kind} {ident.variant}, "
                             f"{form}, HTTP {status}]")
    # One line per field and place, with the variants that got through.
    grouped: dict[str, list[str]] = {}
    for line in leaks:
        head, variant = line.split(": [", 1)
        grouped.setdefault(head, []).append(variant.rstrip("]"))
    report = [f"{head}: {', '.join(v[:4])}{' …' if len(v) > 4 else ''}" for head, v in grouped.items()]
    assert not leaks, f"{len(leaks)} leaks in {len(report)} places:\n" + "\n".join(report)
