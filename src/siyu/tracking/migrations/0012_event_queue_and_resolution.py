"""Events are no longer rewritten when they are processed: the queue of events waiting for
identity resolution moves to `QueuedEvent` and what resolution decided (contact, notes,
time processed) to `ResolvedEvent`. Existing events are copied into whichever applies,
then the event's own status, contact, error and processed_at columns and their indexes go."""

import django.db.models.deletion
from django.db import migrations, models


def split_events(apps, schema_editor):
    """Pending events into the queue (with their error), processed ones into resolutions."""
    quote = schema_editor.connection.ops.quote_name
    event = quote(apps.get_model("tracking", "Event")._meta.db_table)
    queued = quote(apps.get_model("tracking", "QueuedEvent")._meta.db_table)
    resolved = quote(apps.get_model("tracking", "ResolvedEvent")._meta.db_table)
    schema_editor.execute(
        f"INSERT INTO {queued} (workspace_id, event_id, error) "
        f"SELECT workspace_id, id, error FROM {event} WHERE status = 'pending'"
    )
    schema_editor.execute(
        f"INSERT INTO {resolved} (event_id, workspace_id, contact_id, timestamp, note, "
        f"processed_at) SELECT id, workspace_id, contact_id, timestamp, error, "
        f"COALESCE(processed_at, created_at) FROM {event} WHERE status <> 'pending'"
    )


def join_events(apps, schema_editor):
    """Back: each event's status, contact and note from its queue or resolution row."""
    quote = schema_editor.connection.ops.quote_name
    event = quote(apps.get_model("tracking", "Event")._meta.db_table)
    queued = quote(apps.get_model("tracking", "QueuedEvent")._meta.db_table)
    resolved = quote(apps.get_model("tracking", "ResolvedEvent")._meta.db_table)
    schema_editor.execute(
        f"UPDATE {event} SET status = 'processed', "
        f"contact_id = (SELECT r.contact_id FROM {resolved} r WHERE r.event_id = {event}.id), "
        f"error = (SELECT r.note FROM {resolved} r WHERE r.event_id = {event}.id), "
        f"processed_at = (SELECT r.processed_at FROM {resolved} r WHERE r.event_id = {event}.id) "
        f"WHERE id IN (SELECT event_id FROM {resolved})"
    )
    schema_editor.execute(
        f"UPDATE {event} SET error = (SELECT q.error FROM {queued} q "
        f"WHERE q.event_id = {event}.id AND q.workspace_id = {event}.workspace_id) "
        f"WHERE id IN (SELECT event_id FROM {queued})"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0005_drop_redundant_contact_index"),
        ("core", "0003_job_heartbeat_at"),
        ("tracking", "0011_pending_index_fewer_constraints"),
    ]

    operations = [
        migrations.CreateModel(
            name="QueuedEvent",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "workspace_id",
                        "event_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="core.workspace",
                    ),
                ),
                (
                    "event",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tracking.event",
                    ),
                ),
                ("error", models.TextField(blank=True, default="")),
            ],
        ),
        migrations.CreateModel(
            name="ResolvedEvent",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="resolution",
                        serialize=False,
                        to="tracking.event",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="core.workspace",
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="resolved_events",
                        to="contacts.contact",
                    ),
                ),
                ("timestamp", models.DateTimeField()),
                ("note", models.TextField(blank=True, default="")),
                ("processed_at", models.DateTimeField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["contact", "-timestamp"], name="resolved_contact_time")
                ],
            },
        ),
        migrations.RunPython(split_events, join_events),
        migrations.RemoveIndex(model_name="event", name="event_contact_time"),
        migrations.RemoveIndex(model_name="event", name="event_ws_pending"),
        migrations.RemoveField(model_name="event", name="contact"),
        migrations.RemoveField(model_name="event", name="error"),
        migrations.RemoveField(model_name="event", name="processed_at"),
        migrations.RemoveField(model_name="event", name="status"),
    ]
