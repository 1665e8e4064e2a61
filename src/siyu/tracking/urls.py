"""Included at the site root, so that an unmodified Segment client pointed at siyu's host
finds /v1/batch (the server libraries) and /v1/t, /v1/b, ... (analytics.js, which is
configured with `apiHost: "<host>/v1"`). A trailing slash is accepted too."""

from django.urls import re_path

from siyu.tracking import views
from siyu.tracking.models import MessageType

app_name = "tracking"

# analytics.js posts single messages to the first letter of their type, batches to /b.
SHORT = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias"}

urlpatterns = [
    re_path(r"^v1/batch/?$", views.endpoint, name="batch"),
    re_path(r"^v1/b/?$", views.endpoint),
    *[
        re_path(rf"^v1/{kind}/?$", views.endpoint, {"message_type": kind}, name=kind)
        for kind in MessageType.values
    ],
    *[
        re_path(rf"^v1/{letter}/?$", views.endpoint, {"message_type": kind})
        for letter, kind in SHORT.items()
    ],
]
