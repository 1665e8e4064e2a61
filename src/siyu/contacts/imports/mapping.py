"""What a column can be imported into, and which column is which.

A mapping is a list with one entry per column of the file: a field key ("phone", "tags",
"attr:shoe_size", ...) or "" for a column that is not imported. Headers are matched after
folding (full-width to half-width, lower case, no spaces, `_`, `-` or bracketed notes such as
"（必填）" or "(元)"), against Chinese and English synonyms, the export's own headers, and the
key or label of a custom attribute."""

import re
import unicodedata
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.contacts.models import AttributeDefinition, IdentityKind
from siyu.core.errors import ValidationError

CONTACTS = "contacts"
ORDERS = "orders"
KINDS = (CONTACTS, ORDERS)
ATTR = "attr:"


@dataclass(frozen=True)
class Field:
    key: str
    label: Promise | str
    synonyms: tuple[str, ...] = ()
    item: bool = False  # an order line's field (one row per item)


# Identity fields, and the identity kind each one stores.
IDENTITY_KINDS = {
    "phone": IdentityKind.PHONE,
    "email": IdentityKind.EMAIL,
    "user_id": IdentityKind.USER_ID,
    "unionid": IdentityKind.WECHAT_UNIONID,
    "external_userid": IdentityKind.WECOM_EXTERNAL_USERID,
}

_PHONE = ("手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "联系方式", "移动电话",
          "mobile", "mobile phone", "phone", "phone number", "tel", "telephone",
          "cellphone")  # fmt: skip
_EMAIL = ("邮箱", "电子邮箱", "邮件", "邮箱地址", "电子邮件", "email", "e-mail", "mail",
          "email address")  # fmt: skip
_USER_ID = ("用户id", "会员id", "会员号", "会员编号", "会员卡号", "用户编号", "客户编号",
            "user id", "userid", "member id", "customer id")  # fmt: skip
_UNIONID = ("unionid", "微信unionid", "wechat unionid")
_EXTERNAL = ("external_userid", "外部联系人id", "企业微信外部联系人id", "企微外部联系人id",
             "wecom external_userid")  # fmt: skip

CONTACT_FIELDS = [
    Field("name", pgettext_lazy("person", "Name"),
          ("姓名", "名字", "客户姓名", "客户名称", "客户名", "联系人", "昵称", "微信昵称", "name",
           "full name", "nickname", "customer name")),
    Field("phone", _("Phone"), _PHONE),
    Field("email", _("Email"), _EMAIL),
    Field("user_id", _("User ID"), _USER_ID),
    Field("unionid", _("WeChat unionid"), _UNIONID),
    Field("external_userid", _("WeCom external_userid"), _EXTERNAL),
    Field("gender", _("Gender"), ("性别", "gender", "sex")),
    Field("birthday", _("Birthday"), ("生日", "出生日期", "出生年月日", "birthday", "birthdate",
                                      "date of birth", "dob")),
    Field("province", _("Province"), ("省份", "省", "所在省份", "province", "state")),
    Field("city", _("City"), ("城市", "市", "所在城市", "city")),
    Field("source", _("Source"), ("来源", "客户来源", "来源渠道", "渠道来源", "source")),
    Field("owner", _("Owner (advisor)"), ("归属顾问", "顾问", "专属顾问", "归属员工", "所属员工",
                                          "负责人", "跟进人", "客户经理", "owner", "advisor")),
    Field("tags", _("Tags"), ("标签", "客户标签", "tags", "tag", "labels")),
]  # fmt: skip

