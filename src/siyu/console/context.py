def console(request):
    """Expose the current workspace and actor (set by the console views) to every template."""
    return {
        "workspace": getattr(request, "workspace", None),
        "actor": getattr(request, "actor", None),
    }
