"""Where a message goes: the contact's identity of the kind the channel addresses (a phone,
an e-mail, an openid of one appid, a WeCom external_userid), decrypted only here, when the
message is sent. With several, the newest."""

from siyu.contacts.models import PII_KINDS, Identity
from siyu.core import crypto


def addresses_for(
    workspace_id: int, kind: str | None, app_id: str, contact_ids: list[int]
) -> dict[int, tuple[str, str]]:
    """contact id → (address, masked address) for those who have one."""
    if not kind or not contact_ids:
        return {}
    rows = (
        Identity.objects.filter(
            workspace_id=workspace_id, kind=kind, app_id=app_id, contact_id__in=contact_ids
        )
        .order_by("contact_id", "-id")
        .values_list("contact_id", "value", "value_enc", "masked")
    )
    found: dict[int, tuple[str, str]] = {}
    for contact_id, value, value_enc, masked in rows:
        if contact_id in found:
            continue
        clear = crypto.decrypt(value_enc) if kind in PII_KINDS else value
        found[contact_id] = (clear, masked or clear)
    return found
