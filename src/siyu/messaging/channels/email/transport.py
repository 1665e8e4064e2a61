"""E-mail over SMTP, through Django's mail: one connection per batch.

Each message is multipart: the text body, plus an HTML alternative when the template has
one. It carries `Message-ID: <sha256(key)[:32]@domain of from_email>` and `X-Siyu-Key` so
that a bounce or a complaint can be matched back to its message, and, when the outbox gives
an `unsubscribe_url`, `List-Unsubscribe` with `List-Unsubscribe-Post` (RFC 8058 one-click)
and a footer link, unless the body already shows the URL.

Answers: a 5xx to a recipient or to the message is FAILED for that message (`smtp:550`); a
4xx is RETRY; a refused login is FAILED for the whole batch (the channel is misconfigured);
a server that cannot be reached, or a connection that breaks, is RETRY for every message it
had not accepted yet. SMTP cannot tell later whether a message arrived, so `lookup` is None.
"""

import contextlib
import hashlib
import html
import re
import smtplib
import ssl
from email.utils import parseaddr
from typing import Any
from urllib.parse import quote

from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.html import strip_tags

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import (
    FieldSpec,
    Outcome,
    Outgoing,
    SendResult,
    Transport,
    VendorError,
)

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
MAX_SUBJECT = 200
MAX_BODY_CHARS = 500_000
DEFAULT_TIMEOUT_SECONDS = 30


