"""The audit log: newest first, keyset-paged by id, filterable by action, actor, object and
date range (dates in the workspace time zone)."""

import datetime
import json
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.console.access import workspace_view
from siyu.core.models import AuditLog

PAGE_SIZE = 50
VALUE_MAX = 160

ACTION_LABELS = {
    "contact.create": gettext_lazy("Contact created"),
    "contact.update": gettext_lazy("Contact edited"),
    "contact.delete": gettext_lazy("Contact deleted"),
    "contact.merge": gettext_lazy("Contacts merged"),
    "contact.assign": gettext_lazy("Contact owner changed"),
    "contacts.tag": gettext_lazy("Contacts tagged"),
    "contacts.export": gettext_lazy("Contacts exported"),
    "export.expire": gettext_lazy("Export file expired and deleted"),
    "contacts.import": gettext_lazy("Contacts imported"),
    "orders.import": gettext_lazy("Orders imported"),
    "import.report_download": gettext_lazy("Import error report downloaded"),
    "identity.add": gettext_lazy("Identity added"),
    "identity.remove": gettext_lazy("Identity removed"),
    "pii.reveal": gettext_lazy("Phone or email revealed"),
    "consent.set": gettext_lazy("Consent recorded"),
    "tag.create": gettext_lazy("Tag created"),
    "tag.update": gettext_lazy("Tag renamed"),
    "tag.delete": gettext_lazy("Tag deleted"),
    "taggroup.create": gettext_lazy("Tag group created"),
    "taggroup.update": gettext_lazy("Tag group renamed"),
    "taggroup.delete": gettext_lazy("Tag group deleted"),
    "attribute.define": gettext_lazy("Custom attribute defined"),
    "attribute.delete": gettext_lazy("Custom attribute deleted"),
    "staff.add": gettext_lazy("Staff member added"),
    "staff.role": gettext_lazy("Staff role changed"),
    "staff.remove": gettext_lazy("Staff member removed"),
    "apikey.create": gettext_lazy("API key created"),
    "apikey.revoke": gettext_lazy("API key revoked"),
    "workspace.create": gettext_lazy("Workspace created"),
    "workspace.update": gettext_lazy("Workspace settings changed"),
}

OBJECT_LABELS = {
    "contact": gettext_lazy("Contact"),
    "tag": gettext_lazy("Tag"),
    "taggroup": gettext_lazy("Tag group"),
    "attributedefinition": gettext_lazy("Custom attribute"),
    "staff": gettext_lazy("Staff member"),
    "membership": gettext_lazy("Staff member"),
    "apikey": gettext_lazy("API key"),
    "workspace": gettext_lazy("Workspace"),
    "job": gettext_lazy("Background job"),
}


def action_label(code: str) -> str:
    label = ACTION_LABELS.get(code)
    return str(label) if label is not None else code


def object_label(code: str) -> str:
    label = OBJECT_LABELS.get(code)
    return str(label) if label is not None else code


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_MAX else text[: VALUE_MAX - 1] + "…"


def diff(before: Any, after: Any) -> list[dict[str, str]]:
    """Rows of (field, before, after, kind) for what changed; kind is "set" (only after, e.g.
    a creation), "unset" (only before, e.g. a deletion) or "change". A non-dict side is one
    row."""
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [_row("", before, after, before is not None, after is not None)]
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    rows = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old == new:
            continue
        rows.append(_row(key, old, new, key in before, key in after))
    return rows


def _row(key: str, old: Any, new: Any, had: bool, has: bool) -> dict[str, str]:
    kind = "change" if had and has else ("set" if has else "unset")
    return {"key": key, "before": _show(old), "after": _show(new), "kind": kind}


def _date(value: str, field_label: str, errors: list[str]) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        errors.append(_("%(field)s: expected a date YYYY-MM-DD.") % {"field": field_label})
        return None


def _zone(workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


@workspace_view("audit.view")
def audit(request, workspace, actor):
    get = request.GET
    filters = {
        "action": get.get("action", "").strip(),
        "actor": get.get("actor", "").strip(),
        "object_type": get.get("object_type", "").strip(),
        "object_id": get.get("object_id", "").strip(),
        "date_from": get.get("date_from", "").strip(),
        "date_to": get.get("date_to", "").strip(),
    }
    errors: list[str] = []
    base = AuditLog.objects.filter(workspace=workspace)
    qs = base
    if filters["action"]:
        qs = qs.filter(action=filters["action"])
    if filters["actor"]:
        qs = qs.filter(actor_label__icontains=filters["actor"])
    if filters["object_type"]:
        qs = qs.filter(object_type=filters["object_type"])
    if filters["object_id"]:
        qs = qs.filter(object_id=filters["object_id"])
    zone = _zone(workspace)
    start = _date(filters["date_from"], _("From"), errors)
    end = _date(filters["date_to"], _("To"), errors)
    if start:
        qs = qs.filter(created_at__gte=datetime.datetime.combine(start, datetime.time(), zone))
    if end:
        until = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time(), zone)
        qs = qs.filter(created_at__lt=until)
    cursor = get.get("cursor", "")
    if cursor:
        try:
            qs = qs.filter(pk__lt=int(cursor))
        except ValueError:
            errors.append(_("The page link is broken; showing the newest entries."))
            cursor = ""

    rows = list(qs.order_by("-id")[: PAGE_SIZE + 1])
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    for row in rows:
        row.label = action_label(row.action)
        row.object_label = object_label(row.object_type)
        row.changes = diff(row.before, row.after)
        row.contact_url = (
            f"/w/{workspace.slug}/contacts/{row.object_id}/"
            if row.object_type == "contact" and row.object_id.isdigit()
            else ""
        )

    active = {k: v for k, v in filters.items() if v}
    context = {
        "rows": rows,
        "filters": filters,
        "filtered": bool(active),
        "errors": errors,
        "actions": [
            (code, action_label(code))
            for code in base.order_by("action").values_list("action", flat=True).distinct()
        ],
        "object_types": [
            (code, object_label(code))
            for code in base.exclude(object_type="")
            .order_by("object_type")
            .values_list("object_type", flat=True)
            .distinct()
        ],
        "older_url": "?" + urlencode({**active, "cursor": rows[-1].pk}) if has_more else "",
        "newest_url": ("?" + urlencode(active)) if cursor else "",
        "paged": bool(cursor),
    }
    return render(request, "console/admin/audit.html", context)
