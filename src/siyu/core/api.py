"""Shared API plumbing: bearer API-key auth and the one error format
`{"code", "message", "details"}` for every failure."""

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from siyu.accounts.access import key_actor, require
from siyu.accounts.actions import apikey_authenticate
from siyu.core.errors import SiyuError
from siyu.core.uploads import TOO_LARGE, UploadTooLarge


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        key = apikey_authenticate(token)
        if key is None:
            return None
        request.workspace = key.workspace
        request.actor = key_actor(request, key)
        return key


def allowed(request: HttpRequest, perm: str):
    """Check the permission matrix for the request's key; returns (workspace, actor)."""
    require(request.actor, perm)
    return request.workspace, request.actor


def _field_of(loc: list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload", "data")]
    return ".".join(parts) or "body"


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(SiyuError)
    def siyu_error(request, exc: SiyuError):
        return api.create_response(request, exc.as_dict(), status=exc.status)

    @api.exception_handler(NinjaValidationError)
    def validation_error(request, exc: NinjaValidationError):
        if getattr(request, "upload_refused", "") == TOO_LARGE:
            # The file was stopped while it arrived (siyu/core/uploads.py), so it is
            # "missing": say what happened instead.
            return siyu_error(request, UploadTooLarge("file"))
        first = exc.errors[0] if exc.errors else {}
        field = _field_of(list(first.get("loc", [])))
        errors = [
            {"field": _field_of(list(e.get("loc", []))), "message": e.get("msg", "")}
            for e in exc.errors
        ]
        body = {
            "code": "invalid",
            "message": f"{field}: {first.get('msg', 'invalid')}",
            "details": {"field": field, "errors": errors},
        }
        return api.create_response(request, body, status=422)

    @api.exception_handler(AuthenticationError)
    def auth_error(request, exc):
        body = {
            "code": "unauthorized",
            "message": "a valid API key is required (Authorization: Bearer <key>)",
            "details": {},
        }
        return api.create_response(request, body, status=401)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        body = {"code": "error", "message": str(exc), "details": {}}
        return api.create_response(request, body, status=exc.status_code)
