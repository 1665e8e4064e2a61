"""Checks broadcasts and journeys share: a name, the holdout share, the attribution window, a
goal event, and what can be a row id."""

from decimal import Decimal, InvalidOperation
from typing import Any

from siyu.core.errors import ValidationError

MAX_HOLDOUT = Decimal("50")


def is_row_id(value: Any) -> bool:
    """Whether a value can be a primary key (a positive 64-bit integer): larger numbers
    overflow the database driver instead of matching nothing."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def clean_name(value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > 120:
        raise ValidationError("name", "expected 1 to 120 characters")
    return name


def clean_share(value: Any) -> Decimal:
    """A holdout share in percent, 0 to 50, to one decimal."""
    try:
        share = Decimal(str(value or 0)).quantize(Decimal("0.1"))
    except InvalidOperation:
        raise ValidationError("holdout_percent", "expected a number") from None
    if not share.is_finite() or not 0 <= share <= MAX_HOLDOUT:
        raise ValidationError("holdout_percent", "expected 0 to 50 (percent)")
    return share


def clean_attribution_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 90:
        raise ValidationError("attribution_days", "expected 1 to 90 days")
    return value


def clean_goal(value: Any, *, required: bool) -> str:
    """A goal event name (a journey may have none; a broadcast always measures one)."""
    goal = (value or "").strip() if isinstance(value, str | type(None)) else ""
    if (required and not goal) or len(goal) > 120:
        raise ValidationError("goal_event", "expected an event name")
    return goal