ORDER_FIELDS = [
    Field("external_id", _("Order ID"), ("订单号", "订单编号", "订单id", "外部订单号", "主订单号",
                                        "order id", "order number", "order no", "external id")),
    Field("phone", _("Phone"), _PHONE + ("收货人手机", "收货人电话", "买家手机", "买家手机号")),
    Field("user_id", _("User ID"), _USER_ID + ("买家id",)),
    Field("email", _("Email"), _EMAIL),
    Field("name", _("Customer name (for new contacts)"),
          ("客户姓名", "姓名", "客户名称", "买家", "买家姓名", "买家昵称", "收货人", "收货人姓名",
           "name", "customer", "customer name", "buyer")),
    Field("total", _("Amount paid (yuan)"), ("实付金额", "实付款", "实付", "订单金额", "金额",
                                             "支付金额", "付款金额", "成交金额", "订单总额",
                                             "total", "amount", "order total", "revenue",
                                             "paid")),
    Field("discount", _("Discount (yuan)"), ("优惠", "优惠金额", "折扣", "折扣金额", "discount")),
    Field("shipping", _("Shipping (yuan)"), ("运费", "shipping", "freight")),
    Field("tax", _("Tax (yuan)"), ("税费", "税额", "tax")),
    Field("currency", _("Currency"), ("币种", "货币", "currency")),
    Field("placed_at", _("Order time"), ("下单时间", "订单时间", "创建时间", "付款时间", "支付时间",
                                         "成交时间", "订单创建时间", "placed at", "order date",
                                         "order time", "date", "time", "created at")),
    Field("channel", _("Channel / store"), ("渠道", "店铺", "店铺名称", "销售渠道", "门店", "来源",
                                            "channel", "store", "shop")),
    Field("status", _("Order status"), ("订单状态", "状态", "交易状态", "status", "order status")),
    Field("product_id", _("Product ID"), ("商品id", "商品编号", "product id"), item=True),
    Field("sku", _("SKU"), ("sku", "商品编码", "货号", "sku编码", "规格编码", "商家编码"),
          item=True),
    Field("item_name", _("Product name"), ("商品名称", "商品", "品名", "商品标题", "宝贝标题",
                                          "product", "product name", "item", "item name"),
          item=True),
    Field("category", _("Category"), ("品类", "类目", "商品类目", "分类", "category"), item=True),
    Field("quantity", _("Quantity"), ("数量", "购买数量", "件数", "qty", "quantity"), item=True),
    Field("price", _("Unit price (yuan)"), ("单价", "商品单价", "价格", "售价", "price",
                                            "unit price"), item=True),
]  # fmt: skip

ITEM_FIELDS = frozenset(f.key for f in ORDER_FIELDS if f.item)
# Headers never imported: the export's read-only columns and the error report's own columns
# (so a corrected report can be imported again as it is).
REPORT_ROW, REPORT_ERROR = "行号", "错误原因"
IGNORED = {
    CONTACTS: ("首次出现", "最近活跃", "创建时间", REPORT_ROW, REPORT_ERROR),
    ORDERS: (REPORT_ROW, REPORT_ERROR),
}
MULTI = frozenset({"tags"})  # fields several columns may be mapped to


def fold(header: str) -> str:
    """The form headers are compared in: '手机号码（必填）' -> '手机号码', 'User_ID' -> 'userid'.
    Invisible format characters (a second BOM, zero-width spaces pasted from the web) go."""
    text = unicodedata.normalize("NFKC", header or "").lower()
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】", "", text)
    return re.sub(r"[\s_\-.*:#/]+", "", text)


