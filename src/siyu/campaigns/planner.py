"""Planning a broadcast run: the whole audience through the guardrails into the outbox, in SQL.

One SELECT over the workspace's contacts says, for each contact in the audience (in an
included segment, or everyone when none is named, and in no excluded segment), which group
it falls in and why:

1. **holdout**: a stable hash of the broadcast and the contact under the holdout share. It
   comes first and ignores the guardrails, so that the held-out and the targeted are
   comparable (uplift is measured on intention to treat).
2. **suppressed** with the first guardrail that stops it: `no_consent` (the channel's consent
   rule), `no_address` (no identity the channel can address), `frequency_cap:<scope>/<window>`
   (the reach policy's caps over what was already sent).
3. **send**: everyone else.

`plan_run` writes that SELECT into `AudienceMember` rows (the frozen audience) and the
`send` group into the outbox (one `INSERT … SELECT` each; a key already queued adds
nothing), due now or when quiet hours end. `preview` runs the same SELECT as counts only.
The sender checks every guardrail again per message when it goes out."""

import datetime
from typing import Any

from django.db import connection
from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from siyu.campaigns.models import AudienceMember, Broadcast, BroadcastRun
from siyu.contacts.models import Consent, ConsentStatus, Contact, Identity
from siyu.messaging import guardrails
from siyu.messaging.channels import transport_class
from siyu.messaging.models import ChannelConfig, OutboxMessage, OutboxStatus
from siyu.segments.compiler import stable_bucket
from siyu.segments.models import SegmentMember

SUPPRESSIONS = ("no_consent", "no_address", "frequency_cap")


def _in_segments(workspace_id: int, segment_ids: list[int]) -> Q:
    members = SegmentMember.objects.filter(
        workspace_id=workspace_id, segment_id__in=segment_ids
    ).values("contact_id")
    return Q(id__in=members)


def audience(broadcast: Broadcast):
    """The broadcast's contacts: in an included segment (everyone if none), in no excluded."""
    qs = Contact.objects.filter(workspace_id=broadcast.workspace_id)
    if broadcast.include_segments:
        qs = qs.filter(_in_segments(broadcast.workspace_id, broadcast.include_segments))
    if broadcast.exclude_segments:
        qs = qs.exclude(_in_segments(broadcast.workspace_id, broadcast.exclude_segments))
    return qs


def _consent_blocked(channel: ChannelConfig, consent_channel: str | None) -> Q | None:
    if not consent_channel:
        return None
    consents = Consent.objects.filter(
        workspace_id=channel.workspace_id, channel=consent_channel, contact_id=OuterRef("id")
    )
    if channel.consent_required:
        return ~Q(Exists(consents.filter(status=ConsentStatus.GRANTED)))
    return Q(Exists(consents.filter(status=ConsentStatus.WITHDRAWN)))


def _no_address(channel: ChannelConfig, transport) -> Q | None:
    kind = transport.address_identity
    if not kind:
        return None
    app_id = transport(channel.settings, {}).address_app_id()
    held = Identity.objects.filter(
        workspace_id=channel.workspace_id, kind=kind, app_id=app_id, contact_id=OuterRef("id")
    )
    return ~Q(Exists(held))


def _capped(channel: ChannelConfig, now: datetime.datetime) -> list[tuple[str, Q]]:
    """One condition per cap (guardrails.caps_for): the contact already got that many."""
    policy = guardrails.policy_for(channel.workspace)
    conditions = []
    for cap in guardrails.caps_for(policy, channel.kind, channel.settings):
        if cap.limit == 0:
            conditions.append((cap.name, Q(pk__isnull=False)))
            continue
        sent = OutboxMessage.objects.filter(
            workspace_id=channel.workspace_id,
            status__in=guardrails.COUNTED,
            sent_at__gte=now - cap.window,
        )
        if cap.kinds is not None:
            sent = sent.filter(channel__kind__in=cap.kinds)
        over = sent.values("contact_id").annotate(n=Count("id")).filter(n__gte=cap.limit)
        conditions.append((cap.name, Q(id__in=over.values("contact_id"))))
    return conditions


