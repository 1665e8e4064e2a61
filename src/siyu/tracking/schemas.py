"""The Segment message format: parse and check one message into the fields of an `Event`,
or say exactly why it is refused. Pure functions, no database: the views call these, and
the action stores what they return. The contract is in docs/tracking.md."""

import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.utils.dateparse import parse_datetime

from siyu.tracking.models import MessageType

MAX_MESSAGE_BYTES = 32 * 1024  # one message, as compact UTF-8 JSON (Segment: 32 KB)
MAX_BATCH_BYTES = 500 * 1024  # one request body, after gzip decompression (Segment: 500 KB)
MAX_ID_LENGTH = 255  # userId, anonymousId, messageId, previousId, groupId, event name

TYPES = tuple(MessageType.values)


class MessageError(Exception):
    """A message that cannot be stored: `field` is the offending field, `reason` says why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Rejection:
    index: int
    message_id: str | None
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "messageId": self.message_id,
            "field": self.field,
            "reason": self.reason,
        }

    def describe(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"message {self.index}: {where}{self.reason}"


# --- JSON -------------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def loads(data: bytes) -> Any:
    """Strict JSON: no NaN/Infinity (PostgreSQL's jsonb refuses them). Raises ValueError."""
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def encoded_size(message: dict) -> int:
    """The message's size as compact UTF-8 JSON. Raises MessageError for text that cannot be
    stored (lone surrogates, NUL characters)."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise MessageError("", "contains text that is not valid Unicode") from exc
    if "\\u0000" in text and _has_nul(message):  # json.dumps escapes NUL as \u0000
        raise MessageError("", "contains a NUL character (\\u0000)")
    return size


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


# --- fields -----------------------------------------------------------------------------------


def parse_time(value: Any, field: str) -> datetime.datetime | None:
    """An ISO-8601 date-time (a naive one is taken as UTC); None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MessageError(field, "must be an ISO-8601 date-time string")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise MessageError(field, f"not an ISO-8601 date-time: {value[:40]!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def _text_id(message: dict, field: str) -> str:
    """An id field: a string or a number (Segment turns numbers into strings); '' if absent."""
    value = message.get(field)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MessageError(field, "must be a string")
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise MessageError(field, f"longer than {MAX_ID_LENGTH} characters")
    return text


def _object(message: dict, field: str) -> dict:
    value = message.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(field, "must be an object")
    return value


def _name(message: dict, field: str, *, required: bool) -> str:
    value = message.get(field)
    if value is None or value == "":
        if required:
            raise MessageError(field, "is required")
        return ""
    if not isinstance(value, str):
        raise MessageError(field, "must be a string")
    if len(value) > MAX_ID_LENGTH:
        raise MessageError(field, f"longer than {MAX_ID_LENGTH} characters")
    return value


def merge_context(base: dict, own: dict) -> dict:
    """The batch-level context under the message's own: the message wins, key by key,
    recursively into nested objects (so a batch `library` and a message `page` both stay)."""
    merged = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_context(merged[key], value)
        else:
            merged[key] = value
    return merged


def message_id_of(message: Any) -> str | None:
    """The messageId as sent, for naming a rejected message (None if there is none)."""
    if isinstance(message, dict):
        value = message.get("messageId")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:MAX_ID_LENGTH]
    return None


# --- one message ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """What every message of one request shares."""

    received_at: datetime.datetime
    ip: str | None
    sent_at: datetime.datetime | None = None  # batch-level sentAt
    context: dict | None = None  # batch-level context


def parse_message(message: Any, envelope: Envelope, message_type: str | None = None) -> dict:
    """The fields of an `Event` (without workspace) for one message, or MessageError.
    `message_type` is given by the single-message endpoints (/v1/track, ...); in a batch
    the message's own `type` decides."""
    if not isinstance(message, dict):
        raise MessageError("", "a message must be a JSON object")
    size = encoded_size(message)
    if size > MAX_MESSAGE_BYTES:
        raise MessageError(
            "", f"message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte (32 KB) limit"
        )

    kind = message_type or message.get("type")
    if not isinstance(kind, str) or kind not in TYPES:
        shown = kind if isinstance(kind, str) else json.dumps(kind)
        raise MessageError("type", f"unknown type {shown[:40]!r}; one of {', '.join(TYPES)}")

    user_id = _text_id(message, "userId")
    anonymous_id = _text_id(message, "anonymousId")
    previous_id = _text_id(message, "previousId")
    group_id = _text_id(message, "groupId")
    if kind == MessageType.ALIAS:
        if not previous_id:
            raise MessageError("previousId", "an alias needs previousId")
        if not user_id:
            raise MessageError("userId", "an alias needs userId")
    elif not user_id and not anonymous_id:
        raise MessageError("userId", "userId or anonymousId is required")
    if kind == MessageType.GROUP and not group_id:
        raise MessageError("groupId", "a group call needs groupId")

    event = ""
    properties = _object(message, "properties")
    if kind == MessageType.TRACK:
        event = _name(message, "event", required=True)
    elif kind in (MessageType.PAGE, MessageType.SCREEN):
        event = _name(message, "name", required=False)
        category = _name(message, "category", required=False)
        if category and "category" not in properties:
            properties = {**properties, "category": category}
    traits = _object(message, "traits")
    _object(message, "integrations")  # accepted and checked, not stored (no destinations)

    context = _object(message, "context")
    if envelope.context:
        context = merge_context(envelope.context, context)
    if not context.get("ip") and envelope.ip:
        context = {**context, "ip": envelope.ip}

    original = parse_time(message.get("timestamp"), "timestamp")
    sent_at = parse_time(message.get("sentAt"), "sentAt") or envelope.sent_at
    try:
        if original is None:
            timestamp = envelope.received_at
        elif sent_at is None:
            timestamp = original
        else:  # the device clock's error is (receivedAt - sentAt); remove it
            timestamp = original + (envelope.received_at - sent_at)
    except OverflowError as exc:
        raise MessageError("timestamp", "out of range after clock correction") from exc

    message_id = _text_id(message, "messageId") or str(uuid.uuid4())
    return {
        "message_id": message_id,
        "type": kind,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": previous_id,
        "group_id": group_id,
        "event": event,
        "properties": properties,
        "traits": traits,
        "context": context,
        "timestamp": timestamp,
        "original_timestamp": original,
        "sent_at": sent_at,
        "received_at": envelope.received_at,
    }


def parse_messages(
    messages: list, envelope: Envelope, message_type: str | None = None
) -> tuple[list[dict], list[Rejection]]:
    """Every message parsed: the good ones' fields, and a Rejection for each bad one."""
    accepted: list[dict] = []
    rejected: list[Rejection] = []
    for index, message in enumerate(messages):
        try:
            accepted.append(parse_message(message, envelope, message_type))
        except MessageError as exc:
            rejected.append(Rejection(index, message_id_of(message), exc.field, exc.reason))
    return accepted, rejected
