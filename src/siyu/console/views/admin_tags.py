"""Tags page: tag groups, their tags and how many contacts carry each tag; create, rename and
delete groups and tags. In-card edits use htmx (the card is swapped in place) and also work
as plain form posts."""

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.accounts.access import can
from siyu.accounts.permissions import is_own_only
from siyu.console.access import error_text, workspace_view
from siyu.contacts import actions
from siyu.contacts.models import ContactTag, Tag, TagGroup
from siyu.contacts.queries import visible_contacts
from siyu.core.errors import Conflict, NotFound, SiyuError

TEMPLATE = "console/admin/tags.html"
CARD = "console/admin/_tag_group.html"


def _error_text(exc: SiyuError, what: str) -> str:
    """A translated message for an action's error (`what` names the object for conflicts)."""
    if isinstance(exc, Conflict):
        return _("Name: a %(what)s with this name already exists.") % {"what": what}
    return error_text(exc)


def _group_for(workspace, group_id: int) -> TagGroup:
    group = TagGroup.objects.filter(workspace=workspace, pk=group_id).first()
    if group is None:
        raise NotFound("tag group not found")
    return group


def _tag_for(workspace, tag_id: int) -> Tag:
    tag = Tag.objects.filter(workspace=workspace, pk=tag_id).select_related("group").first()
    if tag is None:
        raise NotFound("tag not found")
    return tag


def tag_groups(workspace, actor, only: int | None = None) -> list[TagGroup]:
    """Groups with `.tag_list`, each tag with `.n` contacts: two queries whatever the size
    (the counts are one aggregate). Agents count only the contacts they own."""
    groups = TagGroup.objects.filter(workspace=workspace)
    tags = Tag.objects.filter(workspace=workspace)
    if only is not None:
        groups, tags = groups.filter(pk=only), tags.filter(group_id=only)
    if is_own_only(actor.role):
        seen = Q(contact_tags__contact__in=visible_contacts(workspace, actor))
        tags = tags.annotate(n=Count("contact_tags", filter=seen))
    else:
        tags = tags.annotate(n=Count("contact_tags"))
    by_group: dict[int, list[Tag]] = {}
    for tag in tags.order_by("sort", "id"):
        tag.form_key = f"tag-{tag.pk}"
        by_group.setdefault(tag.group_id, []).append(tag)
    groups = list(groups.order_by("sort", "id"))
    for group in groups:
        group.tag_list = by_group.get(group.pk, [])
        group.error = group.error_form = group.error_value = ""
    return groups


def _page(request, workspace, actor, *, status=200, group_error=None, create_error=None):
    """The full page; `group_error` = (group_id, form, message, value) puts an error on one
    card's form, `create_error` = (message, value) on the new-group form."""
    groups = tag_groups(workspace, actor)
    if group_error:
        gid, form, message, value = group_error
        for group in groups:
            if group.pk == gid:
                group.error, group.error_form, group.error_value = message, form, value
    context = {
        "groups": groups,
        "can_manage": can(actor, "tags.manage"),
        "create_error": create_error[0] if create_error else "",
        "create_value": create_error[1] if create_error else "",
        "tag_total": sum(len(g.tag_list) for g in groups),
    }
    return render(request, TEMPLATE, context, status=status)


def _card(request, workspace, actor, group_id, form="", message="", value=""):
    group = tag_groups(workspace, actor, only=group_id)[0]
    group.error, group.error_form, group.error_value = message, form, value
    return render(request, CARD, {"group": group, "can_manage": True})


def _done(request, workspace, actor, group_id: int, note: str):
    if request.htmx:
        return _card(request, workspace, actor, group_id)
    messages.success(request, note)
    return redirect(reverse("console:tags", args=[workspace.slug]) + f"#group-{group_id}")


def _failed(request, workspace, actor, group_id: int, form: str, exc: SiyuError, value, what):
    message = _error_text(exc, what)
    if request.htmx:  # htmx swaps only 2xx responses; the card carries the error
        return _card(request, workspace, actor, group_id, form, message, value)
    return _page(
        request,
        workspace,
        actor,
        status=exc.status,
        group_error=(group_id, form, message, value),
    )


@workspace_view("contacts.view")
def tags(request, workspace, actor):
    return _page(request, workspace, actor)


