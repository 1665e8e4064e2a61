"""The customer pool list: search, filters, keyset paging, a lazy count, bulk tagging and
the new-contact form."""

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from siyu.accounts.access import can
from siyu.accounts.permissions import is_own_only
from siyu.console.access import error_text, workspace_view
from siyu.console.helpers import (
    form_error,
    invalid,
    is_partial,
    render_ws,
    source_choices,
    staff_choices,
    tag_groups,
    to_int,
)
from siyu.console.labels import source_label
from siyu.console.views.segments_static import static_segment_choices
from siyu.contacts.actions import contact_create, contacts_tag
from siyu.contacts.actions.contact import IdentityInput
from siyu.contacts.models import Contact, Gender
from siyu.contacts.normalize import looks_like_pii
from siyu.contacts.queries import (
    SORTS,
    ContactFilter,
    contact_page,
    primary_identity,
    visible_contacts,
)
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.jobs import job_create
from siyu.core.models import Workspace

PAGE_SIZE = 50
SORT_CHOICES = [
    ("-created", gettext_lazy("Newest first")),
    ("created", gettext_lazy("Oldest first")),
    ("-last_seen", gettext_lazy("Recently seen")),
    ("name", gettext_lazy("By name")),
]


# --- the list ----------------------------------------------------------------------------


def filter_from(params: QueryDict) -> ContactFilter:
    owner = params.get("owner", "")
    sort = params.get("sort", "-created")
    return ContactFilter(
        q=params.get("q", "").strip()[:200],
        tag_id=to_int(params.get("tag")),
        source=params.get("source", "").strip()[:40],
        owner_id=to_int(owner) if owner != "" else None,  # "0" = unassigned
        sort=sort if sort in SORTS else "-created",
        segment_id=to_int(params.get("segment")),
    )


def filter_query(flt: ContactFilter, **extra: str) -> str:
    """The list URL's query string for a filter (empty fields left out)."""
    params = {
        "q": flt.q,
        "tag": flt.tag_id or "",
        "source": flt.source,
        "owner": "" if flt.owner_id is None else flt.owner_id,
        "sort": "" if flt.sort == "-created" else flt.sort,
        "segment": flt.segment_id or "",
        **extra,
    }
    return urlencode({k: v for k, v in params.items() if v != ""})


def list_context(
    workspace: Workspace, actor: Actor, flt: ContactFilter, cursor: str = ""
) -> dict[str, Any]:
    qs = flt.apply(workspace, visible_contacts(workspace, actor))
    error = None
    try:
        contacts, next_cursor = contact_page(qs, sort=flt.sort, cursor=cursor, limit=PAGE_SIZE)
    except SiyuError as exc:  # a stale or edited cursor: show the first page instead
        error, cursor = exc, ""
        contacts, next_cursor = contact_page(qs, sort=flt.sort, limit=PAGE_SIZE)
    rows = [
        {
            "contact": c,
            "phone": primary_identity(c, "phone"),
            "source": source_label(c.source),
            "tags": sorted(
                (ct.tag for ct in c.contact_tags.all()), key=lambda t: (t.group_id, t.sort, t.pk)
            ),
        }
        for c in contacts
    ]
    query = filter_query(flt)
    return {
        "flt": flt,
        "rows": rows,
        "cursor": cursor,
        "query": query,
        "next_query": filter_query(flt, cursor=next_cursor) if next_cursor else "",
        "filtered": bool(flt.q or flt.tag_id or flt.source or flt.owner_id is not None),
        "list_error": error,
        "bulk_groups": tag_groups(workspace) if can(actor, "contacts.bulk") else [],
    }


