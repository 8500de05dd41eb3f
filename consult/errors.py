"""The one error hierarchy: each error has an HTTP status, a stable code and a client-safe message.

Detail meant for operators never goes into the message; anything that is not an ``ApiError``
becomes an opaque 500, which the tests treat as a bug.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "internal"
    default_message = "Internal error."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"
    default_message = "The request is malformed."


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"
    default_message = "A valid bearer token is required."


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    default_message = "Not allowed."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"
    default_message = "Method not allowed."


class Conflict(ApiError):
    status = 409
    code = "conflict"
    default_message = "Conflict with the current state."


class PayloadTooLarge(ApiError):
    status = 413
    code = "too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    default_message = "Unsupported content type."


class Unprocessable(ApiError):
    status = 422
    code = "invalid"
    default_message = "The content is invalid."


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests."


class ConfigError(Exception):
    """A configuration value is missing or wrong; start-up stops naming the key."""
