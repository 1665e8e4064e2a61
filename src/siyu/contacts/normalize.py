"""Canonical forms of identity values, and how they are shown to roles without PII access."""

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from siyu.contacts.models import IdentityKind
from siyu.core.errors import ValidationError


def normalize_phone(raw: str, field: str = "phone") -> str:
    """E.164, default region CN: '138 1234 5678' -> '+8613812345678'."""
    try:
        number = phonenumbers.parse(str(raw).strip(), settings.SIYU_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            field, "not a phone number: %(value)s", params={"value": raw}
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(field, "not a valid phone number: %(value)s", params={"value": raw})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str, field: str = "email") -> str:
    value = str(raw).strip().lower()
    if len(value) > 254:  # RFC 5321's limit for a forward path
        raise ValidationError(field, "longer than 254 characters")
    try:
        validate_email(value)
    except DjangoValidationError as exc:
        raise ValidationError(
            field, "not an email address: %(value)s", params={"value": raw}
        ) from exc
    return value


_KINDS = frozenset(IdentityKind.values)  # the enum's .values builds a new list per call


def normalize_identity(kind: str, raw: str, field: str = "value") -> str:
    if kind not in _KINDS:
        raise ValidationError(
            "kind",
            "unknown identity kind %(kind)s",
            params={"kind": kind},
            choices=IdentityKind.values,
        )
    if kind == IdentityKind.PHONE:
        return normalize_phone(raw, field)
    if kind == IdentityKind.EMAIL:
        return normalize_email(raw, field)
    value = str(raw).strip()
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > 255:
        raise ValidationError(field, "longer than 255 characters")
    return value


def mask_phone(e164: str) -> str:
    """'+8613812345678' -> '138****5678' (national digits, middle four hidden)."""
    digits = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(digits) <= 7:
        return digits[:2] + "*" * max(len(digits) - 4, 1) + digits[-2:]
    return digits[:3] + "****" + digits[-4:]


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if local else email


def mask(kind: str, value: str) -> str:
    if kind == IdentityKind.PHONE:
        return mask_phone(value)
    if kind == IdentityKind.EMAIL:
        return mask_email(value)
    return value


_PHONEISH = re.compile(r"^\+?[\d\s\-()]{7,20}$")


def looks_like_pii(q: str) -> bool:
    """Whether a search text is (probably) a phone number or an email address."""
    q = q.strip()
    return "@" in q or bool(_PHONEISH.match(q))


def search_candidates(q: str) -> list[tuple[str, str]]:
    """The (kind, canonical value) pairs a free-text query could be, for identity lookup."""
    q = q.strip()
    out: list[tuple[str, str]] = []
    if _PHONEISH.match(q):
        try:
            out.append((IdentityKind.PHONE, normalize_phone(q)))
        except ValidationError:
            pass
    if "@" in q:
        out.append((IdentityKind.EMAIL, q.lower()))
    for kind in IdentityKind.values:
        if kind not in (IdentityKind.PHONE, IdentityKind.EMAIL):
            out.append((kind, q))
    return out
