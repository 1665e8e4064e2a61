"""What comes back from customers and vendors: delivery receipts, SMS replies that
unsubscribe ("TD", "退订"), and the unsubscribe link of an e-mail.

Vendor callbacks arrive at a per-channel URL whose last part is a signature of the channel
id (`hook_token`), so that nobody can forge receipts or unsubscribe people by guessing ids.
Receipts are matched to messages by the vendor's id (and the recipient, when one vendor id
covers a whole WeCom mass send) or by our key."""

import re

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from siyu.contacts.actions.consent import consent_set
from siyu.contacts.actions.identity import find_identity
from siyu.contacts.models import Consent, ConsentStatus, Contact
from siyu.core.audit import Actor
from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import Receipt, Reply
from siyu.messaging.models import ChannelConfig, OutboxMessage, OutboxStatus

# a reply that is one of these words (case, spaces and punctuation aside) unsubscribes
UNSUBSCRIBE_WORDS = frozenset({"td", "t", "n", "退订", "退", "取消", "unsubscribe", "stop"})
_PUNCTUATION = re.compile(r"[\s\.,!，。！]+")
_SALT_HOOK = "siyu.messaging.hook"
_SALT_UNSUBSCRIBE = "siyu.messaging.unsubscribe"


def hook_token(channel: ChannelConfig) -> str:
    return signing.Signer(salt=_SALT_HOOK).sign(str(channel.pk)).split(":", 1)[1]


def hook_url(channel: ChannelConfig, what: str) -> str:
    """The URL to give the vendor for `receipts` or `replies`."""
    return f"{settings.SIYU_PUBLIC_URL}/hooks/channels/{channel.pk}/{hook_token(channel)}/{what}"


def channel_for_hook(channel_id: int, token: str) -> ChannelConfig | None:
    try:
        signing.Signer(salt=_SALT_HOOK).unsign(f"{channel_id}:{token}")
    except signing.BadSignature:
        return None
    return ChannelConfig.objects.filter(pk=channel_id).select_related("workspace").first()


def apply_receipts(channel: ChannelConfig, transport, receipts: list[Receipt]) -> int:
    """Mark sent messages delivered or bounced; how many changed. A receipt for an unknown
    message, or a second receipt, changes nothing. `transport` is the channel's (it says how
    a receipt's address is looked up)."""
    changed = 0
    now = timezone.now()
    with transaction.atomic():
        for receipt in receipts:
            match = Q()
            if receipt.vendor_id:
                match = Q(vendor_id=receipt.vendor_id)
            elif receipt.key:
                match = Q(key=receipt.key)
            else:
                continue
            messages = OutboxMessage.objects.filter(
                match, channel=channel, status=OutboxStatus.SENT
            )
            if receipt.address and receipt.vendor_id:
                # one vendor id for many recipients (a WeCom mass send)
                ids = _ids_for_address(channel, transport, receipt.address)
                messages = messages.filter(contact_id__in=ids)
            status = OutboxStatus.DELIVERED if receipt.delivered else OutboxStatus.BOUNCED
            reason = "" if receipt.delivered else f"receipt:{receipt.code}"[:120]
            changed += messages.update(
                status=status,
                reason=reason,
                detail=receipt.reason[:2000],
                finished_at=receipt.at or now,
            )
    return changed


def _ids_for_address(channel: ChannelConfig, transport, address: str) -> list[int]:
    kind = transport.address_identity
    app_id = transport.address_app_id()  # an openid belongs to one appid
    identity = find_identity(channel.workspace, kind, address, app_id) if kind else None
    return [identity.contact_id] if identity else []


def is_unsubscribe(text: str) -> bool:
    return _PUNCTUATION.sub("", text or "").lower() in UNSUBSCRIBE_WORDS


def apply_replies(channel: ChannelConfig, transport, replies: list[Reply]) -> int:
    """Withdraw the channel's consent of each contact who replied an unsubscribe word; how
    many were withdrawn. Other replies are left for the conversations feature."""
    withdrawn = 0
    for reply in replies:
        if not is_unsubscribe(reply.text) or not transport.address_identity:
            continue
        try:
            identity = find_identity(channel.workspace, transport.address_identity, reply.address)
        except ValidationError:
            continue  # a number we cannot read is nobody we know
        if identity is None or _withdrawn(identity.contact, transport.consent_channel):
            continue
        with transaction.atomic():
            consent_set(
                workspace=channel.workspace,
                actor=Actor.system(f"reply to {channel.name}"),
                contact=identity.contact,
                channel=transport.consent_channel,
                status="withdrawn",
                source=f"reply: {reply.text[:40]}",
            )
        withdrawn += 1
    return withdrawn


def _withdrawn(contact: Contact, channel: str) -> bool:
    return Consent.objects.filter(
        contact=contact, channel=channel, status=ConsentStatus.WITHDRAWN
    ).exists()


def unsubscribe_token(message: OutboxMessage, consent_channel: str) -> str:
    return signing.dumps(
        {
            "w": message.workspace_id,
            "c": message.contact_id,
            "ch": consent_channel,
            "m": message.pk,
        },
        salt=_SALT_UNSUBSCRIBE,
        compress=True,
    )


def unsubscribe_url(message: OutboxMessage, consent_channel: str) -> str:
    return f"{settings.SIYU_PUBLIC_URL}/u/{unsubscribe_token(message, consent_channel)}"


def read_unsubscribe_token(token: str) -> dict | None:
    try:
        data = signing.loads(token, salt=_SALT_UNSUBSCRIBE)
    except signing.BadSignature:
        return None
    return data if isinstance(data, dict) and {"w", "c", "ch"} <= set(data) else None


def unsubscribe(data: dict) -> Contact | None:
    """Withdraw the consent the token names (once is enough; again changes nothing)."""
    contact = Contact.objects.filter(pk=data["c"], workspace_id=data["w"]).first()
    if contact is None:
        return None
    if _withdrawn(contact, data["ch"]):
        return contact
    with transaction.atomic():
        consent_set(
            workspace=contact.workspace,
            actor=Actor.system("unsubscribe link"),
            contact=contact,
            channel=data["ch"],
            status="withdrawn",
            source="unsubscribe link",
        )
    return contact
