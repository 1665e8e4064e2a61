"""Queue rows carry what the resolver routes their event by (tracking/routing.py). The
rows queued before this migration get it from their events."""

from django.db import migrations, models


def backfill(apps, schema_editor):
    """The events still queued: their routing fields, by the same rules as new rows (the
    collection API's SQL), with one statement however long the queue."""
    from siyu.tracking import routing

    queued = apps.get_model("tracking", "QueuedEvent")._meta.db_table
    events = apps.get_model("tracking", "Event")._meta.db_table
    columns = ", ".join(routing.COLUMNS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {queued} SET ({columns}) = (SELECT {routing.select_sql('e')} "
            f"FROM {events} e WHERE e.id = {queued}.event_id) "
            # a row whose event is gone keeps the defaults
            f"WHERE EXISTS (SELECT 1 FROM {events} e WHERE e.id = {queued}.event_id)"
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
