"""The errors services raise: each with its HTTP status, its code and a message written for
users (DESIGN.md section 5). `supportdesk.web.errors` turns them into the one envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AppError(Exception):
    """An error whose message is safe to show to the user."""

    status: int = 500
    code: str = "internal_error"
    message: str = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.message = message or self.message
        self.details = dict(details or {})
        self.headers = dict(headers or {})
        super().__init__(self.message)


class BadRequest(AppError):
    status, code, message = 400, "bad_request", "The request could not be understood."


class ValidationFailed(AppError):
    """Input was understood but is not acceptable; `details` maps field -> message."""

    status, code, message = 422, "validation_error", "Some fields need attention."

    def __init__(self, fields: Mapping[str, str], message: str | None = None):
        super().__init__(message, details=fields)
        self.fields = dict(fields)


class Unauthenticated(AppError):
    status, code, message = 401, "unauthenticated", "Please log in."


class InvalidCredentials(AppError):
    status, code, message = 401, "invalid_credentials", "Email or password is incorrect."


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "You are not allowed to do that."


class NotFound(AppError):
    status, code, message = 404, "not_found", "Nothing was found here."


class MethodNotAllowed(AppError):
    status, code, message = 405, "method_not_allowed", "This method is not allowed here."


class Conflict(AppError):
    status, code, message = 409, "conflict", "That conflicts with the current state."


class LengthRequired(AppError):
    status, code, message = 411, "length_required", "Send the request with a Content-Length."


class PayloadTooLarge(AppError):
    status, code, message = 413, "payload_too_large", "The request is too large."


class UnsupportedMediaType(AppError):
    status, code, message = 415, "unsupported_media_type", "That content type is not supported."


class RateLimited(AppError):
    status, code, message = 429, "rate_limited", "Too many attempts; please wait and retry."

    def __init__(self, retry_after: int, message: str | None = None):
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status, code, message = (
        503,
        "service_unavailable",
        ("The service is temporarily unavailable; please retry shortly."),
    )


class InternalError(AppError):
    status, code, message = 500, "internal_error", "Something went wrong on our side."
