"""The thresholds behind lifecycle stages and value tiers (docs/tiers.md): each one with its
default, an empty field meaning "the default", amounts in yuan (stored in fen), and an
error shown beside the setting it is about."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from siyu.console.access import workspace_view
from siyu.console.helpers import render_ws
from siyu.core.audit import Actor
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.segments.models import ScoringSettings
from siyu.segments.scores import DEFAULTS
from siyu.segments.scoring_actions import settings_update
from siyu.tracking.orders import yuan

# (group, [(key, label, unit)]); a unit of "yuan" means the value is kept in fen
GROUPS = [
    (
        gettext_lazy("Lifecycle stages"),
        [
            ("new_days", gettext_lazy("New: first seen within"), "days"),
            ("active_days", gettext_lazy("Active: visited within"), "days"),
            ("dormant_window_days", gettext_lazy("Dormant: count visit days over"), "days"),
            (
                "dormant_max_visits",
                gettext_lazy("Dormant: at most this many visit days"),
                "visits",
            ),
            ("churned_days", gettext_lazy("Churned: not seen within"), "days"),
        ],
    ),
    (
        gettext_lazy("Value tiers"),
        [
            ("tier_window_days", gettext_lazy("Spend counted over the last"), "days"),
            ("high_spend_fen", gettext_lazy("High: spend above"), "yuan"),
            ("high_min_orders", gettext_lazy("High: at least this many orders"), "orders"),
            ("mid_spend_fen", gettext_lazy("Mid: spend from"), "yuan"),
        ],
    ),
]
# how an error message names another setting ("must be less than the high spend (5000.00)")
NAMES = {
    "new_days": gettext_lazy("the new-user days"),
    "active_days": gettext_lazy("the active days"),
    "dormant_window_days": gettext_lazy("the dormant window"),
    "dormant_max_visits": gettext_lazy("the dormant visit days"),
    "churned_days": gettext_lazy("the churn days"),
    "tier_window_days": gettext_lazy("the spend window"),
    "high_spend_fen": gettext_lazy("the high spend"),
    "high_min_orders": gettext_lazy("the high order count"),
    "mid_spend_fen": gettext_lazy("the mid spend"),
}
UNITS = {key: unit for _group, rows in GROUPS for key, _label, unit in rows}
UNIT_LABELS = {
    "days": gettext_lazy("days"),
    "visits": gettext_lazy("visit days"),
    "orders": gettext_lazy("orders"),
    "yuan": gettext_lazy("yuan"),
}


def shown(key: str, value: int) -> str:
    return yuan(value) if UNITS.get(key) == "yuan" else str(value)


def parse(key: str, raw: str) -> int:
    """The typed text as the stored integer (yuan become fen)."""
    if UNITS[key] == "yuan":
        try:
            amount = Decimal(raw.replace(",", ""))
        except InvalidOperation as exc:
            raise ValidationError(key, "expected an amount in yuan") from exc
        if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
            raise ValidationError(key, "expected an amount in yuan")
        return int(amount * 100)
    try:
        return int(raw)
    except ValueError as exc:
        raise ValidationError(key, "must be a whole number") from exc


def message(exc: ValidationError) -> str:
    """The error in words, naming the other setting by its label rather than its key."""
    params = dict(exc.params)
    other = params.get("key")
    if other in NAMES:
        params["key"] = NAMES[other]
        if isinstance(params.get("other"), int):
            params["other"] = shown(other, params["other"])
    text = _(exc.template)
    return text % params if params else text


def _stored(workspace: Workspace) -> dict[str, int]:
    row = ScoringSettings.objects.filter(workspace=workspace).first()
    values = row.values if row is not None and isinstance(row.values, dict) else {}
    return {k: v for k, v in values.items() if k in DEFAULTS}


def _groups(form: dict[str, str], errors: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "label": label,
            "rows": [
                {
                    "key": key,
                    "label": name,
                    "unit": UNIT_LABELS[unit],
                    "money": unit == "yuan",
                    "value": form.get(key, ""),
                    "default": shown(key, DEFAULTS[key]),
                    "error": errors.get(key, ""),
                }
                for key, name, unit in rows
            ],
        }
        for label, rows in GROUPS
    ]


@workspace_view("scoring.manage")
@require_http_methods(["GET", "POST"])
def scoring_settings(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() for key in DEFAULTS}
        values: dict[str, int] = {}
        if request.POST.get("reset") != "1":
            for key, raw in form.items():
                if not raw:
                    continue  # empty: the default
                try:
                    values[key] = parse(key, raw)
                except ValidationError as exc:
                    errors[key] = message(exc)
        if not errors:
            try:
                settings_update(workspace=workspace, actor=actor, values=values)
            except ValidationError as exc:
                errors[exc.field if exc.field in DEFAULTS else "__all__"] = message(exc)
            else:
                messages.success(
                    request, _("Thresholds saved. They apply from the next recalculation.")
                )
                return redirect("console:scoring_settings", workspace.slug)
    else:
        form = {key: shown(key, value) for key, value in _stored(workspace).items()}
    context = {"groups": _groups(form, errors), "general_error": errors.get("__all__", "")}
    status = 422 if errors else 200
    return render_ws(request, "console/segments/scoring.html", context, status=status)
