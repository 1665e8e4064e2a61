"""The demo brand's reach: channels, templates, guardrails, a past broadcast with its report,
a draft, and two journeys (a birthday wish and a win-back), drafts until a channel is
enabled (a live journey needs channels that can send).

The channels carry placeholder credentials and are disabled (启用前请填写真实凭据): the demo
never calls a vendor. The past broadcast is planned by the real planner at a date inside
the demo's order history, and its messages' fates (delivered, failed, …) are then drawn by a
stable hash — a simulation of what the vendors would have answered, so that its report has
numbers; its conversions are the demo customers' real demo orders."""

import datetime
from dataclasses import dataclass, field

from django.db import transaction

from siyu.campaigns import actions as broadcasts
from siyu.campaigns import journey_actions as journeys
from siyu.campaigns.models import Broadcast, BroadcastRun, BroadcastStatus
from siyu.campaigns.planner import plan_run
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.messaging import actions as messaging
from siyu.messaging.models import OutboxMessage, OutboxStatus
from siyu.segments.compiler import sample_bucket
from siyu.segments.models import Segment

PLACEHOLDER = "demo-not-a-real-key"


@dataclass
class ReachSummary:
    channels: int = 0
    templates: int = 0
    broadcast_counts: dict = field(default_factory=dict)
    journeys: int = 0


def load_reach(
    workspace: Workspace, *, actor: Actor, admin: Actor, now: datetime.datetime
) -> ReachSummary:
    summary = ReachSummary()
    sms = messaging.channel_create(
        workspace=workspace,
        actor=admin,
        kind="sms_aliyun",
        name="阿里云短信（演示，未启用）",
        settings={"sign_name": "星咖"},
        secrets={"access_key_id": PLACEHOLDER, "access_key_secret": PLACEHOLDER},
        enabled=False,
    )
    messaging.channel_create(
        workspace=workspace,
        actor=admin,
        kind="email",
        name="会员邮件（演示，未启用）",
        settings={
            "host": "smtp.example.cn",
            "port": 465,
            "use_ssl": True,
            "username": "news@example.cn",
            "from_email": "星咖会员 <news@example.cn>",
        },
        secrets={"password": PLACEHOLDER},
        enabled=False,
    )
    summary.channels = 2
    birthday = messaging.template_create(
        workspace=workspace,
        actor=actor,
        kind="sms_aliyun",
        name="生日祝福",
        content={
            "template_code": "SMS_DEMO_01",
            "text": "${name}，生日快乐！送您一张生日券，7 天内到店可用。",
            "params": {"name": "{{ contact.name or '亲爱的会员' }}"},
        },
    )
    coupon = messaging.template_create(
        workspace=workspace,
        actor=actor,
        kind="sms_aliyun",
        name="好久不见·回归券",
        content={
            "template_code": "SMS_DEMO_02",
            "text": "${name}，好久不见！回归券已放入您的账户，3 天内有效。",
            "params": {"name": "{{ contact.name or '亲爱的会员' }}"},
        },
    )
    hello = messaging.template_create(
        workspace=workspace,
        actor=actor,
        kind="sms_aliyun",
        name="新品上市",
        content={
            "template_code": "SMS_DEMO_03",
            "text": "${name}，秋冬新品已上市，会员专享第二杯半价。",
            "params": {"name": "{{ contact.name or '亲爱的会员' }}"},
        },
    )
    messaging.template_create(
        workspace=workspace,
        actor=actor,
        kind="email",
        name="会员月刊",
        content={
            "subject": "{{ contact.name or '会员' }}，本月新品与会员活动",
            "text": "{{ contact.name or '您好' }}：\n本月新品与门店活动请见附件。",
            "html": "<p>{{ contact.name or '您好' }}：</p><p>本月新品与门店活动。</p>",
        },
    )
    summary.templates = 4
    messaging.policy_update(
        workspace=workspace,
        actor=actor,
        caps={"all": {"week": 3}, "sms": {"day": 1}},
        quiet_start=datetime.time(21, 0),
        quiet_end=datetime.time(9, 0),
    )
    shanghai_vip = Segment.objects.filter(workspace=workspace, name="上海高价值会员").first()
    coffee_lovers = Segment.objects.filter(workspace=workspace, name="居家咖啡人群").first()
    summary.broadcast_counts = _past_broadcast(workspace, actor, sms, hello, coffee_lovers, now)
    broadcasts.broadcast_create(
        workspace=workspace,
        actor=actor,
        name="会员日短信（草稿）",
        channel_id=sms.pk,
        template_id=hello.pk,
        include_segments=[shanghai_vip.pk] if shanghai_vip else [],
        holdout_percent=10,
    )
    dormant = Segment.objects.filter(workspace=workspace, builtin_key="stage:dormant").first()
    _journeys(workspace, actor, sms, birthday, coupon, dormant)
    summary.journeys = 2
    return summary