@workspace_view("contacts.view")
def contact_list(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    flt = filter_from(request.GET)
    context = list_context(workspace, actor, flt, request.GET.get("cursor", ""))
    if is_partial(request, "contact-results"):
        response = render_ws(request, "console/contacts/_results.html", context)
        # The address bar gets the tidy query (no empty fields), so it can be shared, but
        # never a searched phone or email: URLs end up in history and proxies' logs.
        shown = replace(flt, q="") if looks_like_pii(flt.q) else flt
        query = filter_query(shown, cursor=context["cursor"])
        response.headers["HX-Push-Url"] = request.path + (f"?{query}" if query else "")
        return response
    own_only = is_own_only(actor.role)
    context.update(
        filter_groups=tag_groups(workspace),
        sources=source_choices(flt.source),
        staff=[] if own_only else staff_choices(workspace),
        sorts=SORT_CHOICES,
        static_segments=static_segment_choices(workspace) if can(actor, "segments.manage") else [],
    )
    return render_ws(request, "console/contacts/list.html", context)


@workspace_view("contacts.view")
def contact_count(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """The matching total, loaded after the page so the list itself never waits on COUNT."""
    flt = filter_from(request.GET)
    total = flt.apply(workspace, visible_contacts(workspace, actor)).count()
    return render_ws(request, "console/contacts/_count.html", {"total": total})


@workspace_view("contacts.bulk")
@require_POST
def contact_bulk_tag(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    """Tag the ticked rows now, or every matching contact in a background job."""
    flt = filter_from(request.POST)
    list_url = reverse("console:contacts", args=[workspace.slug]) + "?" + filter_query(flt)
    tag_id = to_int(request.POST.get("bulk_tag"))
    op = request.POST.get("op", "add")
    add, remove = ([tag_id], []) if op == "add" else ([], [tag_id])
    notice, job = "", None
    try:
        if not tag_id:
            raise invalid(_("Choose a tag first."))
        if request.POST.get("scope") == "all":
            params = {"filter": flt.sealed(), "add": add, "remove": remove}
            job = job_create(
                workspace=workspace, actor=actor, kind="contacts.bulk_tag", params=params
            )
        else:
            ids = [i for i in map(to_int, request.POST.getlist("ids")) if i]
            # Only ids the actor may see; anything else in the form is ignored.
            visible = list(
                visible_contacts(workspace, actor).filter(pk__in=ids).values_list("pk", flat=True)
            )
            if not visible:
                raise invalid(_("Select at least one contact."))
            counts = contacts_tag(
                workspace=workspace, actor=actor, contact_ids=visible, add=add, remove=remove
            )
            n = counts["added"] if op == "add" else counts["removed"]
            notice = _("Tag updated on %(n)s of %(selected)s selected contacts.") % {
                "n": n,
                "selected": len(visible),
            }
    except SiyuError as exc:
        if request.htmx:
            return form_error(request, exc, "bulk-error")
        messages.error(request, error_text(exc))
        return redirect(list_url)
    if not request.htmx:
        if job is not None:
            return redirect("console:job", workspace.slug, job.pk)
        messages.success(request, notice)
        return redirect(list_url)
    context = list_context(workspace, actor, flt, request.POST.get("cursor", ""))
    context.update(notice=notice, job=job)
    return render_ws(request, "console/contacts/_results.html", context)


# --- new contact --------------------------------------------------------------------------


def _taken_contact(workspace: Workspace, actor: Actor, exc: SiyuError) -> Contact | None:
    """The contact a duplicate phone/email belongs to, if the actor may open it."""
    if exc.code != "identity_taken":
        return None
    contact_id = to_int(exc.details.get("contact_id"))
    return visible_contacts(workspace, actor).filter(pk=contact_id).first() if contact_id else None


@workspace_view("contacts.create")
def contact_new(request: HttpRequest, workspace: Workspace, actor: Actor) -> HttpResponse:
    form = request.POST if request.method == "POST" else QueryDict()
    error, taken = None, None
    if request.method == "POST":
        identities = [
            IdentityInput(kind, form[kind].strip())
            for kind in ("phone", "email")
            if form.get(kind, "").strip()
        ]
        try:
            contact = contact_create(
                workspace=workspace,
                actor=actor,
                profile={
                    k: form.get(k, "")
                    for k in ("name", "gender", "birthday", "province", "city", "source")
                },
                identities=identities,
                tag_ids=[i for i in map(to_int, form.getlist("tags")) if i],
            )
        except SiyuError as exc:
            error, taken = exc, _taken_contact(workspace, actor, exc)
        else:
            messages.success(request, _("Contact created."))
            return redirect("console:contact", workspace.slug, contact.pk)
    context = {
        "form": form,
        "error": error,
        "taken": taken,
        "taken_kind": (error.details.get("field") if taken else ""),
        "genders": Gender.choices,
        "sources": source_choices(form.get("source", "")),
        "groups": tag_groups(workspace),
        "chosen_tags": {i for i in map(to_int, form.getlist("tags")) if i},
    }
    return render_ws(
        request, "console/contacts/new.html", context, status=error.status if error else 200
    )
