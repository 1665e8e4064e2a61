from django.urls import include, path

from siyu.api import api

urlpatterns = [
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # the Segment-compatible collection API lives at the root: /v1/batch, /v1/track, ...
    path("", include("siyu.tracking.urls")),
    # vendor callbacks and the unsubscribe page: /hooks/channels/…, /u/<token>
    path("", include("siyu.messaging.urls")),
    path("", include("siyu.console.urls")),
]
