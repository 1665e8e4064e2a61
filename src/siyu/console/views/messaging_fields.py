"""What the messaging pages share: labels for channel kinds, reach channels, outbox statuses
and reasons; form rows generated from a kind's fields (FieldSpec: settings, secrets and
template content) and read back from a POST; and errors placed beside the field they name."""

import re
from collections.abc import Iterable
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from siyu.console.access import error_text
from siyu.core.errors import SiyuError, ValidationError
from siyu.messaging.channels import REACH, TRANSPORTS, transport_class
from siyu.messaging.channels.base import FieldSpec
from siyu.messaging.models import OutboxStatus

# the console's own names (the model's "Email" reads 邮箱, an address; here it is the channel)
KIND_LABELS = {
    "email": pgettext_lazy("channel kind", "Email"),
    "sms_aliyun": pgettext_lazy("channel kind", "Aliyun SMS"),
    "sms_tencent": pgettext_lazy("channel kind", "Tencent Cloud SMS"),
    "wecom": pgettext_lazy("channel kind", "WeCom"),
    "wechat_oa": pgettext_lazy("channel kind", "WeChat Official Account template message"),
    "wechat_mp": pgettext_lazy("channel kind", "Mini program subscribe message"),
    "webhook": pgettext_lazy("channel kind", "Webhook"),
}
KIND_SUMMARIES = {
    "email": gettext_lazy("Your SMTP server (Aliyun DirectMail, Tencent Exmail, …)."),
    "sms_aliyun": gettext_lazy("An Aliyun SMS account with an approved sign name and templates."),
    "sms_tencent": gettext_lazy("A Tencent Cloud SMS application with approved templates."),
    "wecom": gettext_lazy("Mass messages from staff members to their WeCom customers."),
    "wechat_oa": gettext_lazy("Template messages to followers of your Official Account."),
    "wechat_mp": gettext_lazy("Subscribe messages to users of your mini program."),
    "webhook": gettext_lazy("A signed JSON POST to your own system, which sends it on."),
}
REACH_LABELS = {
    "all": pgettext_lazy("reach", "All channels"),
    "sms": pgettext_lazy("reach", "SMS"),
    "email": pgettext_lazy("reach", "Email"),
    "wecom": pgettext_lazy("reach", "WeCom"),
    "wechat": pgettext_lazy("reach", "WeChat"),
    "webhook": pgettext_lazy("reach", "Webhook"),
}
WINDOW_LABELS = {"day": gettext_lazy("per day"), "week": gettext_lazy("per week")}
STATUS_LABELS = {
    OutboxStatus.QUEUED: pgettext_lazy("message", "Queued"),
    OutboxStatus.SENDING: pgettext_lazy("message", "Sending"),
    OutboxStatus.SENT: pgettext_lazy("message", "Sent"),
    OutboxStatus.DELIVERED: pgettext_lazy("message", "Delivered"),
    OutboxStatus.FAILED: pgettext_lazy("message", "Failed"),
    OutboxStatus.BOUNCED: pgettext_lazy("message", "Bounced"),
    OutboxStatus.SUPPRESSED: pgettext_lazy("message", "Suppressed"),
}
STATUS_BADGES = {
    OutboxStatus.SENT: "ok",
    OutboxStatus.DELIVERED: "ok",
    OutboxStatus.FAILED: "danger",
    OutboxStatus.BOUNCED: "danger",
    OutboxStatus.SUPPRESSED: "warn",
}
# reasons without a code (docs/messaging.md, "The outbox")
REASONS = {
    "no_consent": gettext_lazy("No consent"),
    "no_address": gettext_lazy("No contact address"),
    "contact_gone": gettext_lazy("The contact was deleted"),
    "template_error": gettext_lazy("Template error"),
    "content_limit": gettext_lazy("Over the channel's length limit"),
    "no_template": gettext_lazy("No template"),
    "outcome_unknown": gettext_lazy("Outcome unknown"),
    "resend_after_interruption": gettext_lazy("Resending after an interruption"),
}
# reasons with a code after the colon: the label names the code
CODED_REASONS = {
    "vendor": gettext_lazy("Channel answered with an error %(code)s"),
    "retries_exhausted": gettext_lazy("Gave up after retries (%(code)s)"),
    "receipt": gettext_lazy("Not delivered (%(code)s)"),
    "retry": gettext_lazy("Waiting to retry (%(code)s)"),
}
# the vendors' template review states, for the mini program's "version opened" choice
CHOICE_LABELS = {
    "formal": pgettext_lazy("mini program version", "Release"),
    "trial": pgettext_lazy("mini program version", "Trial"),
    "developer": pgettext_lazy("mini program version", "Developer"),
}


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def kind_cards() -> list[dict[str, Any]]:
    """Every channel kind with its label and one line on what it is, for the kind pickers."""
    return [
        {
            "kind": kind,
            "label": kind_label(kind),
            "summary": KIND_SUMMARIES.get(kind, ""),
            "reach": REACH_LABELS[REACH[kind]],
        }
        for kind in TRANSPORTS
    ]


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def reason_label(reason: str) -> str:
    """A stored reason in words: "frequency_cap:sms/day" → "超出频次上限（短信，每天）"."""
    if not reason:
        return ""
    if reason in REASONS:
        return str(REASONS[reason])
    prefix, _colon, code = reason.partition(":")
    if prefix == "frequency_cap":
        scope, _slash, window = code.partition("/")
        return _("Over the frequency cap (%(scope)s, %(window)s)") % {
            "scope": REACH_LABELS.get(scope, scope),
            "window": WINDOW_LABELS.get(window, window),
        }
    if prefix in CODED_REASONS:
        return CODED_REASONS[prefix] % {"code": code}
    return reason


