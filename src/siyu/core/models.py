from django.conf import settings
from django.db import models
from django.utils.timezone import now


class Workspace(models.Model):
    """One brand. Every other row carries a workspace and every query is scoped by it."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, default="Asia/Shanghai")
    currency = models.CharField(max_length=3, default="CNY")
    created_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return self.name


def unchecked_workspace(*, db_index: bool = False) -> models.ForeignKey:
    """The workspace key of rows written or replaced in bulk: no database constraint
    (PostgreSQL checks every new row's key with a trigger at commit) and, unless asked, no
    lone index (the model's composite indexes start with the workspace). Workspaces are
    deleted through the ORM, which deletes these rows first."""
    return models.ForeignKey(
        "core.Workspace",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=db_index,
        db_constraint=False,
    )


class WorkspaceScoped(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class AuditLog(WorkspaceScoped):
    """Who did what to which object, with before/after, from where and when."""

    workspace = unchecked_workspace()  # ingest writes thousands of rows a batch
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # audit_actor_set: the system's rows (most of them) have no actor
    )
    # Kept even if the staff member is deleted, and for API keys and the CLI.
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-id"], name="audit_ws_recent"),
            models.Index(fields=["workspace", "action", "-id"], name="audit_ws_action"),
            models.Index(fields=["workspace", "object_type", "object_id"], name="audit_ws_object"),
            models.Index(
                fields=["actor"], condition=models.Q(actor__isnull=False), name="audit_actor_set"
            ),
        ]


class WorkerHeartbeat(models.Model):
    """Written by every `siyu worker` every few seconds, read by `siyu check` and the console."""

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()


class Job(WorkspaceScoped):
    """Long-running work (bulk changes, imports, exports) run by the task worker, with the
    progress the console shows while it runs."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=60)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.IntegerField(default=0)
    total = models.IntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    actor_role = models.CharField(max_length=16, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written when a worker claims the job and on every progress report: a running job whose
    # heartbeat is old lost its worker and is queued again (core/jobs.py).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-id"], name="job_ws_recent")]

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
