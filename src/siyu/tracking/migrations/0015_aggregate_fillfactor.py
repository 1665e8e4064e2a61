"""The aggregate tables leave room in each page for the next versions of their rows
(PostgreSQL's fillfactor): every batch rewrites the stats row of each contact it folds
(last event and channel) and today's daily counts of each active contact, and a new version
that fits in the same page, with no indexed column changed, adds no index entries (a
heap-only update). Pages written before keep their rows until they are rewritten."""

from django.db import migrations

FILLFACTOR = {"tracking_contactstats": 70, "tracking_dailyeventcount": 80}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, percent in FILLFACTOR.items():
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in FILLFACTOR:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0014_queue_routing")]

    operations = [migrations.RunPython(forward, backward)]
