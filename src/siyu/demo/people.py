"""Synthetic customers, deterministic for a seed.

Every value that must be unique in a workspace (phone, email, user id, openid, unionid,
WeCom id) is derived from a per-workspace counter `k` through fixed bijections, so a later
run (another seed, another `seed-demo`) continues the counter and can never collide with an
earlier one. Everything else (names, places, dates, tags) comes from a seeded
`random.Random`. Nothing here touches the database."""

import datetime
import itertools
import math
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from siyu.demo import data

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
HISTORY_DAYS = 540  # about 18 months

# Mainland mobile prefixes that phonenumbers accepts for every 8-digit suffix (checked in
# tests). k -> n, a bijection of [0, L * 10**8) -> (prefix n // 10**8, suffix n % 10**8).
MOBILE_PREFIXES = (
    138, 139, 186, 158, 136, 159, 137, 188, 135, 150, 187, 151, 152, 189, 185, 182, 183,
    157, 180, 181, 130, 131, 132, 155, 156, 177, 176, 173, 166, 199, 198, 191, 133, 153,
    175, 178, 195, 193, 134,
)  # fmt: skip
MAX_COUNTER = len(MOBILE_PREFIXES) * 10**8

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def phone_for(k: int) -> str:
    """The k-th synthetic mobile number, E.164 (the multiplier is a prime coprime to the
    modulus, so distinct k below MAX_COUNTER give distinct numbers)."""
    n = (2_654_435_761 * k + 271_828_182) % MAX_COUNTER
    return f"+86{MOBILE_PREFIXES[n // 10**8]}{n % 10**8:08d}"


def unique_number(k: int, salt: int = 0) -> int:
    """A number below 10**10 that looks random and is distinct for every k < 10**10 (the
    multiplier is coprime to 10); `salt` gives each identity kind its own sequence."""
    return (6_364_136_223 * k + 1_442_695_040 + 982_451_653 * salt) % 10**10


def _encode(n: int, alphabet: str, width: int) -> str:
    base, out = len(alphabet), []
    for _ in range(width):
        n, r = divmod(n, base)
        out.append(alphabet[r])
    return "".join(reversed(out))


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_B62, k=length))


def email_for(k: int, rng: random.Random) -> str:
    domain = rng.choices(_EMAIL_DOMAINS, _EMAIL_WEIGHTS)[0]
    if domain in ("qq.com", "foxmail.com"):
        # 10-digit QQ numbers, a bijection of k over [10**9, 4 * 10**9).
        return f"{10**9 + (4_294_967_291 * k + 123_456_789) % (3 * 10**9)}@{domain}"
    handle = rng.choice(data.EMAIL_HANDLES)
    return f"{handle}{_encode(k, _B36, 1 + (k.bit_length() // 5))}@{domain}"


def openid_for(k: int, app_id: str, rng: random.Random) -> str:
    # Real openids of one app share a short prefix; the middle is unique per k.
    mini = app_id == data.MINI_PROGRAM_APP_ID
    return (
        ("oGZU" if mini else "oX3a")
        + _encode(unique_number(k, 1 if mini else 2), _B62, 6)
        + _token(rng, 18)
    )


def unionid_for(k: int, rng: random.Random) -> str:
    return "oTzW" + _encode(unique_number(k, 3), _B62, 6) + _token(rng, 18)


def wecom_id_for(k: int, rng: random.Random) -> str:
    return "wmQz" + _encode(unique_number(k, 4), _B62, 6) + _token(rng, 22)


def user_id_for(k: int) -> str:
    return f"SY{unique_number(k):010d}"


def _split(table):
    return tuple(t[0] for t in table), tuple(itertools.accumulate(t[-1] for t in table))


_EMAIL_DOMAINS, _EMAIL_WEIGHTS = _split(data.EMAIL_DOMAINS)
_SURNAMES, _SURNAME_CUM = _split(data.SURNAMES)
_NEAR, _NEAR_CUM = _split(data.SOURCES_NEAR_STORE)
_ONLINE, _ONLINE_CUM = _split(data.SOURCES_ONLINE)
_OTHER_CITIES, _OTHER_CUM = (
    data.OTHER_CITIES,
    tuple(itertools.accumulate(c[2] for c in data.OTHER_CITIES)),
)
# An older store has more customers: weight by days open.
_STORE_CUM = tuple(itertools.accumulate(s.opened_days_ago for s in data.STORES))
_TASTES = ("美式", "拿铁", "手冲", "燕麦奶", "低因")
_TASTE_CUM = tuple(itertools.accumulate((30, 35, 12, 15, 8)))
_LEVEL_CUM = tuple(itertools.accumulate((70, 18, 9, 3)))

