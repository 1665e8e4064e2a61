"""Phone numbers and emails inside events are PII like those on contacts: they are stored
encrypted. A sealed value is `{"$encrypted": "<Fernet token>"}`; `unseal` gives it back to
the code that resolves identities."""

from typing import Any

from siyu.core import crypto

PII_KEYS = frozenset({"phone", "mobile", "phone_number", "phonenumber", "email"})
SEALED = "$encrypted"


def _seal_object(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    return {
        key: {SEALED: crypto.encrypt(str(value))}
        if key.lower() in PII_KEYS and isinstance(value, str | int) and value != ""
        else value
        for key, value in values.items()
    }


def seal_event(fields: dict[str, Any]) -> dict[str, Any]:
    """Encrypt the PII keys of an event's traits, properties and context.traits."""
    sealed = dict(fields)
    for name in ("traits", "properties"):
        if name in sealed:
            sealed[name] = _seal_object(sealed[name])
    context = sealed.get("context")
    if isinstance(context, dict) and isinstance(context.get("traits"), dict):
        sealed["context"] = {**context, "traits": _seal_object(context["traits"])}
    return sealed


def unseal(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {SEALED}:
        return crypto.decrypt(value[SEALED])
    return value
