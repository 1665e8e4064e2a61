"""Labels the campaign pages (群发, 旅程) show for stored codes: statuses, schedules, funnel
steps, step and trigger kinds, filter operators. Short words carry a context so that they
never collide with the same English word elsewhere in the console."""

from django.utils.translation import gettext_lazy, pgettext_lazy

BROADCAST_STATUS = {
    "draft": pgettext_lazy("broadcast", "Draft"),
    "scheduled": pgettext_lazy("broadcast", "Scheduled"),
    "sending": pgettext_lazy("broadcast", "Sending"),
    "done": pgettext_lazy("broadcast", "Done"),
    "cancelled": pgettext_lazy("broadcast", "Cancelled"),
}
BROADCAST_BADGES = {"scheduled": "warn", "sending": "ok", "done": "ok", "cancelled": "danger"}
RECURRENCE = {
    "": pgettext_lazy("recurrence", "Once"),
    "daily": pgettext_lazy("recurrence", "Every day"),
    "weekly": pgettext_lazy("recurrence", "Every week"),
}
WEEKDAYS = [
    (1, pgettext_lazy("weekday", "Mon")),
    (2, pgettext_lazy("weekday", "Tue")),
    (3, pgettext_lazy("weekday", "Wed")),
    (4, pgettext_lazy("weekday", "Thu")),
    (5, pgettext_lazy("weekday", "Fri")),
    (6, pgettext_lazy("weekday", "Sat")),
    (7, pgettext_lazy("weekday", "Sun")),
]

# the guardrail funnel, in the order contacts pass through it
FUNNEL = {
    "included": pgettext_lazy("funnel", "Included"),
    "audience": pgettext_lazy("funnel", "After exclusions"),
    "holdout": pgettext_lazy("funnel", "Holdout"),
    "no_consent": pgettext_lazy("funnel", "No consent"),
    "no_address": pgettext_lazy("funnel", "No contact address"),
    "frequency_cap": pgettext_lazy("funnel", "Over the frequency cap"),
    "to_send": pgettext_lazy("funnel", "Will be sent"),
}
GROUPS = {
    "targeted": pgettext_lazy("experiment", "Targeted"),
    "holdout": pgettext_lazy("experiment", "Holdout"),
}
VERDICTS = {
    "lift": gettext_lazy("Significant lift"),
    "drop": gettext_lazy("Significant drop"),
    "flat": gettext_lazy("No significant difference"),
    "too_few": gettext_lazy("Too few members to tell"),
}

JOURNEY_STATUS = {
    "draft": pgettext_lazy("journey", "Draft"),
    "active": pgettext_lazy("journey", "Active"),
    "paused": pgettext_lazy("journey", "Paused"),
    "archived": pgettext_lazy("journey", "Archived"),
}
JOURNEY_BADGES = {"active": "ok", "paused": "warn", "archived": "danger"}
WALK_STATUS = {
    "active": pgettext_lazy("walk", "In the journey"),
    "completed": pgettext_lazy("walk", "Completed"),
    "converted": pgettext_lazy("walk", "Converted"),
    "holdout": pgettext_lazy("walk", "Holdout"),
    "exited": pgettext_lazy("walk", "Exited"),
}
TRIGGERS = {
    "segment_entered": pgettext_lazy("trigger", "Enters a segment"),
    "segment_exited": pgettext_lazy("trigger", "Leaves a segment"),
    "event": pgettext_lazy("trigger", "Does an event"),
    "date": pgettext_lazy("trigger", "A date"),
    "api": pgettext_lazy("trigger", "Entered through the API"),
}
DATE_FIELDS = {
    "birthday": pgettext_lazy("date trigger", "Birthday"),
    "first_order": pgettext_lazy("date trigger", "First order"),
}
STEP_TYPES = {
    "send": pgettext_lazy("step", "Send a message"),
    "wait": pgettext_lazy("step", "Wait"),
    "branch": pgettext_lazy("step", "Branch"),
    "split": pgettext_lazy("step", "Random split"),
    "tag": pgettext_lazy("step", "Tags"),
    "attribute": pgettext_lazy("step", "Set an attribute"),
    "webhook": pgettext_lazy("step", "Webhook"),
    "exit": pgettext_lazy("step", "Exit"),
}
WAIT_MODES = {
    "duration": pgettext_lazy("wait", "For a while"),
    "until_time": pgettext_lazy("wait", "Until a time of day"),
    "until_event": pgettext_lazy("wait", "Until an event"),
}
FILTER_OPS = {
    "eq": pgettext_lazy("filter", "equals"),
    "neq": pgettext_lazy("filter", "does not equal"),
    "gt": pgettext_lazy("filter", "greater than"),
    "gte": pgettext_lazy("filter", "at least"),
    "lt": pgettext_lazy("filter", "less than"),
    "lte": pgettext_lazy("filter", "at most"),
    "contains": pgettext_lazy("filter", "contains"),
    "exists": pgettext_lazy("filter", "is present"),
}


def label(table: dict, code: str) -> str:
    return str(table.get(code, code))
