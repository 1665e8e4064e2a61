from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from siyu.accounts import actions
from siyu.accounts.models import Membership, Staff
from siyu.accounts.permissions import Role
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace


class Command(BaseCommand):
    help = "Create (or update) a staff login with a role in a workspace, non-interactively."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--workspace", required=True, help="workspace slug (created if new)")
        parser.add_argument("--role", default=Role.OWNER, choices=Role.values)
        parser.add_argument("--name", default="")
        parser.add_argument("--workspace-name", default="")

    @transaction.atomic
    def handle(self, *args, email, password, workspace, role, name, workspace_name, **options):
        actor = Actor.system("cli:createadmin")
        try:
            validate_password(password)
        except DjangoValidationError as exc:
            raise CommandError("--password: " + " ".join(exc.messages)) from exc
        try:
            ws = Workspace.objects.filter(slug=workspace).first() or actions.workspace_create(
                name=workspace_name or workspace, slug=workspace, actor=actor
            )
            staff = Staff.objects.filter(email__iexact=email).first()
            membership = Membership.objects.filter(workspace=ws, staff=staff).first()
            if membership is None:
                membership = actions.staff_add(
                    workspace=ws, actor=actor, email=email, role=role, name=name, password=password
                )
            else:
                actions.staff_set_role(workspace=ws, actor=actor, membership=membership, role=role)
            # The CLI runs with the server's own authority: it (re)sets the password it is given,
            # also for a login that already exists in another workspace.
            membership.staff.set_password(password)
            membership.staff.save(update_fields=["password"])
        except SiyuError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{email} is {role} of workspace {ws.slug}")