@workspace_view("tags.manage")
@require_POST
def group_create(request, workspace, actor):
    name = request.POST.get("name", "")
    try:
        group = actions.tag_group_create(workspace=workspace, actor=actor, name=name)
    except SiyuError as exc:
        message = _error_text(exc, _("tag group"))
        return _page(request, workspace, actor, status=exc.status, create_error=(message, name))
    messages.success(request, _("Tag group “%(name)s” created.") % {"name": group.name})
    return redirect(reverse("console:tags", args=[workspace.slug]) + f"#group-{group.pk}")


@workspace_view("tags.manage")
@require_POST
def group_rename(request, workspace, actor, group_id: int):
    group = _group_for(workspace, group_id)
    name = request.POST.get("name", "")
    try:
        actions.tag_group_update(workspace=workspace, actor=actor, group=group, name=name)
    except SiyuError as exc:
        return _failed(request, workspace, actor, group.pk, "rename", exc, name, _("tag group"))
    return _done(request, workspace, actor, group.pk, _("Tag group renamed."))


@workspace_view("tags.manage")
def group_delete(request, workspace, actor, group_id: int):
    group = _group_for(workspace, group_id)
    if request.method == "POST":
        actions.tag_group_delete(workspace=workspace, actor=actor, group=group)
        messages.success(request, _("Tag group “%(name)s” deleted.") % {"name": group.name})
        return redirect("console:tags", workspace.slug)
    tag_names = list(group.tags.order_by("sort", "id").values_list("name", flat=True))
    affected = (
        ContactTag.objects.filter(workspace=workspace, tag__group=group)
        .values("contact_id")
        .distinct()
        .count()
    )
    return render(
        request,
        "console/admin/confirm.html",
        {
            "title": _("Delete tag group “%(name)s”?") % {"name": group.name},
            "lines": [
                _("Its %(n)s tags are deleted with it: %(names)s.")
                % {"n": len(tag_names), "names": "、".join(tag_names) or "—"},
                _("%(n)s contacts will lose one or more of these tags.") % {"n": affected},
                _("This cannot be undone."),
            ],
            "button": _("Delete tag group"),
            "cancel": reverse("console:tags", args=[workspace.slug]),
        },
    )


@workspace_view("tags.manage")
@require_POST
def tag_create(request, workspace, actor, group_id: int):
    group = _group_for(workspace, group_id)
    name = request.POST.get("name", "")
    try:
        tag = actions.tag_create(workspace=workspace, actor=actor, group=group, name=name)
    except SiyuError as exc:
        return _failed(request, workspace, actor, group.pk, "add", exc, name, _("tag"))
    return _done(request, workspace, actor, group.pk, _("Tag “%(name)s” added.") % {"name": tag})


@workspace_view("tags.manage")
@require_POST
def tag_rename(request, workspace, actor, tag_id: int):
    tag = _tag_for(workspace, tag_id)
    name = request.POST.get("name", "")
    try:
        actions.tag_update(workspace=workspace, actor=actor, tag=tag, name=name)
    except SiyuError as exc:
        form = f"tag-{tag.pk}"
        return _failed(request, workspace, actor, tag.group_id, form, exc, name, _("tag"))
    return _done(request, workspace, actor, tag.group_id, _("Tag renamed."))


@workspace_view("tags.manage")
def tag_delete(request, workspace, actor, tag_id: int):
    tag = _tag_for(workspace, tag_id)
    if request.method == "POST":
        actions.tag_delete(workspace=workspace, actor=actor, tag=tag)
        messages.success(request, _("Tag “%(name)s” deleted.") % {"name": tag.name})
        return redirect(reverse("console:tags", args=[workspace.slug]) + f"#group-{tag.group_id}")
    affected = ContactTag.objects.filter(workspace=workspace, tag=tag).count()
    return render(
        request,
        "console/admin/confirm.html",
        {
            "title": _("Delete tag “%(name)s”?") % {"name": tag.name},
            "lines": [
                _("%(n)s contacts will lose this tag.") % {"n": affected},
                _("This cannot be undone."),
            ],
            "button": _("Delete tag"),
            "cancel": reverse("console:tags", args=[workspace.slug]) + f"#group-{tag.group_id}",
        },
    )