def classified(broadcast: Broadcast, now: datetime.datetime):
    """The audience, each contact with `group` and `reason` (see the module docstring)."""
    channel = broadcast.channel
    transport = transport_class(channel.kind)
    threshold = round(float(broadcast.holdout_percent) * 100)
    holdout = Q(pk__isnull=True)  # never, unless a share is set
    if threshold > 0:
        bucket = stable_bucket(F("id"), f"broadcast:{broadcast.pk}")
        holdout = Q(_bucket__lt=threshold)
    whens_group = [When(holdout, then=Value("holdout"))]
    whens_reason: list[When] = []
    checks: list[tuple[str, Q | None]] = [
        ("no_consent", _consent_blocked(channel, transport.consent_channel)),
        ("no_address", _no_address(channel, transport)),
        *[(f"frequency_cap:{name}", q) for name, q in _capped(channel, now)],
    ]
    for reason, condition in checks:
        if condition is None:
            continue
        whens_group.append(When(condition, then=Value("suppressed")))
        whens_reason.append(When(condition, then=Value(reason)))
    qs = audience(broadcast)
    if threshold > 0:
        qs = qs.annotate(_bucket=bucket)
    return qs.annotate(
        group=Case(*whens_group, default=Value("send"), output_field=CharField()),
        reason=Case(
            When(holdout, then=Value("")),
            *whens_reason,
            default=Value(""),
            output_field=CharField(),
        ),
    )


def preview(broadcast: Broadcast, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The funnel a run would have now, without writing anything: included, audience (after
    exclusions), holdout, each suppression reason, and to_send."""
    now = now or timezone.now()
    rows = classified(broadcast, now).order_by().values("group", "reason").annotate(n=Count("id"))
    counts = _funnel(rows)
    included = Contact.objects.filter(workspace_id=broadcast.workspace_id)
    if broadcast.include_segments:
        included = included.filter(_in_segments(broadcast.workspace_id, broadcast.include_segments))
    counts["included"] = included.count()
    return counts


def _funnel(rows) -> dict[str, Any]:
    counts: dict[str, Any] = {"audience": 0, "holdout": 0, "suppressed": {}, "to_send": 0}
    for row in rows:
        n = row["n"]
        counts["audience"] += n
        if row["group"] == "holdout":
            counts["holdout"] += n
        elif row["group"] == "suppressed":
            counts["suppressed"][row["reason"]] = counts["suppressed"].get(row["reason"], 0) + n
        else:
            counts["to_send"] += n
    return counts


def plan_run(run: BroadcastRun, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Freeze the run's audience and queue its messages (inside the caller's transaction);
    the funnel, also stored on the run."""
    now = now or timezone.now()
    broadcast = run.broadcast
    channel = broadcast.channel
    rows = classified(broadcast, now).values("id", "group", "reason")
    select_sql, params = rows.query.sql_with_params()
    members = AudienceMember._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {members} (workspace_id, run_id, contact_id, "group", reason) '
            f"SELECT %s, %s, a.id, a.grp, a.reason FROM ({_renamed(select_sql)}) a",
            [broadcast.workspace_id, run.pk, *params],
        )
    policy = guardrails.policy_for(channel.workspace)
    due_at = guardrails.quiet_until(policy, now) or now
    _queue(run, channel, broadcast.template_id, due_at, now)
    counted = (
        AudienceMember.objects.filter(run=run)
        .values("group", "reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = _funnel(counted)
    counts["due_at"] = due_at.isoformat()
    run.counts = counts
    run.save(update_fields=["counts"])
    return counts


def _renamed(select_sql: str) -> str:
    """The classified SELECT with its `group` column renamed (a reserved word in SQL)."""
    return f'SELECT id, "group" AS grp, reason FROM ({select_sql}) c'


def _queue(run: BroadcastRun, channel: ChannelConfig, template_id: int, due_at, now) -> None:
    outbox, members = OutboxMessage._meta.db_table, AudienceMember._meta.db_table
    source = run.source
    # ON CONFLICT on both databases: only the key's uniqueness may skip a row (SQLite's
    # INSERT OR IGNORE would also swallow a NOT NULL violation, dropping every message)
    conflict, verb = "ON CONFLICT DO NOTHING", "INSERT"
    key = "%s || CAST(m.contact_id AS TEXT) || %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"{verb} INTO {outbox} (workspace_id, key, contact_id, channel_id, template_id, "
            "source, status, reason, detail, address_masked, attempts, due_at, vendor_id, "
            "vendor_ref, created_at) "
            f"SELECT m.workspace_id, {key}, m.contact_id, %s, %s, %s, %s, '', '', '', 0, %s, '', "
            f"'', %s FROM {members} m WHERE m.run_id = %s AND m.\"group\" = 'send' {conflict}",
            [
                f"{source}:",
                f":{channel.kind}",
                channel.pk,
                template_id,
                source,
                OutboxStatus.QUEUED,
                _db_time(due_at),
                _db_time(now),
                run.pk,
            ],
        )


def _db_time(value: datetime.datetime):
    return connection.ops.adapt_datetimefield_value(value)