def _index(fields: list[Field]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in fields:
        for name in (f.key, *f.synonyms):
            out.setdefault(fold(name), f.key)
    return out


_INDEX = {CONTACTS: _index(CONTACT_FIELDS), ORDERS: _index(ORDER_FIELDS)}
_IGNORED = {kind: {fold(h) for h in headers} for kind, headers in IGNORED.items()}


def field_catalogue(kind: str, attrs: list[AttributeDefinition]) -> list[tuple[str, str]]:
    """(key, label) of every field a column can go into, for the mapping drop-downs."""
    fields = CONTACT_FIELDS if kind == CONTACTS else ORDER_FIELDS
    out = [(f.key, str(f.label)) for f in fields]
    if kind == CONTACTS:
        out += [(ATTR + d.key, f"{d.label} ({d.key})") for d in attrs]
    return out


def auto_map(kind: str, headers: list[str], attrs: list[AttributeDefinition]) -> list[str]:
    """The field each column most likely is ("" when none); a field is taken by its first
    column only (tags excepted)."""
    index = _INDEX[kind]
    by_attr: dict[str, str] = {}
    if kind == CONTACTS:
        for d in attrs:
            by_attr.setdefault(fold(d.key), ATTR + d.key)
            by_attr.setdefault(fold(d.label), ATTR + d.key)
    used: set[str] = set()
    out = []
    for header in headers:
        key = fold(header)
        field = ""
        if key and key not in _IGNORED[kind]:
            field = index.get(key) or by_attr.get(key, "")
        if field and field in used and field not in MULTI:
            field = ""
        used.add(field)
        out.append(field)
    return out


def known_fields(kind: str, attrs: list[AttributeDefinition]) -> set[str]:
    return {key for key, _label in field_catalogue(kind, attrs)}


def label_of(kind: str, field: str, attrs: list[AttributeDefinition]) -> str:
    return dict(field_catalogue(kind, attrs)).get(field, field)


def mapping_problems(
    kind: str, mapping: list[str], names: list[str], attrs: list[AttributeDefinition]
) -> list[str]:
    """What is wrong with a mapping, as translated sentences (empty when it can start)."""
    from django.utils.translation import gettext as gt

    problems = []
    labels = dict(field_catalogue(kind, attrs))
    seen: dict[str, str] = {}
    for name, field in zip(names, mapping, strict=True):
        if not field:
            continue
        if field not in labels:
            problems.append(
                gt("Column %(column)s: unknown field %(field)s") % {"column": name, "field": field}
            )
        elif field in seen and field not in MULTI:
            problems.append(
                gt("%(field)s is chosen for two columns: %(first)s and %(second)s")
                % {"field": labels[field], "first": seen[field], "second": name}
            )
        seen.setdefault(field, name)
    chosen = set(seen)
    if kind == CONTACTS:
        if not chosen & set(IDENTITY_KINDS):
            problems.append(
                gt(
                    "Choose the column with the phone, email, user ID, unionid or "
                    "external_userid: contacts are recognised by it, so that importing the "
                    "same file again changes nothing."
                )
            )
    else:
        for required in ("external_id", "total"):
            if required not in chosen:
                problems.append(
                    gt("Choose the column with the %(field)s.") % {"field": labels[required]}
                )
        if not chosen & {"phone", "user_id", "email"}:
            problems.append(gt("Choose the column with the customer's phone, user ID or email."))
        if chosen & (ITEM_FIELDS - {"price"}) and "price" not in chosen:
            problems.append(gt("Product columns need the unit price column too."))
    return problems


def mapping_from_dict(
    kind: str,
    headers: list[str],
    given: dict,
    attrs: list[AttributeDefinition],
) -> list[str]:
    """The API's `{"column header": "field"}` on top of the automatic mapping (a field of ""
    or null leaves the column out). Raises ValidationError naming `mapping.<header>`."""
    mapping = auto_map(kind, headers, attrs)
    known = known_fields(kind, attrs)
    for header, field in given.items():
        where = f"mapping.{header}"
        positions = [i for i, h in enumerate(headers) if h == str(header).strip()]
        if not positions:
            raise ValidationError(where, "no such column in the file", columns=headers)
        if len(positions) > 1:
            raise ValidationError(where, "two columns have this header; rename one")
        if field is None or field == "":
            mapping[positions[0]] = ""
            continue
        if not isinstance(field, str) or field not in known:
            raise ValidationError(
                where, "unknown field %(field)s", params={"field": field}, choices=sorted(known)
            )
        mapping[positions[0]] = field
    # an explicitly chosen field wins over the same field found automatically elsewhere
    chosen = {mapping[i] for i, h in enumerate(headers) if h in given and mapping[i]}
    for i, h in enumerate(headers):
        if h not in given and mapping[i] in chosen and mapping[i] not in MULTI:
            mapping[i] = ""
    return mapping