def _past_broadcast(workspace, actor, channel, template, segment, now) -> dict:
    """Planned 20 days ago (at 10:00 Shanghai time, outside quiet hours) by the real planner;
    the vendors' answers simulated."""
    planned = (now - datetime.timedelta(days=20)).replace(hour=2, minute=0, second=0, microsecond=0)
    broadcast = broadcasts.broadcast_create(
        workspace=workspace,
        actor=actor,
        name="秋季新品预热",
        channel_id=channel.pk,
        template_id=template.pk,
        include_segments=[segment.pk] if segment else [],
        holdout_percent=10,
    )
    with transaction.atomic():
        run = BroadcastRun.objects.create(
            workspace=workspace, broadcast=broadcast, number=1, planned_at=planned
        )
        # consent and caps are read as they are now: the demo has no earlier messages
        counts = plan_run(run, planned)
        Broadcast.objects.filter(pk=broadcast.pk).update(
            status=BroadcastStatus.DONE, send_at=planned, updated_at=planned
        )
        _simulate_answers(run.source, workspace.pk, planned)
    return counts


def _simulate_answers(source: str, workspace_id: int, sent_at: datetime.datetime) -> None:
    fates = {OutboxStatus.DELIVERED: [], OutboxStatus.SENT: [], OutboxStatus.FAILED: []}
    for pk, contact_id in OutboxMessage.objects.filter(
        workspace_id=workspace_id, source=source
    ).values_list("pk", "contact_id"):
        draw = sample_bucket(contact_id, "demo-delivery")
        fate = (
            OutboxStatus.FAILED
            if draw < 300
            else OutboxStatus.SENT
            if draw < 800
            else OutboxStatus.DELIVERED
        )
        fates[fate].append(pk)
    for fate, ids in fates.items():
        OutboxMessage.objects.filter(pk__in=ids).update(
            status=fate,
            reason="vendor:isv.MOBILE_NUMBER_ILLEGAL" if fate == OutboxStatus.FAILED else "",
            attempts=1,
            sent_at=None if fate == OutboxStatus.FAILED else sent_at,
            finished_at=sent_at + datetime.timedelta(seconds=30),
            address_masked="138****0000",
            vendor_id="" if fate == OutboxStatus.FAILED else "demo",
        )


def _journeys(workspace, actor, channel, birthday, coupon, dormant) -> None:
    journeys.journey_create(
        workspace=workspace,
        actor=actor,
        name="生日关怀",
        reentry_days=300,
        goal_event="Order Completed",
        attribution_days=7,
        holdout_percent=10,
        graph={
            "trigger": {"type": "date", "field": "birthday", "offset_days": 0, "at": "09:30"},
            "start": "wish",
            "steps": {
                "wish": {"type": "send", "channel_id": channel.pk, "template_id": birthday.pk}
            },
        },
    )
    if dormant is None:
        return
    journeys.journey_create(
        workspace=workspace,
        actor=actor,
        name="沉睡客户召回",
        reentry_days=90,
        goal_event="Order Completed",
        attribution_days=14,
        holdout_percent=10,
        graph={
            "trigger": {"type": "segment_entered", "segment_id": dormant.pk},
            "start": "hello",
            "steps": {
                "hello": {
                    "type": "send",
                    "channel_id": channel.pk,
                    "template_id": coupon.pk,
                    "next": "wait",
                },
                "wait": {"type": "wait", "duration": {"days": 3}, "next": "bought"},
                "bought": {
                    "type": "branch",
                    "yes": None,
                    "no": "again",
                    "rule": {
                        "type": "orders",
                        "metric": "count",
                        "op": "gte",
                        "value": 1,
                        "window": {"last_days": 3},
                    },
                },
                "again": {"type": "send", "channel_id": channel.pk, "template_id": coupon.pk},
            },
        },
    )