# Identity probabilities by source: phone, email, mini-program member, official account
# follower, WeCom friend.
_IDENTITY_ODDS = {
    "store_qr": (0.85, 0.10, 0.45, 0.15, 0.92),
    "mini_program": (0.97, 0.12, 1.00, 0.20, 0.30),
    "wecom": (0.70, 0.10, 0.30, 0.10, 1.00),
    "douyin": (0.90, 0.06, 0.25, 0.05, 0.25),
    "xiaohongshu": (0.80, 0.15, 0.30, 0.05, 0.30),
    "official_account": (0.50, 0.12, 0.30, 1.00, 0.15),
    "referral": (0.95, 0.10, 0.85, 0.15, 0.35),
}
_CREATED_BY = {
    "store_qr": "wecom:channel-code",
    "mini_program": "mini-program",
    "wecom": "wecom:add-friend",
    "douyin": "import:douyin-leads",
    "xiaohongshu": "import:xiaohongshu-leads",
    "official_account": "wechat:subscribe",
    "referral": "mini-program:invite",
}
_SMS_GRANT_SOURCE = {
    "store_qr": "门店扫码授权",
    "mini_program": "小程序注册勾选",
    "wecom": "企业微信会话授权",
    "douyin": "抖音表单授权",
    "xiaohongshu": "小红书表单授权",
    "official_account": "公众号会员注册",
    "referral": "邀请有礼注册勾选",
}


@dataclass(slots=True)
class Person:
    """One synthetic customer, before it becomes rows."""

    k: int
    name: str
    gender: str
    birthday: datetime.date | None
    province: str
    city: str
    source: str
    store: str  # a store tag, or "" if not tied to a store
    owner_hint: float  # < 0: no owner; else picks an advisor (the store's when there is one)
    created_at: datetime.datetime
    first_seen_at: datetime.datetime
    last_seen_at: datetime.datetime
    attributes: dict
    identities: list  # [(kind, value, app_id)]
    tags: list  # [(group, tag)]
    consents: list  # [(channel, status, source, recorded_at)]
    created_by: str
    later: list = field(default_factory=list)  # [(kind, data, at)] timeline rows after creation


def _name(rng: random.Random, gender: str) -> str:
    surname = rng.choices(_SURNAMES, cum_weights=_SURNAME_CUM)[0]
    own = data.GIVEN_FEMALE if gender == "female" else data.GIVEN_MALE
    if gender == "unknown":
        own = data.GIVEN_FEMALE + data.GIVEN_MALE
    if len(surname) == 2 or rng.random() < 0.22:  # 2-character names (3 with 欧阳)
        return surname + rng.choice(own)
    first = rng.choice(own + data.GIVEN_NEUTRAL)
    if gender == "female" and rng.random() < 0.05:
        return surname + first + first  # 婷婷, 晶晶
    second = rng.choice(own)
    while second == first:
        second = rng.choice(own)
    return surname + first + second


def _at(day: datetime.date, rng: random.Random, online: bool) -> datetime.datetime:
    """A local time on `day` when people meet a coffee brand: store hours, or evenings online."""
    hour = rng.choices(
        range(24),
        weights=(
            (1, 1, 0, 0, 0, 0, 1, 2, 4, 5, 6, 6, 7, 7, 6, 5, 5, 5, 6, 8, 9, 9, 7, 3)
            if online
            else (0, 0, 0, 0, 0, 0, 0, 3, 9, 10, 8, 7, 8, 7, 6, 7, 8, 7, 5, 4, 3, 2, 0, 0)
        ),
    )[0]
    local = datetime.datetime.combine(
        day, datetime.time(hour, rng.randrange(60), rng.randrange(60)), LOCAL_TZ
    )
    return local.astimezone(datetime.UTC)


