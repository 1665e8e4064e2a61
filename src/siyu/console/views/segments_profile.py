"""The "分层与价值" card on a contact's page: lifecycle stage, value tier, RFM, predicted
lifetime value and the segments the contact is in. The caller has fetched the contact
through `get_contact_for` (access already checked)."""

from typing import Any

from siyu.console.views.contact_activity import money
from siyu.contacts.models import Contact
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.segments.models import ContactScore, SegmentMember


def score_context(workspace: Workspace, actor: Actor, contact: Contact) -> dict[str, Any]:
    score = ContactScore.objects.filter(workspace=workspace, contact=contact).first()
    memberships = (
        SegmentMember.objects.filter(
            workspace=workspace, contact=contact, segment__archived_at__isnull=True
        )
        .select_related("segment")
        .order_by("segment__kind", "segment__name")
    )
    card: dict[str, Any] = {"score": score, "score_segments": [m.segment for m in memberships]}
    if score is not None:
        card["score_p_alive"] = None if score.p_alive is None else round(score.p_alive * 100)
        card["score_value"] = (
            None
            if score.expected_value_12m_fen is None
            else money(score.expected_value_12m_fen, workspace.currency)
        )
    return card
