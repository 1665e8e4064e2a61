from django.core.management.base import BaseCommand, CommandError

from siyu.accounts import actions
from siyu.accounts.models import Staff
from siyu.accounts.permissions import Role
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace


class Command(BaseCommand):
    help = "Manage API keys. `apikey create` prints the new key on its last line."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--workspace", required=True)
        create.add_argument("--name", required=True)
        create.add_argument(
            "--role", default=Role.ADMIN, choices=[r for r in Role.values if r != Role.OWNER]
        )
        create.add_argument("--acts-for", default="", help="the agent's email (agent keys)")

    def handle(self, *args, action, workspace, name, role, acts_for, **options):
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"no workspace {workspace!r}")
        agent = Staff.objects.filter(email__iexact=acts_for).first() if acts_for else None
        try:
            key, raw = actions.apikey_create(
                workspace=ws,
                actor=Actor.system("cli:apikey"),
                name=name,
                role=role,
                acts_for_id=agent.pk if agent else None,
            )
        except SiyuError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"API key {key.name!r} ({key.role}) for {ws.slug}; shown only once:")
        self.stdout.write(raw)
