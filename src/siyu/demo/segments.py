"""The demo brand's segments: the built-ins (stages, tiers, RFM), the dynamic segments an
operator of a coffee chain builds first, one static list from a store, then a refresh of
every score and segment and a CLV fit, so that the segment pages and the CLV report show
the year of activity (activity.py) from the start.

Every segment is created through `segments.actions.segment_create`, as the console would,
by the demo's first operator; the fit is the nightly job's, by the system."""

import datetime
import time
from dataclasses import dataclass, field

from django.utils import timezone

from siyu.contacts.models import ContactTag
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.demo import data
from siyu.segments import actions as segment_actions
from siyu.segments.clv_actions import clv_fit_workspace
from siyu.segments.models import ClvFit, Segment, SegmentKind
from siyu.segments.refresh import refresh_workspace
from siyu.tracking.models import Order

LAST_WEEK = {"last_days": 7}

# (name, description, rule, real time): what the brand's operators watch.
EXAMPLES: tuple[tuple[str, str, dict, bool], ...] = (
    (
        "上海高价值会员",
        "上海的中高消费会员（近一年消费 1,000 元以上）：静安店新品品鉴会优先邀请。",
        {
            "type": "and",
            "rules": [
                {"type": "field", "field": "city", "op": "eq", "value": "上海"},
                {"type": "score", "field": "tier", "op": "in", "value": ["high", "mid"]},
            ],
        },
        False,
    ),
    (
        "7天内生日可短信触达",
        "未来 7 天过生日、且授权了短信的客户：生日前一天发送生日券短信。",
        {
            "type": "and",
            "rules": [
                {
                    "type": "field",
                    "field": "birthday",
                    "op": "anniversary_within_next_days",
                    "value": 7,
                },
                {"type": "consent", "channel": "sms", "op": "is", "value": "granted"},
            ],
        },
        False,
    ),
    (
        "加购未下单",
        "近 7 天在小程序加购、但 7 天内没有下单：企微顾问跟进，或推送限时优惠券。实时更新。",
        {
            "type": "and",
            "rules": [
                {
                    "type": "event",
                    "event": "Product Added",
                    "op": "gte",
                    "value": 1,
                    "window": LAST_WEEK,
                },
                {"type": "orders", "metric": "count", "op": "eq", "value": 0, "window": LAST_WEEK},
            ],
        },
        True,
    ),
    (
        "30天浏览3次以上未购买",
        "近 30 天浏览商品 3 次以上、但 30 天内没有下单：有兴趣未转化，适合推送新人券或爆款。",
        {
            "type": "and",
            "rules": [
                {
                    "type": "event",
                    "event": "Product Viewed",
                    "op": "gte",
                    "value": 3,
                    "window": {"last_days": 30},
                },
                {
                    "type": "orders",
                    "metric": "count",
                    "op": "eq",
                    "value": 0,
                    "window": {"last_days": 30},
                },
            ],
        },
        False,
    ),
    (
        "居家咖啡人群",
        "近一年买过咖啡豆或挂耳冷萃的客户：新豆上市、器具和订阅活动的目标人群。",
        {
            "type": "bought",
            "by": "category",
            "op": "any",
            "value": ["咖啡豆", "挂耳冷萃"],
            "window": {"last_days": 365},
        },
        False,
    ),
    (
        "沉睡高价值客户",
        "中高消费、但已沉默或流失的客户：顾问一对一回访，发送专属回归礼。",
        {
            "type": "and",
            "rules": [
                {"type": "score", "field": "tier", "op": "in", "value": ["high", "mid"]},
                {"type": "score", "field": "stage", "op": "in", "value": ["dormant", "churned"]},
            ],
        },
        False,
    ),
)

STATIC_STORE = "静安店"
STATIC_NAME = "静安店周年庆邀请名单"
STATIC_DESCRIPTION = (
    "静安店店长整理的周年庆到店邀请名单（近 60 天在店消费过的常客），静态名单，手动维护。"
)
STATIC_SIZE = 80


@dataclass
class SegmentsSummary:
    sizes: dict[str, int] = field(default_factory=dict)  # example segment name -> size
    builtins: int = 0
    clv: ClvFit | None = None
    seconds: float = 0.0

    @property
    def clv_text(self) -> str:
        """The fit in a few words, for the demo command's output."""
        fit = self.clv
        if fit is None:
            return "no CLV fit"
        if fit.error:
            return f"CLV not fitted ({fit.error})"
        return f"CLV fitted on {fit.customers:,} buyers"


def _store_regulars(workspace: Workspace, now: datetime.datetime) -> list[int]:
    """The static list: contacts tagged with the store who bought in a store lately."""
    tagged = ContactTag.objects.filter(
        workspace=workspace, tag__group__name=data.STORE, tag__name=STATIC_STORE
    ).values("contact_id")
    ids = (
        Order.objects.filter(
            workspace=workspace,
            channel="门店",
            placed_at__gt=now - datetime.timedelta(days=60),
            contact_id__in=tagged,
        )
        .order_by("contact_id")
        .values_list("contact_id", flat=True)
        .distinct()
    )
    return list(ids[:STATIC_SIZE])


def load_segments(
    workspace: Workspace, *, actor: Actor, now: datetime.datetime | None = None
) -> SegmentsSummary:
    """Create the built-in and example segments, refresh every score and segment at `now`,
    and fit CLV on the orders up to `now`. Call once, after the activity is loaded."""
    started = time.perf_counter()
    now = now or timezone.now()
    summary = SegmentsSummary()
    summary.builtins = len(segment_actions.builtins_ensure(workspace))
    created: list[Segment] = []
    for name, description, rule, realtime in EXAMPLES:
        created.append(
            segment_actions.segment_create(
                workspace=workspace,
                actor=actor,
                name=name,
                rule=rule,
                description=description,
                realtime=realtime,
                refresh=False,  # refreshed below, all at `now`, after the scores
            )
        )
    created.append(
        segment_actions.segment_create(
            workspace=workspace,
            actor=actor,
            name=STATIC_NAME,
            kind=SegmentKind.STATIC,
            description=STATIC_DESCRIPTION,
            contact_ids=_store_regulars(workspace, now),
        )
    )
    refresh_workspace(workspace, now=now)
    summary.clv = clv_fit_workspace(workspace, actor=Actor.system("cli:demo"), until=now)
    sizes = dict(Segment.objects.filter(pk__in=[s.pk for s in created]).values_list("pk", "size"))
    summary.sizes = {s.name: sizes[s.pk] for s in created}
    summary.seconds = time.perf_counter() - started
    return summary
