from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from siyu.accounts.access import can
from siyu.accounts.permissions import Role

# (url name, label, permission needed to see the link)
NAV = [
    ("console:contacts", _("Contacts"), "contacts.view"),
    ("console:segments", _("Segments"), "segments.view"),
    ("console:pool_overview", _("Customer tiers"), "segments.view"),
    # messaging (触达): where messages go out, what they say, the rules, and what was sent
    ("console:channels", _("Channels"), "messaging.view"),
    ("console:message_templates", _("Message templates"), "messaging.view"),
    ("console:reach_policy", _("Reach rules"), "messaging.view"),
    ("console:outbox", _("Message log"), "messaging.view"),
    # campaigns (营销): one message to an audience, and automated journeys
    ("console:broadcasts", _("Broadcasts"), "campaigns.view"),
    ("console:journeys", _("Journeys"), "campaigns.view"),
    ("console:tags", _("Tags"), "contacts.view"),
    ("console:products", _("Products"), "contacts.view"),
    ("console:imports", _("Imports"), "contacts.import"),
    ("console:staff", _("Staff"), "staff.view"),
    ("console:apikeys", _("API keys"), "apikeys.manage"),
    ("console:data_sources", _("Data sources"), "apikeys.manage"),
    ("console:audit", _("Audit log"), "audit.view"),
    ("console:settings", _("Settings"), "settings.manage"),
]


def console(request):
    """Expose the current workspace, actor and the navigation they may see to templates."""
    workspace = getattr(request, "workspace", None)
    actor = getattr(request, "actor", None)
    nav = []
    if workspace is not None and actor is not None:
        for name, label, perm in NAV:
            if not can(actor, perm):
                continue
            try:
                url = reverse(name, args=[workspace.slug])
            except NoReverseMatch:  # an area not built yet
                continue
            nav.append({"url": url, "label": label, "active": request.path.startswith(url)})
    role_label = Role(actor.role).label if actor is not None else ""
    return {
        "workspace": workspace,
        "actor": actor,
        "actor_role_label": role_label,
        "console_nav": nav,
    }
