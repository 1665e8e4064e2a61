"""Custom attribute values checked against the workspace's typed schema."""

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from siyu.contacts.models import AttributeDefinition, AttributeType
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace


def schema_for(workspace: Workspace) -> dict[str, AttributeDefinition]:
    return {d.key: d for d in AttributeDefinition.objects.filter(workspace=workspace)}


def coerce_value(definition: AttributeDefinition, value: Any, field: str) -> Any:
    """Return the JSON-storable form of `value`, or raise naming `field`."""
    if value is None or value == "":
        return None
    kind = definition.type
    if kind == AttributeType.TEXT:
        text = str(value)
        if len(text) > 2000:
            raise ValidationError(field, "longer than 2000 characters")
        return text
    if kind == AttributeType.NUMBER:
        if isinstance(value, bool):
            raise ValidationError(field, "expected a number")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValidationError(
                field, "expected a number, got %(value)s", params={"value": value}
            ) from exc
        if not number.is_finite():
            raise ValidationError(field, "expected a finite number")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == AttributeType.DATE:
        if isinstance(value, datetime.date):
            return value.isoformat()
        try:
            return datetime.date.fromisoformat(str(value)).isoformat()
        except ValueError as exc:
            raise ValidationError(
                field, "expected a date YYYY-MM-DD, got %(value)s", params={"value": value}
            ) from exc
    if kind == AttributeType.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes", "是", "y"}:
            return True
        if text in {"false", "0", "no", "否", "n"}:
            return False
        raise ValidationError(
            field, "expected true or false, got %(value)s", params={"value": value}
        )
    if kind == AttributeType.CHOICE:
        if str(value) not in definition.choices:
            raise ValidationError(
                field,
                "%(value)s is not one of the choices",
                params={"value": value},
                choices=definition.choices,
            )
        return str(value)
    raise ValidationError(field, "unknown attribute type %(kind)s", params={"kind": kind})


def clean_attributes(workspace: Workspace, values: dict[str, Any]) -> dict[str, Any]:
    """Validate a partial update; a None value means 'remove this attribute'."""
    if not isinstance(values, dict):
        raise ValidationError("attributes", "expected an object")
    schema = schema_for(workspace)
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        definition = schema.get(key)
        if definition is None:
            raise ValidationError(
                f"attributes.{key}", "no such attribute in this workspace", known=sorted(schema)
            )
        cleaned[key] = coerce_value(definition, value, f"attributes.{key}")
    return cleaned
