"""The Segment-compatible collection endpoints: POST /v1/identify, /v1/track, /v1/page,
/v1/screen, /v1/group, /v1/alias and /v1/batch (and analytics.js's short forms /v1/i, /v1/t,
..., /v1/b). Plain Django views: they read the body (gzip, size limits), authenticate the
write key, parse messages (schemas.py) and hand the good ones to `events_ingest`.

The contract, including what a batch with some bad messages does, is in docs/tracking.md."""

import base64
import binascii
import zlib
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from siyu.accounts.access import client_ip
from siyu.core.errors import SiyuError
from siyu.tracking.actions import events_ingest, writekey_authenticate
from siyu.tracking.models import WriteKey
from siyu.tracking.schemas import (
    MAX_BATCH_BYTES,
    Envelope,
    MessageError,
    loads,
    parse_messages,
    parse_time,
)

# gzip of incompressible data is a little larger than the data itself.
MAX_RAW_BYTES = MAX_BATCH_BYTES + 16 * 1024

CORS_HEADERS = {
    # Write keys are public by design and no cookie is read: any origin may send.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


class Unauthorized(SiyuError):
    status = 401
    code = "unauthorized"


UNAUTHORIZED = (
    "a valid write key is required: send it as the HTTP Basic username with an empty "
    "password, or as writeKey in the body"
)


def _respond(body: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    for name, value in CORS_HEADERS.items():
        response[name] = value
    return response


def _error(exc: SiyuError) -> JsonResponse:
    return _respond(exc.as_dict(), status=exc.status)


# --- request body -----------------------------------------------------------------------------


def _too_large(limit: int) -> SiyuError:
    return SiyuError(
        "request body over the %(limit)s-byte (500 KB) limit",
        code="request_too_large",
        params={"limit": limit},
        details={"limit": limit},
    )


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress every gzip member, refusing to produce more than `limit` bytes (so a
    small "gzip bomb" cannot make the server inflate gigabytes)."""
    out = bytearray()
    try:
        while data:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large(limit)
            if not inflater.eof:
                raise SiyuError("the gzip body is truncated", code="invalid_gzip")
            data = inflater.unused_data
    except zlib.error as exc:
        raise SiyuError("the body is not valid gzip", code="invalid_gzip") from exc
    return bytes(out)


def read_body(request: HttpRequest) -> Any:
    """The request's JSON, after gzip, within the size limit; SiyuError (400) otherwise."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_RAW_BYTES:
        raise _too_large(MAX_BATCH_BYTES)
    raw = request.read(MAX_RAW_BYTES + 1)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        raw = gunzip(raw, MAX_BATCH_BYTES)
    elif encoding not in ("", "identity"):
        raise SiyuError(
            "Content-Encoding %(encoding)s is not supported; send gzip or plain JSON",
            code="unsupported_encoding",
            params={"encoding": encoding},
            status=415,
        )
    if len(raw) > MAX_BATCH_BYTES:
        raise _too_large(MAX_BATCH_BYTES)
    if not raw.strip():
        raise SiyuError("the body is empty; send a JSON object", code="invalid_json")
    try:
        body = loads(raw)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise SiyuError(
            "the body is not valid JSON: %(error)s",
            code="invalid_json",
            params={"error": str(exc)[:200]},
        ) from exc
    if not isinstance(body, dict):
        raise SiyuError("the body must be a JSON object", code="invalid_json")
    return body


# --- authentication ---------------------------------------------------------------------------


def basic_username(request: HttpRequest) -> str | None:
    """The username of an `Authorization: Basic` header (the write key), or None if the
    request has no Basic header at all. A malformed one is a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized(UNAUTHORIZED) from exc
    return decoded.partition(":")[0]


def authenticate(raw: Any) -> WriteKey:
    key = writekey_authenticate(raw) if isinstance(raw, str) else None
    if key is None:
        raise Unauthorized(UNAUTHORIZED)
    return key


# --- the endpoints ----------------------------------------------------------------------------


def collect(request: HttpRequest, message_type: str | None) -> JsonResponse:
    """One message (message_type given by the URL) or a batch (message_type None)."""
    received_at = timezone.now()
    header_key = basic_username(request)
    # A key in the Authorization header is checked before the body is read; a caller
    # without a valid key only ever learns that (401), never what is wrong with its body.
    key = authenticate(header_key) if header_key is not None else None
    try:
        body = read_body(request)
    except SiyuError:
        if key is None:
            raise Unauthorized(UNAUTHORIZED) from None
        raise
    if key is None:
        key = authenticate(body.get("writeKey"))

    if message_type is None:
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise SiyuError(
                "batch must be a list of messages", code="invalid_batch", details={"field": "batch"}
            )
        batch_context = body.get("context")
        if batch_context is not None and not isinstance(batch_context, dict):
            raise SiyuError(
                "context must be an object", code="invalid_batch", details={"field": "context"}
            )
        try:
            batch_sent_at = parse_time(body.get("sentAt"), "sentAt")
        except MessageError as exc:
            raise SiyuError(str(exc), code="invalid_batch", details={"field": "sentAt"}) from exc
    else:
        messages, batch_context, batch_sent_at = [body], None, None

    envelope = Envelope(
        received_at=received_at, ip=client_ip(request), sent_at=batch_sent_at, context=batch_context
    )
    accepted, rejected = parse_messages(messages, envelope, message_type)
    if not accepted:
        if not rejected:
            raise SiyuError(
                "batch is empty: send at least one message",
                code="invalid_batch",
                details={"field": "batch"},
            )
        first = rejected[0]
        message = first.describe()
        if len(messages) > 1:
            message = f"no message was accepted ({len(rejected)} rejected); first: {message}"
        raise SiyuError(
            message,
            code="invalid_message" if message_type else "invalid_batch",
            details={
                "index": first.index,
                "field": first.field,
                "rejected": [r.as_dict() for r in rejected],
            },
        )
    events_ingest(workspace=key.workspace, events=accepted)
    response: dict[str, Any] = {"success": True}
    if rejected:
        response["rejected"] = [r.as_dict() for r in rejected]
    return _respond(response)


@csrf_exempt
def endpoint(request: HttpRequest, message_type: str | None = None) -> HttpResponse:
    if request.method == "OPTIONS":  # CORS preflight from a browser
        response = HttpResponse(status=204)
        for name, value in CORS_HEADERS.items():
            response[name] = value
        return response
    if request.method != "POST":
        error = SiyuError("use POST", code="method_not_allowed", status=405)
        response = _error(error)
        response["Allow"] = "POST, OPTIONS"
        return response
    try:
        return collect(request, message_type)
    except SiyuError as exc:
        return _error(exc)
