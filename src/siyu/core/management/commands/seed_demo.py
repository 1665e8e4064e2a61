from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from siyu.contacts.models import Contact
from siyu.core.models import Workspace
from siyu.demo import data
from siyu.demo.brand import DEFAULT_CONTACTS, DEFAULT_SEED, load_demo
from siyu.demo.seed import DEFAULT_BATCH, Progress, seed_contacts


class Command(BaseCommand):
    help = (
        "Append N synthetic contacts to a workspace (the demo brand, created first if absent), "
        "in batched bulk inserts with encrypted identities. For benchmarks and demos."
    )

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, required=True)
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--workspace", default=data.DEMO_SLUG)
        parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)

    def handle(self, *args, contacts, seed, workspace, batch, **options):
        if contacts < 0 or batch < 1:
            raise CommandError("--contacts must be >= 0 and --batch >= 1")
        call_command("migrate", verbosity=0, interactive=False)
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            if workspace != data.DEMO_SLUG:
                raise CommandError(f"no workspace {workspace!r}")
            result = load_demo(seed=seed, contacts=DEFAULT_CONTACTS)
            ws = result.workspace
            self.stdout.write(
                f"created the demo brand ({result.counts.contacts:,} contacts); "
                "`siyu demo` prints its login"
            )
        before = Contact.objects.filter(workspace=ws).count()
        self.stdout.write(f"adding {contacts:,} contacts to {ws.slug} (has {before:,})")

        def report(p: Progress) -> None:
            self.stdout.write(
                f"  {p.done:>11,} / {p.total:,}  {p.contacts_per_second:8,.0f} contacts/s  "
                f"{p.rows_per_second:9,.0f} rows/s  {p.seconds:7.1f}s"
            )

        counts = seed_contacts(ws, contacts, seed=seed, batch=batch, progress=report)
        after = before + counts.contacts
        self.stdout.write(
            f"done: +{counts.contacts:,} contacts ({counts.identities:,} identities, "
            f"{counts.tags:,} tag links, {counts.consents:,} consents); {ws.slug} has {after:,}"
        )
