from django.shortcuts import render

from siyu.console.access import workspace_view
from siyu.console.labels import source_label
from siyu.contacts.queries import pool_stats


@workspace_view("dashboard.view")
def dashboard(request, workspace, actor):
    stats = pool_stats(workspace, actor)
    source_chart = [
        {"name": str(source_label(r["source"])), "value": r["n"]} for r in stats["by_source"]
    ]
    return render(request, "console/dashboard.html", {"stats": stats, "source_chart": source_chart})
