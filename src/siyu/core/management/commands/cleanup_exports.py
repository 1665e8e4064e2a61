"""`siyu cleanup-exports [--hours N]`: delete export files older than the retention
(`SIYU_EXPORT_RETENTION_HOURS`, default 72) and stale `.part` files, and mark their jobs
expired. The worker runs the same cleanup every hour; see docs/operations.md, "Exports"."""

from django.core.management.base import BaseCommand, CommandError

from siyu.contacts.export import exports_cleanup


class Command(BaseCommand):
    help = (
        "Delete finished contact exports older than SIYU_EXPORT_RETENTION_HOURS (and partial "
        "files older than a day); their jobs show 'expired' in the console."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours", type=int, help="retention in hours (default: SIYU_EXPORT_RETENTION_HOURS)"
        )

    def handle(self, *args, hours=None, **options):
        try:
            result = exports_cleanup(retention_hours=hours)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(result))
