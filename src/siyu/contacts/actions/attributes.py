import re

from django.db import transaction

from siyu.contacts.models import AttributeDefinition, AttributeType
from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, ValidationError
from siyu.core.models import Workspace

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


@transaction.atomic
def attribute_define(
    *,
    workspace: Workspace,
    actor: Actor,
    key: str,
    label: str,
    type: str,
    choices: list[str] | None = None,
) -> AttributeDefinition:
    if not KEY_RE.match(key or ""):
        raise ValidationError("key", "lower-case letters, digits and _, starting with a letter")
    if type not in AttributeType.values:
        raise ValidationError(
            "type",
            "expected one of %(choices)s",
            params={"choices": ", ".join(AttributeType.values)},
        )
    choices = [str(c).strip() for c in (choices or []) if str(c).strip()]
    if type == AttributeType.CHOICE and not choices:
        raise ValidationError("choices", "a choice attribute needs at least one choice")
    if AttributeDefinition.objects.filter(workspace=workspace, key=key).exists():
        raise Conflict("attribute %(key)s exists", details={"field": "key"}, params={"key": key})
    definition = AttributeDefinition.objects.create(
        workspace=workspace,
        key=key,
        label=(label or key).strip()[:60],
        type=type,
        choices=choices if type == AttributeType.CHOICE else [],
    )
    audit(
        workspace=workspace,
        actor=actor,
        action="attribute.define",
        obj=definition,
        after={"key": key, "type": type, "choices": definition.choices},
    )
    return definition


@transaction.atomic
def attribute_delete(
    *, workspace: Workspace, actor: Actor, definition: AttributeDefinition
) -> None:
    """Remove the definition; values already stored on contacts are kept but no longer shown."""
    audit(
        workspace=workspace,
        actor=actor,
        action="attribute.delete",
        obj=definition,
        before={"key": definition.key, "type": definition.type},
    )
    definition.delete()
