"""One contact's profile: fields, attributes, owner, identities (masked, reveal audited),
inline tags, consent, merge, delete and the timeline.

Each write is a small POST view with its own permission. htmx posts get the refreshed card
back and an `HX-Trigger: timeline-changed` header so the timeline reloads itself; plain form
posts are redirected back to the page (errors re-render the page next to the form)."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch, prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.access import can
from siyu.console.access import workspace_view
from siyu.console.helpers import (
    form_error,
    invalid,
    render_ws,
    source_choices,
    staff_choices,
    tag_groups,
    to_int,
)
from siyu.console.labels import source_label
from siyu.console.views.contact_activity import summary_context
from siyu.console.views.segments_profile import score_context
from siyu.contacts import actions
from siyu.contacts.attributes import schema_for
from siyu.contacts.models import (
    Channel,
    Contact,
    ContactTag,
    Gender,
    Identity,
    IdentityKind,
)
from siyu.contacts.queries import ContactFilter, get_contact_for, timeline_for, visible_contacts
from siyu.contacts.timeline import describe
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, SiyuError
from siyu.core.models import Workspace

PROFILE = ("name", "gender", "birthday", "province", "city", "source")


def detail_context(
    workspace: Workspace,
    actor: Actor,
    contact: Contact,
    revealed: dict[int, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    prefetch_related_objects(
        [contact],
        Prefetch("identities", queryset=Identity.objects.order_by("id")),
        Prefetch("contact_tags", queryset=ContactTag.objects.select_related("tag__group")),
        "consents",
    )
    tags = sorted(
        (ct.tag for ct in contact.contact_tags.all()), key=lambda t: (t.group.sort, t.sort, t.pk)
    )
    consents = {c.channel: c for c in contact.consents.all()}
    return {
        "contact": contact,
        "source_text": source_label(contact.source),
        "attributes": [(d, contact.attributes.get(d.key)) for d in schema_for(workspace).values()],
        # (identity, clear value if just revealed on a no-JS post, else None)
        "identities": [(i, (revealed or {}).get(i.pk)) for i in contact.identities.all()],
        "kinds": IdentityKind.choices,
        "tags": tags,
        "add_groups": tag_groups(workspace, exclude={t.pk for t in tags}),
        "consents": [(code, label, consents.get(code)) for code, label in Channel.choices],
        "timeline": [(entry, describe(entry)) for entry in timeline_for(contact)],
        "staff": staff_choices(workspace) if can(actor, "contacts.assign") else [],
        "genders": Gender.choices,
        "sources": source_choices(contact.source),
        "errors": {},
        **extra,
    }


def page(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact: Contact, **extra: Any
) -> HttpResponse:
    status = extra.pop("status", 200)
    context = detail_context(workspace, actor, contact, **extra)
    # Only the whole page carries the summary card; the htmx partials of `run` do not.
    context.update(summary_context(workspace, contact))
    context.update(score_context(workspace, actor, contact))
    return render_ws(request, "console/contacts/detail.html", context, status=status)


def run(
    request: HttpRequest,
    workspace: Workspace,
    actor: Actor,
    contact: Contact,
    form: str,
    write: Callable[[], Any],
    partial: str = "",
) -> HttpResponse:
    """Run one write and answer htmx with the refreshed card, or a plain post with a redirect.
    `form` names the error slot (`<form>-error`) the message goes to on a SiyuError."""
    try:
        write()
    except SiyuError as exc:
        if request.htmx:
            return form_error(request, exc, f"{form}-error")
        return page(request, workspace, actor, contact, errors={form: exc}, status=exc.status)
    if not (request.htmx and partial):
        return redirect("console:contact", workspace.slug, contact.pk)
    contact.refresh_from_db()
    context = detail_context(workspace, actor, contact)
    response = render_ws(request, f"console/contacts/{partial}", context)
    response.headers["HX-Trigger"] = "timeline-changed"
    return response


def _identity(contact: Contact, identity_id: int) -> Identity:
    identity = contact.identities.filter(pk=identity_id).first()
    if identity is None:
        raise NotFound("identity not found")
    return identity


@workspace_view("contacts.view")
def contact_detail(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    return page(request, workspace, actor, contact)


@workspace_view("contacts.view")
def contact_timeline(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    timeline = [(entry, describe(entry)) for entry in timeline_for(contact)]
    context = {"contact": contact, "timeline": timeline}
    return render_ws(request, "console/contacts/_timeline.html", context)


@workspace_view("contacts.edit")
@require_POST
def contact_edit(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    profile = {k: request.POST.get(k, "") for k in PROFILE if k in request.POST}
    attributes = {}
    for definition in schema_for(workspace).values():
        field = f"attr_{definition.key}"
        if field in request.POST:  # a field left out of the form is left alone
            attributes[definition.key] = request.POST.get(field, "") or None

    def write() -> None:
        actions.contact_update(
            workspace=workspace,
            actor=actor,
            contact=contact,
            profile=profile,
            attributes=attributes,
        )

    return run(request, workspace, actor, contact, "profile", write)


@workspace_view("contacts.assign")
@require_POST
def contact_assign(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    owner_id = to_int(request.POST.get("owner"))  # empty = unassigned

    def write() -> None:
        actions.contact_assign(workspace=workspace, actor=actor, contact=contact, owner_id=owner_id)

    return run(request, workspace, actor, contact, "owner", write)


@workspace_view("contacts.tag")
@require_POST
def contact_tags(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    """Add one tag (`add`) or remove one (`remove`) inline."""
    contact = get_contact_for(workspace, actor, contact_id)
    add, remove = to_int(request.POST.get("add")), to_int(request.POST.get("remove"))

    def write() -> None:
        if not (add or remove):
            raise invalid(_("Choose a tag first."))
        actions.contacts_tag(
            workspace=workspace,
            actor=actor,
            contact_ids=[contact.pk],
            add=[add] if add else [],
            remove=[remove] if remove else [],
        )

    return run(request, workspace, actor, contact, "tags", write, "_tags.html")


@workspace_view("contacts.consent")
@require_POST
def contact_consent(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)

    def write() -> None:
        actions.consent_set(
            workspace=workspace,
            actor=actor,
            contact=contact,
            channel=request.POST.get("channel", ""),
            status=request.POST.get("status", ""),
            source="console",  # recorded by staff here; who did it is on the timeline
        )

    return run(request, workspace, actor, contact, "consent", write, "_consent.html")


@workspace_view("contacts.edit")
@require_POST
def identity_add(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)

    def write() -> None:
        actions.identity_add(
            workspace=workspace,
            actor=actor,
            contact=contact,
            kind=request.POST.get("kind", ""),
            value=request.POST.get("value", ""),
            app_id=request.POST.get("app_id", "").strip(),
        )

    return run(request, workspace, actor, contact, "identity", write, "_identities.html")


@workspace_view("contacts.edit")
@require_POST
def identity_remove(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int, identity_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    identity = _identity(contact, identity_id)

    def write() -> None:
        actions.identity_remove(workspace=workspace, actor=actor, identity=identity)

    return run(request, workspace, actor, contact, "identity", write, "_identities.html")


@workspace_view("pii.reveal")
@require_POST
def identity_reveal(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int, identity_id: int
) -> HttpResponse:
    """The clear phone/email, audited by the action. A POST so that no prefetch, crawler or
    browser history ever reveals a value."""
    contact = get_contact_for(workspace, actor, contact_id)
    identity = _identity(contact, identity_id)
    value = actions.identity_reveal(workspace=workspace, actor=actor, identity=identity)
    if request.htmx:
        context = {"identity": identity, "value": value}
        response = render_ws(request, "console/contacts/_revealed.html", context)
        response.headers["HX-Trigger"] = "timeline-changed"
    else:
        response = page(request, workspace, actor, contact, revealed={identity.pk: value})
    response.headers["Cache-Control"] = "no-store"
    return response


@workspace_view("contacts.merge")
def merge_search(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    """Contacts to merge into this one, found by name prefix or exact phone/email."""
    contact = get_contact_for(workspace, actor, contact_id)
    q = request.GET.get("merge_q", "").strip()[:200]
    candidates: list[Contact] = []
    if q:
        qs = ContactFilter(q=q).apply(workspace, visible_contacts(workspace, actor))
        candidates = list(qs.exclude(pk=contact.pk).select_related("owner").order_by("-id")[:10])
    extra = {"merge_q": q, "candidates": candidates, "searched": bool(q)}
    if request.htmx:
        context = {"contact": contact, **extra}
        return render_ws(request, "console/contacts/_merge_candidates.html", context)
    return page(request, workspace, actor, contact, **extra)


@workspace_view("contacts.merge")
@require_POST
def contact_merge(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    other = get_contact_for(workspace, actor, request.POST.get("other_id"))

    def write() -> None:
        if not request.POST.get("confirm"):
            raise invalid(_("Tick the box to confirm the merge."))
        actions.contacts_merge(workspace=workspace, actor=actor, survivor=contact, other=other)
        messages.success(request, _("Contact #%(id)s merged into this one.") % {"id": other.pk})

    return run(request, workspace, actor, contact, "merge", write)


@workspace_view("contacts.delete")
@require_POST
def contact_delete(
    request: HttpRequest, workspace: Workspace, actor: Actor, contact_id: int
) -> HttpResponse:
    contact = get_contact_for(workspace, actor, contact_id)
    if not request.POST.get("confirm"):
        error = invalid(_("Tick the box to confirm the deletion."))
        return page(request, workspace, actor, contact, errors={"delete": error}, status=422)
    name = str(contact)
    actions.contact_delete(workspace=workspace, actor=actor, contact=contact)
    messages.success(request, _("Contact %(name)s deleted.") % {"name": name})
    return redirect("console:contacts", workspace.slug)
