"""One error type for the whole product. Views and the API turn it into a response:
`{"code": ..., "message": ..., "details": {...}}` with the HTTP status it carries."""

from typing import Any


class SiyuError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationError(SiyuError):
    status = 422
    code = "invalid"

    def __init__(self, field: str, message: str, **extra: Any):
        super().__init__(f"{field}: {message}", details={"field": field, **extra})


class NotFound(SiyuError):
    status = 404
    code = "not_found"


class Conflict(SiyuError):
    status = 409
    code = "conflict"


class PermissionDenied(SiyuError):
    status = 403
    code = "forbidden"
