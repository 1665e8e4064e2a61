from django.db import transaction
from django.utils import timezone

from siyu.contacts.models import Channel, Consent, ConsentStatus, Contact
from siyu.contacts.timeline import timeline_add
from siyu.core.audit import Actor, audit
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace


@transaction.atomic
def consent_set(
    *,
    workspace: Workspace,
    actor: Actor,
    contact: Contact,
    channel: str,
    status: str,
    source: str = "",
) -> Consent:
    if channel not in Channel.values:
        raise ValidationError(
            "channel", "expected one of %(choices)s", params={"choices": ", ".join(Channel.values)}
        )
    if status not in ConsentStatus.values:
        raise ValidationError(
            "status",
            "expected one of %(choices)s",
            params={"choices": ", ".join(ConsentStatus.values)},
        )
    source = (source or actor.label)[:120]
    consent, created = Consent.objects.select_for_update().get_or_create(
        workspace=workspace,
        contact=contact,
        channel=channel,
        defaults={"status": status, "source": source},
    )
    before = None if created else consent.status
    if not created:
        consent.status, consent.source, consent.recorded_at = status, source, timezone.now()
        consent.save(update_fields=["status", "source", "recorded_at"])
    timeline_add(contact, "consent", actor, channel=channel, status=status, source=source)
    audit(
        workspace=workspace,
        actor=actor,
        action="consent.set",
        obj=contact,
        before={"channel": channel, "status": before},
        after={"channel": channel, "status": status},
    )
    return consent
