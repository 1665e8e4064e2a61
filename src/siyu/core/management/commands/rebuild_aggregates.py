"""`siyu rebuild-aggregates [--workspace SLUG]`: recompute the per-contact aggregates and the
daily event rollup from the raw events and orders (see docs/tracking.md, "Aggregates")."""

from django.core.management.base import BaseCommand, CommandError

from siyu.core.models import Workspace
from siyu.tracking import aggregates


class Command(BaseCommand):
    help = (
        "Recompute per-contact aggregates (order count, net spend, last order, last channel, "
        "last event) and daily event counts from raw events and orders."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="only this workspace (its slug); default: all")
        parser.add_argument(
            "--batch", type=int, default=aggregates.CHUNK, help="contacts per transaction"
        )

    def handle(self, *args, workspace=None, batch=aggregates.CHUNK, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        workspaces = Workspace.objects.order_by("pk")
        if workspace:
            workspaces = workspaces.filter(slug=workspace)
            if not workspaces.exists():
                raise CommandError(f"no workspace {workspace!r}")
        for ws in workspaces:
            count = aggregates.rebuild(ws, chunk=batch)
            self.stdout.write(f"{ws.slug}: recomputed aggregates of {count} contacts")
