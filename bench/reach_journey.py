"""The journey part of bench/reach.py: every contact of the workspace through a 5-step journey
with a wait, by the worker's own stepping function, with the clock moved forward instead of
waited for.

    send → wait 1 day → branch (bought in the last 30 days?) → yes: tag / no: send → exit

Entering is timed on its own (one bulk insert per 5,000 contacts); then `advance(now)` runs
until nothing is due (send, then the wait sets its timer), the clock jumps a day and a
minute, and `advance` runs again (the wait fires, the branch, the tag or the second send,
the end). Contact-steps/s = steps taken / stepping time. The outbox rows the two send steps
queue are part of the work measured (they are not sent here: bench_send measures sending)."""

import datetime
import time

from django.utils import timezone


def bench_journey(ws, channel, template, *, log=print) -> dict:
    from siyu.campaigns import journey_actions
    from siyu.campaigns.journey_engine import advance_workspace
    from siyu.campaigns.journey_enroll import enroll
    from siyu.campaigns.journey_models import EnrollmentStatus, JourneyEnrollment
    from siyu.contacts.actions.tags import tag_create, tag_group_create
    from siyu.contacts.models import Contact
    from siyu.core.audit import Actor

    actor = Actor.system("bench:reach")
    group = tag_group_create(workspace=ws, actor=actor, name=f"旅程-{time.time_ns()}")
    tag = tag_create(workspace=ws, actor=actor, group=group, name="近期购买")
    graph = {
        "trigger": {"type": "api"},
        "start": "hello",
        "steps": {
            "hello": {
                "type": "send",
                "channel_id": channel.pk,
                "template_id": template.pk,
                "next": "wait",
            },
            "wait": {"type": "wait", "duration": {"days": 1}, "next": "bought"},
            "bought": {
                "type": "branch",
                "yes": "tag",
                "no": "nudge",
                "rule": {
                    "type": "orders",
                    "metric": "count",
                    "op": "gte",
                    "value": 1,
                    "window": {"last_days": 30},
                },
            },
            "tag": {"type": "tag", "add": [tag.pk]},
            "nudge": {"type": "send", "channel_id": channel.pk, "template_id": template.pk},
        },
    }
    journey = journey_actions.journey_create(
        workspace=ws, actor=actor, name=f"bench-{time.time_ns()}", graph=graph
    )
    journey = journey_actions.journey_set_status(
        workspace=ws, actor=actor, journey=journey, status="active"
    )
    ids = list(Contact.objects.filter(workspace=ws).values_list("pk", flat=True))
    now = timezone.now()
    started = time.perf_counter()
    entered = enroll(journey, ids, now)
    enroll_s = time.perf_counter() - started
    log(f"journey: {entered:,} contacts entered in {enroll_s:.1f} s")
    steps, stepping = 0, 0.0
    for clock in (now, now + datetime.timedelta(days=1, minutes=1)):
        started = time.perf_counter()
        taken = advance_workspace(ws.pk, clock)
        seconds = time.perf_counter() - started
        steps, stepping = steps + taken, stepping + seconds
        log(f"journey: {taken:,} steps at {clock:%Y-%m-%d %H:%M} in {seconds:.1f} s")
    walks = JourneyEnrollment.objects.filter(journey=journey)
    done = walks.filter(status=EnrollmentStatus.COMPLETED).count()
    log(
        f"journey: {steps:,} contact-steps in {stepping:.1f} s = {steps / stepping:,.0f}/s; "
        f"{done:,} of {entered:,} walks completed"
    )
    return {
        "journey_contacts": entered,
        "journey_enroll_s": round(enroll_s, 2),
        "journey_steps": steps,
        "journey_step_s": round(stepping, 2),
        "journey_steps_per_s": round(steps / stepping) if stepping else None,
        "journey_completed": done,
    }