# --- form rows from field specs -----------------------------------------------------------


def field_label(spec: FieldSpec) -> str:
    """A transport's English label in the console's language (messaging_console.po)."""
    return pgettext("channel field", spec.label)


def field_help(spec: FieldSpec) -> str:
    return pgettext("channel field", spec.help) if spec.help else ""


def input_kind(spec: FieldSpec) -> str:
    """How the console edits a field: text, textarea, code (HTML, JSON), int, bool, choices,
    params (name → value rows) or param_list (value rows)."""
    if spec.choices:
        return "choices"
    if spec.kind in ("html", "json"):
        return "code"
    if spec.kind in ("textarea", "int", "bool", "params", "param_list"):
        return spec.kind
    return "text"


def field_rows(
    specs: Iterable[FieldSpec],
    prefix: str,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    secret: bool = False,
    secrets_set: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """One row per field for the form templates: input name `<prefix>.<field>`, label, help,
    value and the error beside it. Secret rows never carry a value, only whether one is set."""
    stored = set(secrets_set)
    rows = []
    for spec in specs:
        name = f"{prefix}.{spec.name}"
        value = "" if secret else values.get(spec.name, spec.default)
        if spec.kind == "params":  # stored as an object, typed as (name, value) pairs
            value = list(value.items()) if isinstance(value, dict) else list(value or [])
        elif spec.kind == "param_list":
            value = list(value) if isinstance(value, list) else []
        rows.append(
            {
                "name": name,
                "key": spec.name,
                "id": "f-" + name.replace(".", "-"),
                "label": field_label(spec),
                "help": field_help(spec),
                "input": "password" if secret else input_kind(spec),
                "required": spec.required,
                "value": "" if value is None else value,
                "choices": [(c, str(CHOICE_LABELS.get(c, c))) for c in spec.choices],
                "error": errors.get(name, ""),
                "is_set": spec.name in stored,
            }
        )
    return rows


def read_fields(specs: Iterable[FieldSpec], prefix: str, post: QueryDict) -> dict[str, Any]:
    """Settings as typed: text as given (the action checks and converts it), a box ticked or
    not as a bool (an unticked box must store False, not fall back to a default)."""
    values: dict[str, Any] = {}
    for spec in specs:
        name = f"{prefix}.{spec.name}"
        if spec.kind == "bool":
            values[spec.name] = post.get(name) == "1"
        else:
            values[spec.name] = post.get(name, "").strip()
    return values


def typed_content(kind: str, post: QueryDict) -> dict[str, Any]:
    """The editor's fields as typed, to show them again: params as (name, value) pairs in
    their order, a param_list as its rows, a box as a bool, anything else as text."""
    typed: dict[str, Any] = {}
    for spec in transport_class(kind).template_fields:
        name = f"content.{spec.name}"
        if spec.kind == "params":
            keys, values = post.getlist(f"{name}.key"), post.getlist(f"{name}.value")
            typed[spec.name] = [(k.strip(), v) for k, v in zip(keys, values, strict=False)]
        elif spec.kind == "param_list":
            typed[spec.name] = post.getlist(f"{name}.item")
        elif spec.kind == "bool":
            typed[spec.name] = post.get(name) == "1"
        else:
            typed[spec.name] = post.get(name, "")
    return typed


def read_content(kind: str, post: QueryDict) -> dict[str, Any]:
    """A template's content from the editor. Empty fields and rows are left out (the action
    names the required ones); a parameter value without a name, or a whole number that is
    not one, is a ValidationError on its field."""
    content: dict[str, Any] = {}
    typed = typed_content(kind, post)
    for spec in transport_class(kind).template_fields:
        name, value = f"content.{spec.name}", typed[spec.name]
        if spec.kind == "params":
            pairs = [(k, v) for k, v in value if k or v.strip()]
            if any(not k for k, _v in pairs):
                raise ValidationError(name, "every parameter needs a name")
            value = dict(pairs)
        elif spec.kind == "param_list":
            value = list(value)
            while value and not value[-1].strip():
                value.pop()  # rows added but not filled in yet
        elif spec.kind == "int":
            try:
                value = int(value) if value.strip() else None
            except ValueError:
                raise ValidationError(name, "expected a whole number") from None
        if value not in (None, "", [], {}):
            content[spec.name] = value
    return content


# --- errors beside fields -----------------------------------------------------------------

_LAST_STEP = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")


def error_field(exc: SiyuError) -> str:
    """The field an error names ("name", "settings.url", "content.params.name"), or ""."""
    if isinstance(exc, ValidationError):
        return exc.field
    details = exc.details if isinstance(exc.details, dict) else {}
    return str(details.get("field", ""))


def error_slot(exc: SiyuError, slots: Iterable[str], prefix: str = "") -> str:
    """The form slot an error belongs to: the field itself or the field holding it
    ("content.params.name" → "content.params"); a path without the prefix a transport's own
    check uses ("subject") is tried with it. "" when no slot fits."""
    slots = set(slots)
    path = error_field(exc)
    for candidate in (path, f"{prefix}.{path}" if prefix and path else ""):
        while candidate:
            if candidate in slots:
                return candidate
            shorter = _LAST_STEP.sub("", candidate)
            candidate = "" if shorter == candidate else shorter
    return ""


def place_error(exc: SiyuError, slots: Iterable[str], prefix: str = "") -> dict[str, str]:
    """{slot: message} for the form: beside its field, or under "general" naming the field."""
    slot = error_slot(exc, slots, prefix)
    if slot:
        return {slot: error_text(exc)}
    field = error_field(exc)
    message = error_text(exc)
    return {"general": f"{field}: {message}" if field else message}
