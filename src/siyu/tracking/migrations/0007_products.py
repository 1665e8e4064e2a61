"""The product catalog built from Segment e-commerce events (tracking/products.py).

Name-prefix search (`name LIKE 'q%'`) on PostgreSQL needs a `varchar_pattern_ops` index
under a linguistic collation (see contacts 0002_contact_name_pattern_index); Django's Index
cannot express it portably, so it is created here for PostgreSQL only."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

PATTERN_INDEX = "product_ws_name_pattern"


def create_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {PATTERN_INDEX} "
            "ON tracking_product (workspace_id, name varchar_pattern_ops)"
        )


def drop_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {PATTERN_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_job"),
        ("tracking", "0006_drop_lone_workspace_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="core.workspace",
                    ),
                ),
                ("product_id", models.CharField(max_length=255)),
                ("sku", models.CharField(blank=True, default="", max_length=255)),
                ("name", models.CharField(blank=True, default="", max_length=255)),
                ("category", models.CharField(blank=True, default="", max_length=255)),
                ("brand", models.CharField(blank=True, default="", max_length=255)),
                ("variant", models.CharField(blank=True, default="", max_length=255)),
                ("price_fen", models.BigIntegerField(blank=True, null=True)),
                ("currency", models.CharField(blank=True, default="", max_length=3)),
                ("url", models.CharField(blank=True, default="", max_length=2048)),
                ("image_url", models.CharField(blank=True, default="", max_length=2048)),
                ("first_seen_at", models.DateTimeField()),
                ("last_seen_at", models.DateTimeField()),
                ("views", models.BigIntegerField(default=0)),
                ("adds", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["workspace", "-last_seen_at", "-id"], name="product_ws_seen"
                    ),
                    models.Index(
                        fields=["workspace", "category", "-last_seen_at", "-id"],
                        name="product_ws_category",
                    ),
                    models.Index(fields=["workspace", "name", "id"], name="product_ws_name"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("workspace", "product_id"), name="product_id_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(create_pattern_index, drop_pattern_index, elidable=False),
    ]
