from django.urls import path

from siyu.messaging import views

app_name = "messaging"

urlpatterns = [
    path(
        "hooks/channels/<int:channel_id>/<str:token>/<str:what>",
        views.channel_hook,
        name="channel_hook",
    ),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("l/<str:code>", views.tracked_link, name="tracked_link"),
]
