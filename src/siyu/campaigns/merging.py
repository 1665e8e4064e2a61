"""Merge hook: what a merged-away contact did in broadcasts and journeys passes to its
survivor, where that makes sense."""

from django.utils import timezone

from siyu.campaigns.journey_models import EnrollmentStatus, JourneyEnrollment
from siyu.campaigns.models import AudienceMember
from siyu.core.models import Workspace

CHUNK = 900  # contact ids per IN (…), under SQLite's oldest parameter limit


def move_campaigns_on_merge(workspace: Workspace, mapping: dict[int, int]) -> None:
    now = timezone.now()
    # Identity resolution merges hundreds of contacts at once, nearly all of them too new to
    # have been in a campaign: only those that were are looked at one by one.
    others = list(mapping)
    involved = set()
    for start in range(0, len(others), CHUNK):
        chunk = others[start : start + CHUNK]
        for model in (AudienceMember, JourneyEnrollment):
            involved.update(
                model.objects.filter(workspace=workspace, contact_id__in=chunk)
                .values_list("contact_id", flat=True)
                .distinct()
            )
    for other, survivor in mapping.items():
        if other not in involved:
            continue
        # a run's frozen audience: the survivor's own row wins when both were in it
        taken = set(
            AudienceMember.objects.filter(workspace=workspace, contact_id=survivor).values_list(
                "run_id", flat=True
            )
        )
        rows = AudienceMember.objects.filter(workspace=workspace, contact_id=other)
        rows.filter(run_id__in=taken).delete()
        rows.update(contact_id=survivor)
        # journeys: history moves; of two walks in one journey at once, the survivor's goes on
        busy = set(
            JourneyEnrollment.objects.filter(
                workspace=workspace, contact_id=survivor, status=EnrollmentStatus.ACTIVE
            ).values_list("journey_id", flat=True)
        )
        walks = JourneyEnrollment.objects.filter(workspace=workspace, contact_id=other)
        walks.filter(status=EnrollmentStatus.ACTIVE, journey_id__in=busy).update(
            status=EnrollmentStatus.EXITED, wake_at=None, finished_at=now
        )
        walks.update(contact_id=survivor)
