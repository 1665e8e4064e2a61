"""Merge hook: what a merged-away contact did in broadcasts and journeys passes to its
survivor, where that makes sense."""

from django.utils import timezone

from siyu.campaigns.journey_models import EnrollmentStatus, JourneyEnrollment
from siyu.campaigns.models import AudienceMember
from siyu.core.models import Workspace


def move_campaigns_on_merge(workspace: Workspace, mapping: dict[int, int]) -> None:
    now = timezone.now()
    for other, survivor in mapping.items():
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
