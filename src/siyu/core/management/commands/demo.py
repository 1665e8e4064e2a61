from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from siyu.contacts.models import Contact
from siyu.core.server import serve
from siyu.demo import data
from siyu.demo.brand import DEFAULT_CONTACTS, DEFAULT_SEED, demo_workspace, load_demo
from siyu.demo.logins import ensure_logins, login_file


class Command(BaseCommand):
    help = (
        "Migrate, load the demo brand (山隅咖啡) once, print the console URL and owner login, "
        "then serve the console with a task worker (Ctrl-C stops both)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument(
            "--contacts", type=int, default=DEFAULT_CONTACTS, help="customers in a new demo"
        )
        parser.add_argument("--no-serve", action="store_true", help="load and print, then exit")
        parser.add_argument("--port", type=int, default=settings.SIYU_PORT)

    def handle(self, *args, seed, contacts, no_serve, port, **options):
        out = self.stdout.write
        call_command("migrate", verbosity=0, interactive=False)
        workspace = demo_workspace()
        out(f"siyu demo: {data.BRAND_NAME}")
        if workspace is None:
            result = load_demo(seed=seed, contacts=contacts)
            workspace = result.workspace
            c = result.counts
            out(
                f"  loaded the demo brand in {result.seconds:.1f}s (seed {seed}): "
                f"{c.contacts:,} contacts, {c.identities:,} identities, {c.tags:,} tag links, "
                f"{c.consents:,} consents, {c.timeline:,} timeline rows, "
                f"{len(result.logins)} staff"
            )
            if result.activity is not None:
                a = result.activity
                out(
                    f"  a year of activity: {a.orders:,} orders ({a.buyers:,} buyers, "
                    f"{a.refunds:,} refunds), {a.events:,} events, {a.products} products"
                )
            if result.segments is not None:
                s = result.segments
                sizes = "、".join(f"{name} {size:,}" for name, size in s.sizes.items())
                out(f"  segments: {s.builtins} built-in; {sizes}; {s.clv_text}")
            if result.reach is not None:
                r = result.reach
                funnel = r.broadcast_counts
                out(
                    f"  reach: {r.channels} channels (disabled until real credentials are set), "
                    f"{r.templates} templates, a past broadcast to {funnel.get('audience', 0):,} "
                    f"({funnel.get('holdout', 0):,} held out, {funnel.get('to_send', 0):,} sent), "
                    f"{r.journeys} journeys (drafts until a channel is enabled)"
                )
        else:
            total = Contact.objects.filter(workspace=workspace).count()
            out(f"  the demo workspace exists ({total:,} contacts): nothing loaded")
        logins = ensure_logins(workspace)
        owner = next((x for x in logins if x.email == data.OWNER_EMAIL), None)
        out(f"  console   http://127.0.0.1:{port}/")
        if owner is not None:
            out(f"  login     {owner.email}")
            out(f"  password  {owner.password}")
        out(f"  all staff logins (admin, operators, analyst, store advisors): {login_file()}")
        out("  a bigger pool: siyu seed-demo --contacts 100000")
        if no_serve:
            return
        out("  serving with a task worker; Ctrl-C stops both")
        serve(host=settings.SIYU_BIND_HOST, port=port, workers=2, with_worker=True)
