"""Attachments: type by content, size limit, sealed at rest, served only where the policy allows."""

from __future__ import annotations

import aiohttp

from consult.http import keys

from tests.synthetic import hetu

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"ATTACHMENT-MARKER-PNG"
PDF = b"%PDF-1.7\n" + b"ATTACHMENT-MARKER-PDF" + b"\n%%EOF\n"


async def _consultation(api, purpose="tt.application_intake", n=40):
    ref = await api.register(hetu(n))
    created = await api.open_consultation(purpose=purpose, client_ref=ref)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.sanna", expect=200)
    return created["id"]


def _form(data: bytes, filename: str = "liite.pdf", content_type: str = "application/pdf", **fields):
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def _upload(api, cid, user, form):
    response = await api.client.post(f"/api/v1/consultations/{cid}/attachments", data=form, headers=api.auth(user))
    return response.status, await response.json()


async def test_kela_advisor_sends_an_attachment_the_expert_can_download(api):
    cid = await _consultation(api)
    status, body = await _upload(api, cid, "kela.aino", _form(PDF, "vuokrasopimus.pdf", text="rent contract"))
    assert status == 201, body
    assert body["content_type"] == "application/pdf" and body["size"] == len(PDF)
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    item = page["items"][0]["data"][0]
    assert item["category"] == "application.attachment" and item["attachment_id"] == body["id"]
    assert item["value"] == "vuokrasopimus.pdf"
    response = await api.client.get(f"/api/v1/attachments/{body['id']}", headers=api.auth("vantaa.sanna"))
    assert response.status == 200 and response.content_type == "application/pdf"
    assert await response.read() == PDF
    assert "vuokrasopimus.pdf" in response.headers["Content-Disposition"]
    assert "sandbox" in response.headers["Content-Security-Policy"]
    # Not a participant: 404.
    response = await api.client.get(f"/api/v1/attachments/{body['id']}", headers=api.auth("kela.eero"))
    assert response.status == 404


async def test_type_is_checked_by_content_not_by_claim(api):
    cid = await _consultation(api, n=41)
    status, body = await _upload(api, cid, "kela.aino", _form(b"<html><script>alert(1)</script>", "x.pdf"))
    assert status == 422 and body["error"]["code"] == "unsupported_file"
    status, body = await _upload(api, cid, "kela.aino", _form(PNG, "kuva.pdf", "application/pdf"))
    assert status == 201 and body["content_type"] == "image/png"


async def test_size_limit_is_413_and_nothing_is_stored(api):
    cid = await _consultation(api, n=42)
    limit = api.client.app[keys.SETTINGS].max_upload_bytes
    status, body = await _upload(api, cid, "kela.aino", _form(PDF + b"0" * limit))
    assert status == 413
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    assert page["items"] == []


async def test_policy_decides_who_gets_the_file(api):
    """Municipality → Kela advisor has no rule for application.attachment: the advisor gets neither item nor file."""
    cid = await _consultation(api, n=43)
    status, body = await _upload(api, cid, "vantaa.sanna", _form(PNG, "scan.png", "image/png", text="see attached"))
    assert status == 201
    assert body["message"]["policy"]["withheld"][0]["category"] == "application.attachment"
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    item = page["items"][0]["data"][0]
    assert item["withheld"] is True and "attachment_id" not in item and "scan.png" not in str(page)
    response = await api.client.get(f"/api/v1/attachments/{body['id']}", headers=api.auth("kela.aino"))
    assert response.status == 404
    response = await api.client.get(f"/api/v1/attachments/{body['id']}", headers=api.auth("vantaa.sanna"))
    assert response.status == 200


async def test_malformed_uploads(api):
    cid = await _consultation(api, n=44)
    response = await api.client.post(f"/api/v1/consultations/{cid}/attachments", json={"file": "x"},
                                     headers=api.auth("kela.aino"))
    assert response.status == 415
    response = await api.client.post(
        f"/api/v1/consultations/{cid}/attachments", data=b"--zz\r\ngarbage",
        headers={**api.auth("kela.aino"), "Content-Type": "multipart/form-data; boundary=zz"})
    assert response.status in (400, 422)
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="o.bin")
    status, body = await _upload(api, cid, "kela.aino", form)
    assert status == 422