def _day(rng: random.Random, today: datetime.date, span_days: int) -> datetime.date:
    """A day within the last `span_days`, more recent days likelier (the pool grows ~4x)."""
    growth = 1.4
    # Inverse CDF of a density growing like exp(growth * t) over t in [0, 1].
    t = math.log1p(rng.random() * (math.exp(growth) - 1)) / growth  # 0 oldest, 1 today
    return today - datetime.timedelta(days=int((1 - t) * span_days))


def make_person(k: int, rng: random.Random, now: datetime.datetime) -> Person:
    today = now.astimezone(LOCAL_TZ).date()
    # Where: near one of the stores, or online from elsewhere (or unknown).
    if rng.random() < 0.70:
        store = rng.choices(data.STORES, cum_weights=_STORE_CUM)[0]
        city, province, store_tag = store.city, store.province, store.tag
        source = rng.choices(_NEAR, cum_weights=_NEAR_CUM)[0]
        span = store.opened_days_ago if source == "store_qr" else HISTORY_DAYS
    else:
        store, store_tag = None, ""
        city, province, _w = rng.choices(_OTHER_CITIES, cum_weights=_OTHER_CUM)[0]
        source = rng.choices(_ONLINE, cum_weights=_ONLINE_CUM)[0]
        span = HISTORY_DAYS
        if rng.random() < 0.12:
            city = province = ""
    online = source != "store_qr"

    # When: growth over the period, a burst at each store's opening, 会员日 on the 18th.
    campaign = ""
    if store is not None and source == "store_qr" and rng.random() < 0.22:
        day = today - datetime.timedelta(days=store.opened_days_ago - rng.randrange(14))
        campaign = "开业引流"
    else:
        day = _day(rng, today, span)
        if rng.random() < 0.10:
            day = day.replace(day=18) if day.replace(day=18) <= today else day
    if day.day == 18 and rng.random() < 0.7:
        campaign = campaign or "会员日"
    if source == "xiaohongshu" and rng.random() < 0.7:
        campaign = "小红书种草"
    elif source == "douyin" and rng.random() < 0.65:
        campaign = "抖音团购"
    elif source == "referral":
        campaign = "老带新"
    created_at = _at(day, rng, online)
    if created_at > now - datetime.timedelta(minutes=5):  # later today: earlier today instead
        midnight = datetime.datetime.combine(today, datetime.time(), LOCAL_TZ)
        elapsed = (now - midnight).total_seconds()
        created_at = now - datetime.timedelta(seconds=rng.uniform(300, max(301, elapsed)))
    first_seen_at = created_at
    if source in ("mini_program", "official_account", "referral") and rng.random() < 0.6:
        first_seen_at = created_at - datetime.timedelta(hours=rng.randrange(1, 24 * 20))
    age_days = (now - created_at).days
    dormant = age_days > 120 and rng.random() < 0.30
    if dormant:
        last_seen_at = created_at + (now - created_at - datetime.timedelta(days=90)) * rng.random()
    else:
        back = datetime.timedelta(days=min(rng.expovariate(1 / 18), age_days))
        last_seen_at = max(created_at, now - back - datetime.timedelta(minutes=rng.randrange(600)))

    # Who.
    gender = rng.choices(("female", "male", "unknown"), (58, 37, 5))[0]
    if source in ("douyin", "xiaohongshu", "wecom") and rng.random() < 0.12:
        name = rng.choice(data.NICKNAMES)
    else:
        name = _name(rng, gender)
    birthday = None
    if rng.random() < 0.75:
        age = int(rng.triangular(18, 56, 27))
        birthday = today - datetime.timedelta(days=age * 365 + rng.randrange(365))

    # Identities.
    p_phone, p_email, p_member, p_oa, p_wecom = _IDENTITY_ODDS[source]
    identities: list[tuple[str, str, str]] = []
    if rng.random() < p_phone:
        identities.append(("phone", phone_for(k), ""))
    if rng.random() < p_email:
        identities.append(("email", email_for(k, rng), ""))
    member = rng.random() < p_member
    follower = rng.random() < p_oa
    if member:
        identities.append(("user_id", user_id_for(k), ""))
        mp = data.MINI_PROGRAM_APP_ID
        identities.append(("wechat_openid", openid_for(k, mp, rng), mp))
    if follower:
        oa = data.OFFICIAL_ACCOUNT_APP_ID
        identities.append(("wechat_openid", openid_for(k, oa, rng), oa))
    wecom = rng.random() < p_wecom
    if wecom:
        identities.append(("wecom_external_userid", wecom_id_for(k, rng), ""))
    if (member or follower or wecom) and rng.random() < 0.85:
        identities.append(("wechat_unionid", unionid_for(k, rng), ""))
    if not identities:
        identities.append(("phone", phone_for(k), ""))
    has_phone = identities[0][0] == "phone"
    has_email = any(kind == "email" for kind, _v, _a in identities)

    # Attributes (only the keys the workspace defines are kept when inserted).
    attributes: dict = {}
    if member or has_phone:
        level_index = rng.choices(range(4), cum_weights=_LEVEL_CUM)[0]
        if age_days < 30:
            level_index = 0
        attributes["member_level"] = data.MEMBER_LEVELS[level_index]
        attributes["member_since"] = created_at.astimezone(LOCAL_TZ).date().isoformat()
    if store_tag:
        attributes["favorite_store"] = store_tag
    cups = None
    if rng.random() < 0.7:
        cups = min(14, int(rng.expovariate(1 / 2.2)) + (0 if dormant else 1))
        attributes["cups_per_week"] = cups
    allergy = rng.random() < 0.04
    if allergy or rng.random() < 0.3:
        attributes["allergy_oat"] = allergy

    # Tags.
    tags: list[tuple[str, str]] = []
    if age_days < 30:
        tags.append((data.STAGE, "新客"))
    elif dormant or (now - last_seen_at).days > 90:
        tags.append((data.STAGE, "沉睡"))
    elif (cups or 0) >= 2 or rng.random() < 0.4:
        tags.append((data.STAGE, "复购"))
    for taste in set(rng.choices(_TASTES, cum_weights=_TASTE_CUM, k=rng.choice((0, 1, 1, 2)))):
        if not (allergy and taste == "燕麦奶"):
            tags.append((data.TASTE, taste))
    if store_tag and rng.random() < 0.9:
        tags.append((data.STORE, store_tag))
    if campaign:
        tags.append((data.CAMPAIGN, campaign))

    # Consent, as each channel recorded it.
    consents: list[tuple[str, str, str, datetime.datetime]] = []
    granted_at = created_at + datetime.timedelta(seconds=rng.randrange(5, 300))
    if has_phone:
        r = rng.random()
        if r < 0.75:
            consents.append(("sms", "granted", _SMS_GRANT_SOURCE[source], granted_at))
        elif r < 0.81:
            withdrawn_at = created_at + (last_seen_at - created_at) * rng.random()
            consents.append(("sms", "withdrawn", "回复TD退订", max(granted_at, withdrawn_at)))
    if wecom:
        status = "granted" if rng.random() < 0.96 else "withdrawn"
        src = "添加企业微信好友" if status == "granted" else "删除企业微信好友"
        consents.append(("wecom", status, src, granted_at))
    if has_email and rng.random() < 0.65:
        status = "granted" if rng.random() < 0.92 else "withdrawn"
        src = "会员注册订阅邮件" if status == "granted" else "邮件退订链接"
        consents.append(("email", status, src, granted_at))

    owner_hint = rng.random() if (store_tag and rng.random() < 0.92) or rng.random() < 0.6 else -1
    person = Person(
        k=k,
        name=name,
        gender=gender,
        birthday=birthday,
        province=province,
        city=city,
        source=source,
        store=store_tag,
        owner_hint=owner_hint,
        created_at=created_at,
        first_seen_at=first_seen_at,
        last_seen_at=max(last_seen_at, created_at),
        attributes=attributes,
        identities=identities,
        tags=tags,
        consents=consents,
        created_by=_CREATED_BY[source],
    )
    level = attributes.get("member_level")
    if level in ("银卡", "金卡", "黑卡") and age_days > 45:
        at = created_at + datetime.timedelta(days=rng.randrange(30, age_days))
        person.later.append(("updated", {"fields": ["attributes.member_level"]}, at))
    return person
