"""Name-prefix search (`name LIKE 'q%'`, which every list search runs, phone searches too)
needs an index PostgreSQL can use for LIKE. A plain btree serves LIKE only under the "C"
collation; with a linguistic collation (zh_CN.UTF-8, en_US.UTF-8) and on PostgreSQL 15 even
with C.UTF-8 it does not, and the search becomes a sequential scan (~100+ ms at 1M contacts,
see docs/benchmarks.md). `varchar_pattern_ops` compares bytewise, so it serves LIKE 'q%'
under any collation. SQLite has no operator classes: nothing to do there.

No model change: Django's Index cannot express a per-column operator class portably, so
this lives outside the model state (like the `_like` indexes Django adds for db_index)."""

from django.db import migrations

INDEX = "contact_ws_name_pattern"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} "
            "ON contacts_contact (workspace_id, name varchar_pattern_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
