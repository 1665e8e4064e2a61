"""`siyu writekey create|list|revoke`: write keys for the Segment-compatible collection API."""

from django.core.management.base import BaseCommand, CommandError

from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace
from siyu.tracking import actions, queries


class Command(BaseCommand):
    help = (
        "Manage write keys (the keys Segment clients send events with). "
        "`writekey create` prints the new key on its last line."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a write key and print it")
        create.add_argument("--workspace", required=True)
        create.add_argument("--name", required=True)
        listing = sub.add_parser("list", help="list a workspace's write keys")
        listing.add_argument("--workspace", required=True)
        revoke = sub.add_parser("revoke", help="revoke a write key by its prefix")
        revoke.add_argument("--workspace", required=True)
        revoke.add_argument("--prefix", required=True, help="the first 10 characters of the key")

    def handle(self, *args, action, workspace, **options):
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"no workspace {workspace!r}")
        actor = Actor.system("cli:writekey")
        if action == "create":
            try:
                key, raw = actions.writekey_create(workspace=ws, actor=actor, name=options["name"])
            except SiyuError as exc:
                raise CommandError(exc.message) from exc
            self.stderr.write(f"write key {key.name!r} for {ws.slug}; shown only once:")
            self.stdout.write(raw)
        elif action == "list":
            for key in queries.write_keys(ws):
                state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                self.stdout.write(f"{key.prefix}  {state:<18} last used {used:<16}  {key.name}")
        else:
            key = queries.get_write_key_by_prefix(ws, options["prefix"])
            if key is None:
                raise CommandError(f"no write key {options['prefix']!r} in {ws.slug}")
            actions.writekey_revoke(workspace=ws, actor=actor, key=key)
            self.stdout.write(f"revoked {key.prefix} ({key.name})")
