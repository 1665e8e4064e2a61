"""A signed webhook: one JSON POST per message to the channel's URL.

Every request carries `Content-Type: application/json`, `User-Agent: siyu-webhook/1`,
`Idempotency-Key: <message key>` (the same on every retry of a message, so the receiver
drops repeats) and `X-Siyu-Signature` (signature.py explains the scheme).

The body is the template's `body` rendered and parsed as a JSON object, or, without one,
`{"key": ..., "contact_id": ..., "content": {...}}`.

Answers: 2xx is SENT (the vendor id is the response's `id` when it is JSON with one);
408, 425, 429, 5xx, a timeout or a broken connection is RETRY (with `Retry-After` seconds
when given), and the rest of the batch waits too; any other status, redirects included
(they are not followed), is FAILED with code `http:<status>`."""

import datetime
import ipaddress
import json
import math
import socket
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings as django_settings

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import (
    FieldSpec,
    Outcome,
    Outgoing,
    SendResult,
    Transport,
    VendorError,
)
from siyu.messaging.channels.webhook.signature import HEADER, sign

USER_AGENT = "siyu-webhook/1"
MAX_BODY_BYTES = 256 * 1024
DEFAULT_TIMEOUT_SECONDS = 10
RETRYABLE_STATUSES = frozenset({408, 425, 429})
MAX_RETRY_AFTER = 86400.0


class WebhookTransport(Transport):
    kind = "webhook"
    consent_channel = None
    address_identity = None
    max_batch = 10
    default_rate = 10.0
    idempotent_resend = True  # the receiver dedupes by our Idempotency-Key

    settings_fields = (
        FieldSpec("url", "URL", help="http:// or https:// address that receives the POSTs"),
        FieldSpec(
            "timeout_seconds",
            "Timeout (seconds)",
            kind="int",
            required=False,
            default=DEFAULT_TIMEOUT_SECONDS,
            help="how long to wait for the receiver's answer before retrying later",
        ),
    )
    secret_fields = (
        FieldSpec(
            "signing_secret",
            "Signing secret",
            help="keys the HMAC-SHA256 in the X-Siyu-Signature header",
        ),
    )
    template_fields = (
        FieldSpec(
            "body",
            "JSON body",
            kind="json",
            required=False,
            template=True,
            help=(
                "a JSON object; write values as {{ contact.name|tojson }} so quotes stay "
                'valid. Empty: {"key", "contact_id", "content"}'
            ),
        ),
    )

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> None:
        """ValidationError naming the setting when the URL or the timeout is unusable."""
        url = settings.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("url", "expected an http:// or https:// URL")
        timeout = settings.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ValidationError("timeout_seconds", "expected a positive number of seconds")

    def check_content(self, content: dict[str, Any]) -> None:
        source = content.get("body")
        if source:
            _parse_body(source)

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        try:
            self.validate_settings(self.settings)
        except ValidationError as exc:
            raise VendorError("config", exc.message, retryable=False) from exc
        secret = self.secrets.get("signing_secret") or ""
        if not secret:
            raise VendorError("config", "signing_secret is not set", retryable=False)
        blocked = internal_address(self.settings["url"])
        if blocked:
            raise VendorError(
                "blocked_address",
                f"the URL resolves to the internal address {blocked} "
                "(allow with SIYU_WEBHOOK_ALLOW_PRIVATE=1)",
                retryable=False,
            )
        results: list[SendResult] = []
        for position, message in enumerate(batch):
            result = self._post(message, secret)
            results.append(result)
            if result.outcome == Outcome.RETRY:
                # the receiver is down or busy: the rest of the batch waits with this one
                results += [
                    SendResult(
                        m.key,
                        Outcome.RETRY,
                        code=result.code,
                        reason=result.reason,
                        retry_after=result.retry_after,
                    )
                    for m in batch[position + 1 :]
                ]
                break
        return results

    def _post(self, message: Outgoing, secret: str) -> SendResult:
        try:
            body = _payload(message)
        except ValidationError as exc:
            return SendResult(message.key, Outcome.FAILED, code="bad_body", reason=exc.message)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": message.key,
            HEADER: sign(secret, body, int(time.time())),
        }
        timeout = float(self.settings.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)
        try:
            response = self.http.post(
                self.settings["url"],
                content=body,
                headers=headers,
                timeout=timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            return SendResult(message.key, Outcome.RETRY, code="timeout", reason=str(exc))
        except httpx.TransportError as exc:
            return SendResult(message.key, Outcome.RETRY, code="network", reason=str(exc))
        return _result(message.key, response)


def _parse_body(source: str) -> dict[str, Any]:
    """The rendered `body` as a JSON object, or a ValidationError naming the field."""
    if len(source.encode()) > MAX_BODY_BYTES:
        raise ValidationError("body", "larger than %(n)s bytes", {"n": MAX_BODY_BYTES})
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            "body",
            "not valid JSON: line %(line)s column %(column)s: %(error)s",
            {"line": exc.lineno, "column": exc.colno, "error": exc.msg},
        ) from exc
    if not isinstance(value, dict):
        raise ValidationError("body", "expected a JSON object")
    return value


def _payload(message: Outgoing) -> bytes:
    source = message.content.get("body")
    if source:
        data = _parse_body(source)
    else:
        content = {k: v for k, v in message.content.items() if k != "body"}
        data = {"key": message.key, "contact_id": message.contact_id, "content": content}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _result(key: str, response: httpx.Response) -> SendResult:
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(key, Outcome.SENT, vendor_id=_response_id(response))
    reason = f"HTTP {status}: {response.text[:200]}".strip()
    if status in RETRYABLE_STATUSES or status >= 500:
        return SendResult(
            key,
            Outcome.RETRY,
            code=f"http:{status}",
            reason=reason,
            retry_after=_retry_after(response),
        )
    return SendResult(key, Outcome.FAILED, code=f"http:{status}", reason=reason)


def _response_id(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    value = data.get("id") if isinstance(data, dict) else None
    return "" if value is None or isinstance(value, dict | list) else str(value)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (a number or an HTTP date), at most a day."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value) - datetime.datetime.now(datetime.UTC)
            seconds = seconds.total_seconds()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def internal_address(url: str) -> str | None:
    """The private, loopback or otherwise internal address the URL's host resolves to, if
    any: operators must not be able to make siyu call into its own network (SSRF), unless
    SIYU_WEBHOOK_ALLOW_PRIVATE says that is the point. (Resolved again by the request
    itself; a host that changes its answer in between is not caught.)"""
    if django_settings.SIYU_WEBHOOK_ALLOW_PRIVATE:
        return None
    host = urlsplit(url).hostname or ""
    try:
        answers = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return None  # the request fails the usual way
    for *_, sockaddr in answers:
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return str(ip)
    return None
