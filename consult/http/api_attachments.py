"""Attachments over HTTP: a streamed, size-limited multipart upload and a policy-checked download."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from consult.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http.api import confirmation
from consult.http.principal import caller, context
from consult.http.route import Route, names
from consult.http.shapes import FilePart, convert
from consult.model import wire

CHUNK = 64 * 1024


async def _read_limited(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            raise PayloadTooLarge(f"Attachments are limited to {limit} bytes.")
    return bytes(data)


async def upload_attachment(request: web.Request) -> web.Response:
    consultation_id = v.path_id(request)
    if not request.content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType("Upload as multipart/form-data with a 'file' part.")
    settings = request.app[keys.SETTINGS]
    try:
        reader = await request.multipart()
        fields: dict[str, str] = {}
        data: FilePart | None = None
        filename = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("Nested multipart is not accepted.")
            if part.name == "file":
                if data is not None:
                    raise Unprocessable("One file per upload.", code="invalid_field")
                filename = part.filename
                data = FilePart(await _read_limited(part, settings.max_upload_bytes))
            elif part.name in ("text", "consent_id"):
                fields[part.name] = (await _read_limited(part, 4096)).decode("utf-8", errors="strict")
            elif part.name == "sensitive_confirmation":
                # JSON {reason, categories}, as in a message: up to 1000 characters of reason.
                fields[part.name] = (await _read_limited(part, 8192)).decode("utf-8", errors="strict")
            else:
                raise Unprocessable(f"Unknown part: {part.name!r:.40}", code="unknown_field")
    except (ValueError, UnicodeDecodeError, AssertionError, HttpProcessingError):
        raise BadRequest("The multipart body is malformed.") from None
    if not data:
        raise Unprocessable("A non-empty 'file' part is required.", code="invalid_field")
    parts = read_body_parts(request, data, fields)
    body = await request.app[keys.ATTACHMENTS].upload(
        caller(request), consultation_id, filename, parts.file, parts.text or "", parts.consent_id, context(request),
        confirmation=confirmation(parts.sensitive_confirmation))
    return web.json_response(body, status=201, dumps=wire.dumps)


def read_body_parts(request: web.Request, file: FilePart, fields: dict[str, str]) -> s.Upload:
    """The parts of an upload as ``Upload``, the type that documents them: the
    ``sensitive_confirmation`` part is JSON, read by the edge's one JSON loader, and checked like
    the same object in a JSON body."""
    values: dict[str, object] = {**fields, "file": file}
    if "sensitive_confirmation" in fields:
        try:
            values["sensitive_confirmation"] = v.loads(fields["sensitive_confirmation"])
        except v.BadJson as exc:
            raise Unprocessable(f"The sensitive_confirmation part must be JSON: {exc}", code="invalid_field") from None
    return convert(values, s.Upload, names(request))


async def download_attachment(request: web.Request) -> web.Response:
    who = caller(request)
    found = await request.app[keys.ATTACHMENTS].download(who, v.path_id(request), context(request))
    response = web.Response(body=found.data, content_type=found.content_type)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(found.filename)}"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response


ATTACHMENT_ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v1/consultations/{id}/attachments", upload_attachment,
          "Upload a PDF, PNG or JPEG (checked by content, size-limited); it travels as an "
          "application.attachment item of a new message",
          who="participant",
          body=s.Upload,
          response=s.Attachment, status=201, errors=(400, 401, 403, 404, 409, 413, 415, 422),
          body_type="multipart/form-data",
          other_responses=((409, "Closed, or a caption that looks like a category withheld from a recipient "
                                 "(code sensitive_text, with the flagged passages): describe the file "
                                 "neutrally or upload again with the sensitive_confirmation part",
                            s.SensitiveError),)),
    Route("GET", "/api/v1/attachments/{id}", download_attachment,
          "Download, if the policy lets you see the item that carries it",
          who="participant", response=bytes, errors=(401, 404),
          content_type="application/octet-stream", secret=True),
)
