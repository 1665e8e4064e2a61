"""What a journey did: contacts per step (per version), walks by status, each message step's
messages by status and reason, and the goal conversion of those who walked against the
holdout (intention to treat, as for broadcasts: reports.uplift)."""

from typing import Any

from django.db.models import Count, Q

from siyu.campaigns.journey_models import EnrollmentStatus, Journey, JourneyStepStat
from siyu.campaigns.reports import message_counts, uplift


def journey_report(journey: Journey) -> dict[str, Any]:
    walks = journey.enrollments.all()
    by_status = dict(walks.values_list("status").annotate(n=Count("id")).order_by())
    steps: dict[int, dict[str, int]] = {}
    for version, step, entered in JourneyStepStat.objects.filter(
        version__journey=journey
    ).values_list("version__number", "step", "entered"):
        steps.setdefault(version, {})[step] = entered
    messages = {}
    graph = journey.live_version.graph if journey.live_version else {"steps": {}}
    for step_id, step in graph["steps"].items():
        if step["type"] in ("send", "webhook"):
            messages[step_id] = message_counts(
                journey.workspace_id, f"journey:{journey.pk}:{step_id}"
            )
    arms = walks.aggregate(
        targeted=Count("id", filter=~Q(status=EnrollmentStatus.HOLDOUT)),
        targeted_converted=Count(
            "id", filter=~Q(status=EnrollmentStatus.HOLDOUT) & Q(converted_at__isnull=False)
        ),
        holdout=Count("id", filter=Q(status=EnrollmentStatus.HOLDOUT)),
        holdout_converted=Count(
            "id", filter=Q(status=EnrollmentStatus.HOLDOUT) & Q(converted_at__isnull=False)
        ),
    )
    targeted = {"n": arms["targeted"], "converted": arms["targeted_converted"]}
    holdout = {"n": arms["holdout"], "converted": arms["holdout_converted"]}
    for arm in (targeted, holdout):
        arm["rate"] = arm["converted"] / arm["n"] if arm["n"] else None
    return {
        "walks": by_status,
        "steps": steps,
        "messages": messages,
        "conversion": {
            "goal_event": journey.goal_event,
            "targeted": targeted,
            "holdout": holdout,
            "uplift": uplift(targeted, holdout),
        },
    }
