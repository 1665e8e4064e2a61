from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone

from siyu.accounts.permissions import Role
from siyu.core.models import Workspace, WorkspaceScoped


class StaffManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        staff = self.model(email=self.normalize_email(email).lower(), **fields)
        staff.set_password(password)
        staff.save(using=self._db)
        return staff

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class Staff(AbstractBaseUser):
    """A person who logs in to the console. Roles are per workspace (Membership)."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = StaffManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self) -> str:
        return self.name or self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email


class Membership(WorkspaceScoped):
    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "staff"], name="membership_unique")
        ]


class ApiKey(WorkspaceScoped):
    """A bearer key for the REST API. Only a SHA-256 of the key is stored; it is shown once."""

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ADMIN)
    created_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL)
    # An agent-role key works on the contacts of this staff member, like the agent would.
    acts_for = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.CASCADE, related_name="agent_keys"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


__all__ = ["Staff", "Membership", "ApiKey", "Workspace"]
