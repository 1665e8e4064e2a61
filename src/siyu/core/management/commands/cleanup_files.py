"""`siyu cleanup-files [--hours N]` (also `siyu cleanup-exports`, its older name): delete the
files that hold customer data once their time is up, as the worker does every hour:

- export files older than `SIYU_EXPORT_RETENTION_HOURS` (default 72) and stale `.part` files;
  their jobs are marked expired (contacts/export.py);
- import error reports older than `SIYU_IMPORT_REPORT_RETENTION_HOURS` (default 72), their
  jobs marked as such, and uploads never started after a day, left behind after a week
  (contacts/imports/cleanup.py).

`--hours N` uses N hours for both retentions, this once. See docs/operations.md."""

from django.core.management.base import BaseCommand, CommandError

from siyu.contacts.export import exports_cleanup
from siyu.contacts.imports.cleanup import imports_cleanup


class Command(BaseCommand):
    help = (
        "Delete finished contact exports older than SIYU_EXPORT_RETENTION_HOURS, import error "
        "reports older than SIYU_IMPORT_REPORT_RETENTION_HOURS and old import uploads; their "
        "jobs show 'expired' in the console."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours",
            type=int,
            help="retention in hours of exports and import reports (default: the settings)",
        )

    def handle(self, *args, hours=None, **options):
        if hours is not None and hours < 1:
            raise CommandError("the retention must be at least 1 hour")
        for cleanup in (exports_cleanup, imports_cleanup):
            try:
                result = cleanup(retention_hours=hours)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(str(result))
