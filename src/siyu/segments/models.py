"""Segments (a rule tree compiled to one SQL statement, its membership stored with history),
per-contact scores (lifecycle stage, value tier, RFM, predicted lifetime value) and the
per-workspace settings and model fits behind them. docs/segments.md explains the concepts."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from siyu.core.models import WorkspaceScoped, unchecked_workspace


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "动态分群"  # membership follows the rule
    STATIC = "static", "静态分群"  # a fixed list: CSV upload, a selection, the API
    BUILTIN = "builtin", "内置分群"  # lifecycle stages, value tiers, RFM segments


class Segment(WorkspaceScoped):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=10, choices=SegmentKind.choices, default="dynamic")
    # the rule tree (rules.py); {} for static segments
    rule = models.JSONField(default=dict, blank=True)
    # re-evaluated for a contact right after each of its processed events
    realtime = models.BooleanField(default=False)
    # built-in segments: which one ("stage:active", "tier:high", "rfm:champions")
    builtin_key = models.CharField(max_length=40, blank=True, default="")
    size = models.IntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_ms = models.IntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"],
                condition=models.Q(archived_at__isnull=True),
                name="segment_name_unique",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "-id"], name="segment_ws_recent")]

    def __str__(self) -> str:
        return self.name


# Membership, changes and scores are derived data written by the hundred thousand: their
# foreign keys carry no database constraint (PostgreSQL would check each row at commit,
# more than half of a first refresh's time). Deletes still cascade: contacts, segments and
# workspaces are deleted through the ORM, which deletes these rows first.


class SegmentMember(WorkspaceScoped):
    """A contact that is in a segment now, since `entered_at`."""

    workspace = unchecked_workspace()
    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        related_name="members",
        db_index=False,
        db_constraint=False,
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="segmentmember_unique")
        ]
        indexes = [models.Index(fields=["contact", "segment"], name="segmentmember_contact")]


class ChangeKind(models.TextChoices):
    ENTERED = "entered", "进入"
    EXITED = "exited", "离开"


class SegmentChange(WorkspaceScoped):
    """A contact entered or left a segment: the history, and the signal journeys listen to
    (read in id order, by cursor)."""

    workspace = unchecked_workspace()
    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        related_name="changes",
        db_index=False,
        db_constraint=False,
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=8, choices=ChangeKind.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "id"], name="segmentchange_ws_id"),
            models.Index(fields=["segment", "-id"], name="segmentchange_segment"),
            models.Index(fields=["contact", "-id"], name="segmentchange_contact"),
        ]


class SegmentSize(WorkspaceScoped):
    """A segment's size after each refresh that changed it (and at least daily): the trend."""

    workspace = models.ForeignKey(
        "core.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="sizes", db_index=False
    )
    at = models.DateTimeField(default=timezone.now)
    size = models.IntegerField()
    entered = models.IntegerField(default=0)
    exited = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["segment", "at"], name="segmentsize_segment_at")]


class LifecycleStage(models.TextChoices):
    NEW = "new", "新用户"
    ACTIVE = "active", "活跃用户"
    DORMANT = "dormant", "沉默用户"
    CHURNED = "churned", "流失用户"


class ValueTier(models.TextChoices):
    HIGH = "high", "高消费"
    MID = "mid", "中消费"
    LOW = "low", "低消费"
    NONE = "none", "未消费"


class RfmSegment(models.TextChoices):
    CHAMPIONS = "champions", "重要价值客户"
    LOYAL = "loyal", "忠诚客户"
    POTENTIAL = "potential_loyalists", "潜力客户"
    NEW_CUSTOMERS = "new_customers", "新客户"
    PROMISING = "promising", "有望客户"
    NEED_ATTENTION = "need_attention", "需要关注"
    ABOUT_TO_SLEEP = "about_to_sleep", "即将沉睡"
    AT_RISK = "at_risk", "有流失风险"
    CANT_LOSE = "cant_lose", "不能失去"
    HIBERNATING = "hibernating", "沉睡客户"


class ContactScore(WorkspaceScoped):
    """What siyu computes about a contact (scores.py, clv.py): one row per contact, rewritten
    by set-based statements. RFM fields are null for contacts without an order; CLV fields
    are null until the workspace has a fit."""

    workspace = unchecked_workspace()
    contact = models.OneToOneField(
        "contacts.Contact", on_delete=models.CASCADE, related_name="score", db_constraint=False
    )
    stage = models.CharField(max_length=8, choices=LifecycleStage.choices)
    tier = models.CharField(max_length=8, choices=ValueTier.choices)
    stage_since = models.DateTimeField(default=timezone.now)
    tier_since = models.DateTimeField(default=timezone.now)
    rfm_r = models.SmallIntegerField(null=True, blank=True)
    rfm_f = models.SmallIntegerField(null=True, blank=True)
    rfm_m = models.SmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(
        max_length=20, choices=RfmSegment.choices, blank=True, default=""
    )
    p_alive = models.FloatField(null=True, blank=True)
    expected_purchases_90d = models.FloatField(null=True, blank=True)
    expected_value_12m_fen = models.BigIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)
    clv_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "stage"], name="score_ws_stage"),
            models.Index(fields=["workspace", "tier"], name="score_ws_tier"),
            models.Index(fields=["workspace", "rfm_segment"], name="score_ws_rfm"),
        ]


class StageFlow(WorkspaceScoped):
    """How many contacts moved from one stage (or tier) to another on one day: the flow
    chart. `dimension` is "stage" or "tier"; `from_value` is "" for a contact's first
    score."""

    workspace = models.ForeignKey(
        "core.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    dimension = models.CharField(max_length=8)
    from_value = models.CharField(max_length=8, blank=True, default="")
    to_value = models.CharField(max_length=8)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "dimension", "from_value", "to_value"],
                name="stageflow_unique",
            )
        ]


class ScoringSettings(WorkspaceScoped):
    """A workspace's thresholds for stages, tiers and RFM (scores.DEFAULTS when absent)."""

    workspace = models.OneToOneField(
        "core.Workspace", on_delete=models.CASCADE, related_name="scoring_settings"
    )
    values = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)


class ClvFit(WorkspaceScoped):
    """One BG/NBD + Gamma-Gamma fit of a workspace's orders (clv.py)."""

    fitted_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField()
    customers = models.IntegerField()
    # {"bgnbd": {"r", "alpha", "a", "b", "loglik"}, "gamma_gamma": {...} | null, "unit": "days"}
    params = models.JSONField(default=dict)
    seconds = models.FloatField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["workspace", "-fitted_at"], name="clvfit_ws_recent")]


class RefreshSchedule(WorkspaceScoped):
    """When a workspace's segments and its CLV fit are next due. A worker claims a slot by
    moving it forward with a conditional UPDATE, so two workers never enqueue it twice."""

    workspace = models.OneToOneField(
        "core.Workspace", on_delete=models.CASCADE, related_name="refresh_schedule"
    )
    next_refresh_at = models.DateTimeField(default=timezone.now)
    next_clv_at = models.DateTimeField(default=timezone.now)
    last_refresh = models.JSONField(default=dict, blank=True)  # what the last run did