class EmailTransport(Transport):
    kind = "email"
    consent_channel = "email"
    address_identity = "email"
    max_batch = 50
    default_rate = 10.0
    idempotent_resend = False  # a resent mail is a second mail in the inbox

    settings_fields = (
        FieldSpec("host", "SMTP host", help="e.g. smtpdm.aliyun.com or smtp.exmail.qq.com"),
        FieldSpec(
            "port",
            "Port",
            kind="int",
            default=465,
            help="465: TLS from the start (use SSL); 587: STARTTLS (use TLS); 25: plain relay",
        ),
        FieldSpec("username", "Username", required=False),
        FieldSpec("use_tls", "Use STARTTLS", kind="bool", required=False, default=False),
        FieldSpec("use_ssl", "Use SSL/TLS", kind="bool", required=False, default=True),
        FieldSpec("from_email", "From", help="e.g. 品牌 <news@brand.cn>"),
        FieldSpec("reply_to", "Reply-To", required=False),
        FieldSpec(
            "unsubscribe_mailto",
            "Unsubscribe mailbox",
            required=False,
            help="adds a mailto: to List-Unsubscribe, e.g. unsubscribe@brand.cn",
        ),
        FieldSpec(
            "timeout_seconds",
            "Timeout (seconds)",
            kind="int",
            required=False,
            default=DEFAULT_TIMEOUT_SECONDS,
        ),
    )
    secret_fields = (FieldSpec("password", "Password", required=False),)
    template_fields = (
        FieldSpec("subject", "Subject", template=True, help=f"one line, ≤ {MAX_SUBJECT}"),
        FieldSpec("text", "Text", kind="textarea", template=True, required=False),
        FieldSpec("html", "HTML", kind="html", template=True, required=False),
    )

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> None:
        if settings.get("use_tls") and settings.get("use_ssl"):
            raise ValidationError("use_tls", "use either STARTTLS or SSL/TLS, not both")
        _, address = parseaddr(settings.get("from_email") or "")
        if "@" not in address:
            raise ValidationError("from_email", "expected an address such as news@brand.cn")

    def check_content(self, content: dict[str, Any]) -> None:
        subject = content.get("subject") or ""
        if not subject.strip():
            raise ValidationError("subject", "the subject is empty")
        if "\n" in subject or "\r" in subject:
            raise ValidationError("subject", "the subject must be one line")
        if len(subject) > MAX_SUBJECT:
            raise ValidationError("subject", "longer than %(n)s characters", {"n": MAX_SUBJECT})
        if not (content.get("text") or "").strip() and not (content.get("html") or "").strip():
            raise ValidationError("text", "the message needs a text or an HTML body")
        for name in ("text", "html"):
            if len(content.get(name) or "") > MAX_BODY_CHARS:
                raise ValidationError(name, "longer than %(n)s characters", {"n": MAX_BODY_CHARS})

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        try:
            connection = self._open()
        except VendorError as error:  # nothing was sent: the same answer for every message
            return [error.result(m.key) for m in batch]
        try:
            return self._send_over(connection, batch)
        finally:
            _close_quietly(connection)

    def _open(self) -> BaseEmailBackend:
        """A connection that is logged in, or a VendorError saying why there is none."""
        try:
            self.validate_settings(self.settings)
            connection = get_connection(
                SMTP_BACKEND,
                host=self.settings["host"],
                port=int(self.settings.get("port") or 465),
                username=self.settings.get("username") or "",
                password=self.secrets.get("password") or "",
                use_tls=bool(self.settings.get("use_tls")),
                use_ssl=bool(self.settings.get("use_ssl")),
                timeout=float(self.settings.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS),
            )
        except (ValidationError, KeyError, ValueError) as exc:
            raise VendorError("config", f"the channel's settings: {exc}", retryable=False) from exc
        try:
            connection.open()
        except smtplib.SMTPAuthenticationError as exc:
            raise VendorError(
                "smtp:auth",
                f"the SMTP server refused the login; check username and password ({_text(exc)})",
                retryable=False,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise _connection_error(exc) from exc
        return connection

    def _send_over(self, connection: BaseEmailBackend, batch: list[Outgoing]) -> list[SendResult]:
        results: list[SendResult] = []
        for position, message in enumerate(batch):
            try:
                email = self._build(message)
                accepted = connection.send_messages([email])
            except smtplib.SMTPServerDisconnected as exc:  # smtplib's word for a timeout too
                results += _connection_lost(batch[position:], exc)
                break
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()), (0, b""))
                results.append(_answer(message.key, code, _text(text)))
            except smtplib.SMTPResponseException as exc:
                results.append(_answer(message.key, exc.smtp_code, _text(exc.smtp_error)))
            except smtplib.SMTPException as exc:  # e.g. SMTPUTF8 not supported
                results.append(_failed(message.key, "smtp", _text(exc)))
            except OSError as exc:  # a socket error outside smtplib's own wrapping
                results += _connection_lost(batch[position:], exc)
                break
            except ValueError as exc:  # an address or header Django refuses to write
                results.append(_failed(message.key, "invalid", str(exc)))
            else:
                if accepted:
                    vendor_id = email.extra_headers["Message-ID"]
                    results.append(SendResult(message.key, Outcome.SENT, vendor_id=vendor_id))
                else:
                    results.append(_failed(message.key, "no_address", "no recipient address"))
        return results

    def _build(self, message: Outgoing) -> EmailMultiAlternatives:
        content = message.content
        from_email = self.settings["from_email"]
        text, html_body = content.get("text") or "", content.get("html") or ""
        if not text.strip():
            text = _text_of_html(html_body)
        headers = {
            "Message-ID": message_id(message.key, from_email),
            "X-Siyu-Key": message.key,
        }
        unsubscribe_url = content.get("unsubscribe_url") or ""
        if unsubscribe_url:
            headers.update(self._unsubscribe_headers(unsubscribe_url, message.key))
            text = _text_footer(text, unsubscribe_url)
            html_body = _html_footer(html_body, unsubscribe_url) if html_body else ""
        reply_to = self.settings.get("reply_to")
        email = EmailMultiAlternatives(
            subject=content["subject"],
            body=text,
            from_email=from_email,
            to=[message.address],
            reply_to=[reply_to] if reply_to else None,
            headers=headers,
        )
        if html_body:
            email.attach_alternative(html_body, "text/html")
        return email

    def _unsubscribe_headers(self, url: str, key: str) -> dict[str, str]:
        targets = [f"<{url}>"]
        mailbox = self.settings.get("unsubscribe_mailto")
        if mailbox:
            # the key in the subject lets whoever reads that mailbox find the message
            targets.append(f"<mailto:{mailbox}?subject={quote(f'unsubscribe {key}')}>")
        return {
            "List-Unsubscribe": ", ".join(targets),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


def message_id(key: str, from_email: str) -> str:
    """The Message-ID of the message with this key: the same on every attempt, so a
    receiving server that already has it may drop the copy."""
    domain = parseaddr(from_email)[1].rpartition("@")[2] or "siyu.invalid"
    domain = domain.encode("idna").decode("ascii")
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _answer(key: str, code: int, text: str) -> SendResult:
    """SENT never; FAILED for a permanent (5xx) answer, RETRY for a transient one."""
    outcome = Outcome.FAILED if 500 <= code < 600 else Outcome.RETRY
    return SendResult(key, outcome, code=f"smtp:{code}", reason=text[:500])


def _connection_lost(unsent: list[Outgoing], exc: Exception) -> list[SendResult]:
    """The connection is gone: the message in flight and the rest go again later (what the
    server accepted before is SENT already)."""
    reason = f"the connection broke: {_text(exc)}"
    return [
        SendResult(m.key, Outcome.RETRY, code="smtp:disconnected", reason=reason) for m in unsent
    ]


def _failed(key: str, code: str, reason: str) -> SendResult:
    return SendResult(key, Outcome.FAILED, code=code, reason=reason[:500])


def _connection_error(exc: Exception) -> VendorError:
    """Why the connection could not be opened, and whether trying later can help."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return VendorError("smtp:tls", f"the server's certificate: {exc}", retryable=False)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return VendorError("smtp:starttls", _text(exc), retryable=False)
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        return VendorError(f"smtp:{code}", _text(exc.smtp_error), retryable=not 500 <= code < 600)
    return VendorError("smtp:connect", f"cannot reach the SMTP server: {exc}", retryable=True)


def _close_quietly(connection: BaseEmailBackend) -> None:
    """QUIT after the batch; what the server says to it no longer matters."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        connection.close()  # drops the socket even when QUIT fails


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, smtplib.SMTPResponseException):
        return f"{value.smtp_code} {_text(value.smtp_error)}"
    return str(value)


def _text_footer(text: str, url: str) -> str:
    return text if url in text else f"{text.rstrip()}\n\n退订: {url}\n"


def _html_footer(body: str, url: str) -> str:
    escaped = html.escape(url, quote=True)
    if url in body or escaped in body:
        return body
    link = f'<p style="font-size:12px;color:#888"><a href="{escaped}">退订</a></p>'
    closing = re.search(r"</body\s*>", body, re.IGNORECASE)
    if closing:
        return body[: closing.start()] + link + body[closing.start() :]
    return body + link


def _text_of_html(body: str) -> str:
    """A plain-text part for an HTML-only template: its text, without tags."""
    text = html.unescape(strip_tags(body))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()
