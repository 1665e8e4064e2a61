"""One error type for the whole product. Views and the API turn it into a response:
`{"code": ..., "message": ..., "details": {...}}` with the HTTP status it carries.

A message is an English template with named `params`: the API answers in English, the
console shows `localized()` (the template through gettext, then the params)."""

from typing import Any

from django.utils.translation import gettext


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
        params: dict[str, Any] | None = None,
    ):
        self.template = message
        self.params = params or {}
        self.message = message % self.params if self.params else message
        super().__init__(self.message)
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}

    def localized(self) -> str:
        """The message in the active language (for the console)."""
        text = gettext(self.template)
        return text % self.params if self.params else text

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationError(SiyuError):
    """A bad value; `field` is the path of the offending field (`identities[0].value`)."""

    status = 422
    code = "invalid"

    def __init__(
        self, field: str, message: str, params: dict[str, Any] | None = None, **extra: Any
    ):
        super().__init__(message, details={"field": field, **extra}, params=params)
        self.field = field
        self.message = f"{field}: {self.message}"
        self.args = (self.message,)


class NotFound(SiyuError):
    status = 404
    code = "not_found"


class Conflict(SiyuError):
    status = 409
    code = "conflict"


class PermissionDenied(SiyuError):
    status = 403
    code = "forbidden"
