from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render

from siyu.accounts.permissions import is_own_only
from siyu.console.access import workspace_view
from siyu.console.labels import source_label
from siyu.contacts.queries import pool_stats


@workspace_view("dashboard.view")
def dashboard(request, workspace, actor):
    # The numbers scan the whole pool (~0.8 s at a million contacts on PostgreSQL), so each
    # scope (the workspace, or one agent's contacts) is computed at most once a minute.
    scope = actor.user.pk if is_own_only(actor.role) else "all"
    ttl = settings.SIYU_DASHBOARD_CACHE_SECONDS
    if ttl > 0:
        key = f"pool_stats:{workspace.pk}:{scope}"
        stats = cache.get_or_set(key, lambda: pool_stats(workspace, actor), ttl)
    else:
        stats = pool_stats(workspace, actor)
    source_chart = [
        {"name": str(source_label(r["source"])), "value": r["n"]} for r in stats["by_source"]
    ]
    return render(request, "console/dashboard.html", {"stats": stats, "source_chart": source_chart})
