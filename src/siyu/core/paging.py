"""Keyset ("cursor") paging shared by every list: an opaque cursor holds the sort values of
the last row returned, so a page never uses OFFSET and never skips or repeats a row."""

import base64
import datetime
import json
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from siyu.core.errors import ValidationError

BAD_CURSOR = "not a cursor returned by this list"


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime.datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The cursor's values; a 422 naming `cursor` for anything this module did not write.
    The last value is always the integer id tiebreak."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != length:
            raise ValueError
        if type(values[-1]) is not int:  # a crafted cursor must not 500
            raise ValueError
        return values
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationError("cursor", BAD_CURSOR) from exc


def decode_time(value: Any) -> datetime.datetime:
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None:
        raise ValidationError("cursor", BAD_CURSOR)
    return moment


def newest_first_page(
    qs: QuerySet, time_field: str, cursor: str, limit: int
) -> tuple[list[Any], str | None]:
    """One page of `qs` by (`time_field` desc, id desc), and the cursor of the next page."""
    if cursor:
        stamp, pk = decode_cursor(cursor, 2)
        moment = decode_time(stamp)
        qs = qs.filter(Q(**{f"{time_field}__lt": moment}) | Q(**{time_field: moment}, pk__lt=pk))
    rows = list(qs.order_by(f"-{time_field}", "-id")[: limit + 1])
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor([getattr(last, time_field), last.pk]) if last else None
    return rows[:limit], next_cursor
