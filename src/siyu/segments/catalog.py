"""What a segment rule may talk about: the fields, their types and each type's operators.
The rule validator (rules.py), the SQL compiler (compiler.py), the API's `/segments/schema`
and the console's builder all read these tables, so adding a field happens here once."""

from dataclasses import dataclass

from siyu.contacts.models import Channel as ConsentChannel
from siyu.contacts.models import ConsentStatus, Gender, IdentityKind
from siyu.segments.models import LifecycleStage, RfmSegment, ValueTier

# type -> operators. "money" values are yuan (Decimal-like), compared in fen.
OPERATORS: dict[str, tuple[str, ...]] = {
    "text": (
        "eq",
        "neq",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "is_set",
        "not_set",
    ),
    "number": ("eq", "neq", "gt", "gte", "lt", "lte", "between", "is_set", "not_set"),
    "money": ("eq", "neq", "gt", "gte", "lt", "lte", "between", "is_set", "not_set"),
    "choice": ("eq", "neq", "in", "not_in", "is_set", "not_set"),
    "bool": ("is_true", "is_false", "is_set", "not_set"),
    "staff": ("eq", "neq", "in", "not_in", "is_set", "not_set"),
    "date": (
        "on",
        "before",
        "after",
        "between",
        "within_last_days",
        "more_than_days_ago",
        "within_next_days",
        "anniversary_within_next_days",
        "is_set",
        "not_set",
    ),
    "datetime": (
        "on",
        "before",
        "after",
        "between",
        "within_last_days",
        "more_than_days_ago",
        "within_next_days",
        "is_set",
        "not_set",
    ),
}
# operators that take no value
VALUELESS = frozenset({"is_set", "not_set", "is_true", "is_false"})
# operators whose value is a list
LIST_OPS = frozenset({"in", "not_in"})
# operators whose value is a whole number of days
DAY_OPS = frozenset(
    {
        "within_last_days",
        "more_than_days_ago",
        "within_next_days",
        "anniversary_within_next_days",
    }
)
MAX_DAYS = 36_600


@dataclass(frozen=True)
class Field:
    label: str  # Chinese, for the builder
    type: str
    column: str = ""  # the model field it reads, when it differs from the key
    nullable: bool = False
    choices: tuple[tuple[str, str], ...] = ()


def _choices(cls) -> tuple[tuple[str, str], ...]:
    return tuple((value, str(label)) for value, label in cls.choices)


CONTACT_FIELDS: dict[str, Field] = {
    "name": Field("姓名", "text"),
    "gender": Field("性别", "choice", choices=_choices(Gender)),
    "birthday": Field("生日", "date", nullable=True),
    "province": Field("省份", "text"),
    "city": Field("城市", "text"),
    "source": Field("来源", "text"),
    "owner": Field("负责人", "staff", column="owner_id", nullable=True),
    "first_seen_at": Field("首次出现", "datetime"),
    "last_seen_at": Field("最近出现", "datetime"),
    "created_at": Field("创建时间", "datetime"),
}

SCORE_FIELDS: dict[str, Field] = {
    "stage": Field("生命周期阶段", "choice", choices=_choices(LifecycleStage)),
    "tier": Field("价值分层", "choice", choices=_choices(ValueTier)),
    "rfm_segment": Field("RFM 分群", "choice", choices=_choices(RfmSegment)),
    "rfm_r": Field("RFM 最近消费 (R)", "number", nullable=True),
    "rfm_f": Field("RFM 消费频次 (F)", "number", nullable=True),
    "rfm_m": Field("RFM 消费金额 (M)", "number", nullable=True),
    "p_alive": Field("存活概率", "number", nullable=True),
    "expected_purchases_90d": Field("预计 90 天购买次数", "number", nullable=True),
    "expected_value_12m": Field(
        "预计 12 个月价值", "money", column="expected_value_12m_fen", nullable=True
    ),
}

ORDER_METRICS: dict[str, Field] = {
    "count": Field("订单数", "number"),
    "spend": Field("消费金额 (扣除退款)", "money"),
    "average": Field("客单价", "money", nullable=True),
    "first_order_at": Field("首次下单", "datetime", nullable=True),
    "last_order_at": Field("最近下单", "datetime", nullable=True),
}

IDENTITY_KINDS = _choices(IdentityKind)
CONSENT_CHANNELS = _choices(ConsentChannel)
# "unknown": the contact never answered on that channel (no consent row)
CONSENT_VALUES = (*_choices(ConsentStatus), ("unknown", "未知"))
EVENT_PROPERTY_TYPES: dict[str, str] = {"string": "text", "number": "number", "boolean": "bool"}
EVENT_COUNT_OPS = ("eq", "neq", "gt", "gte", "lt", "lte")
EVENT_TIME_OPS = ("within_last_days", "more_than_days_ago", "before", "after", "on")
TAG_OPS = ("any", "all", "none")
BOUGHT_BY = ("product", "category")

NODE_TYPES: dict[str, str] = {
    "and": "全部满足",
    "or": "满足任一",
    "not": "不满足",
    "field": "联系人字段",
    "attribute": "自定义属性",
    "tags": "标签",
    "identity": "身份",
    "consent": "授权",
    "orders": "订单指标",
    "bought": "购买过",
    "event": "行为次数",
    "event_time": "行为时间",
    "score": "分层与价值",
    "segment": "其他分群",
    "sample": "随机抽样",
}


def schema() -> dict:
    """The catalog as JSON, for the API and the console's builder."""

    def fields(table: dict[str, Field]) -> list[dict]:
        return [
            {
                "key": key,
                "label": f.label,
                "type": f.type,
                "operators": list(OPERATORS[f.type]),
                "choices": [{"value": v, "label": label} for v, label in f.choices],
            }
            for key, f in table.items()
        ]

    return {
        "node_types": [{"type": k, "label": v} for k, v in NODE_TYPES.items()],
        "operators": {k: list(v) for k, v in OPERATORS.items()},
        "contact_fields": fields(CONTACT_FIELDS),
        "score_fields": fields(SCORE_FIELDS),
        "order_metrics": fields(ORDER_METRICS),
        "identity_kinds": [{"value": v, "label": label} for v, label in IDENTITY_KINDS],
        "consent_channels": [{"value": v, "label": label} for v, label in CONSENT_CHANNELS],
        "consent_values": [{"value": v, "label": label} for v, label in CONSENT_VALUES],
        "event_property_types": list(EVENT_PROPERTY_TYPES),
        "event_count_operators": list(EVENT_COUNT_OPS),
        "event_time_operators": list(EVENT_TIME_OPS),
        "tag_operators": list(TAG_OPS),
    }
