"""Queue rows carry what the resolver routes their event by (tracking/routing.py). The
rows queued before this migration get it from their events."""

from django.db import migrations, models

CHUNK = 1000


def backfill(apps, schema_editor):
    """The events still queued: their routing fields, by the same rules as new rows."""
    from siyu.tracking.routing import for_event

    Queued = apps.get_model("tracking", "QueuedEvent")
    Event = apps.get_model("tracking", "Event")
    ids = list(Queued.objects.order_by("event_id").values_list("event_id", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for event in Event.objects.filter(pk__in=chunk):
            Queued.objects.filter(workspace_id=event.workspace_id, event_id=event.pk).update(
                **for_event(event)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0013_daily_event_count_composite_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="queuedevent",
            name="anonymous_id",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="channel",
            field=models.CharField(blank=True, default="", max_length=120),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="event_name",
            field=models.CharField(blank=True, db_column="event", default="", max_length=255),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="plain",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="timestamp",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="type",
            field=models.CharField(blank=True, default="", max_length=10),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="user_id",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
