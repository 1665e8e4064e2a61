"""`siyu refresh-segments [--workspace SLUG]`: compute every contact's stage, tier and RFM,
then refresh every dynamic and built-in segment now (what the worker does every
SIYU_SEGMENT_REFRESH_MINUTES; docs/segments.md)."""

from django.core.management.base import BaseCommand, CommandError

from siyu.core.models import Workspace
from siyu.segments.refresh import refresh_workspace


class Command(BaseCommand):
    help = "Recompute scores (stage, tier, RFM) and refresh all dynamic and built-in segments."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="only this workspace (its slug); default: all")

    def handle(self, *args, workspace=None, **options):
        workspaces = Workspace.objects.order_by("pk")
        if workspace:
            workspaces = workspaces.filter(slug=workspace)
            if not workspaces.exists():
                raise CommandError(f"no workspace {workspace!r}")
        for ws in workspaces:
            result = refresh_workspace(ws)
            self.stdout.write(
                f"{ws.slug}: scored {result['scores'].get('contacts', 0)} contacts, "
                f"refreshed {result['segments']} segments in {result['seconds']:.1f} s"
                + (f"; failed: {result['failed']}" if result["failed"] else "")
            )
