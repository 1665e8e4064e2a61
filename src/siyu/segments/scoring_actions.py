"""The write action for a workspace's scoring thresholds (scores.DEFAULTS, docs/tiers.md).
The scores themselves are written by `scores.scores_refresh`, which has no actor: it is
derived data, like the tracking aggregates."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from siyu.core.audit import Actor, audit
from siyu.core.models import Workspace
from siyu.segments.models import ScoringSettings
from siyu.segments.scores import validate_scoring_settings


@transaction.atomic
def settings_update(
    *, workspace: Workspace, actor: Actor, values: dict[str, Any]
) -> ScoringSettings:
    """Replace the workspace's overrides with `values` (validated; {} returns to the
    defaults), audited with before and after. Raises ValidationError naming the bad key,
    and then changes nothing. The new thresholds apply from the next `scores_refresh`."""
    cleaned = validate_scoring_settings(values)
    row, _ = ScoringSettings.objects.select_for_update().get_or_create(
        workspace=workspace, defaults={"values": {}}
    )
    before = dict(row.values) if isinstance(row.values, dict) else {}
    if before == cleaned:  # a resubmitted form: nothing to record
        return row
    row.values = cleaned
    row.updated_at = timezone.now()
    row.save(update_fields=["values", "updated_at"])
    audit(
        workspace=workspace,
        actor=actor,
        action="scoring_settings.update",
        obj=row,
        before=before,
        after=cleaned,
    )
    return row
