from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.core.models import WorkspaceScoped, unchecked_workspace


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")


class Source(models.TextChoices):
    """Where a contact was first met (公域 → 私域). Free text is allowed; these are labelled."""

    STORE_QR = "store_qr", _("Store QR code")
    MINI_PROGRAM = "mini_program", _("Mini program")
    DOUYIN = "douyin", _("Douyin")
    XIAOHONGSHU = "xiaohongshu", _("Xiaohongshu")
    WECOM = "wecom", _("WeCom")
    OFFICIAL_ACCOUNT = "official_account", _("Official account")
    REFERRAL = "referral", _("Referral")
    TAOBAO = "taobao", _("Taobao")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    MANUAL = "manual", _("Manual")


class Contact(WorkspaceScoped):
    """A person in the customer pool (客户)."""

    # ingest writes contacts, identities, timeline and audit rows in bulk
    workspace = unchecked_workspace()
    name = models.CharField(max_length=120, blank=True)
    gender = models.CharField(max_length=8, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(null=True, blank=True)
    province = models.CharField(max_length=40, blank=True)
    city = models.CharField(max_length=40, blank=True)
    source = models.CharField(max_length=40, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_contacts",
        db_index=False,  # contact_owner_set: most contacts (ingested ones) have no owner
    )
    attributes = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # keyset paging for every list order, per workspace
            models.Index(fields=["workspace", "-id"], name="contact_ws_id"),
            models.Index(fields=["workspace", "-last_seen_at", "-id"], name="contact_ws_seen"),
            models.Index(fields=["workspace", "name", "id"], name="contact_ws_name"),
            models.Index(fields=["workspace", "source", "-id"], name="contact_ws_source"),
            models.Index(fields=["workspace", "owner", "-id"], name="contact_ws_owner"),
            models.Index(fields=["workspace", "created_at"], name="contact_ws_created"),
            # a user's contacts (deleting a user); the owner-less ones are not indexed
            models.Index(
                fields=["owner"], condition=Q(owner__isnull=False), name="contact_owner_set"
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"


class IdentityKind(models.TextChoices):
    USER_ID = "user_id", _("User ID")
    ANONYMOUS_ID = "anonymous_id", _("Anonymous ID")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")
    WECHAT_OPENID = "wechat_openid", _("WeChat openid")
    WECHAT_UNIONID = "wechat_unionid", _("WeChat unionid")
    WECOM_EXTERNAL_USERID = "wecom_external_userid", _("WeCom external_userid")


PII_KINDS = frozenset({IdentityKind.PHONE, IdentityKind.EMAIL})


class Identity(WorkspaceScoped):
    """One way to recognise a contact. Phone and email are stored encrypted (`value_enc`)
    with a keyed hash for lookup; other kinds are stored in clear in `value`."""

    workspace = unchecked_workspace()  # see Contact

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=32, choices=IdentityKind.choices)
    # The WeChat app id an openid belongs to (an openid is only unique per app).
    app_id = models.CharField(max_length=64, blank=True, default="")
    value = models.CharField(max_length=255, blank=True)
    value_enc = models.TextField(blank=True)
    value_hash = models.CharField(max_length=64)
    masked = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "app_id", "value_hash"], name="identity_unique"
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "value_hash"], name="identity_ws_hash"),
            # events of known users and devices are joined to their holders by clear value
            # (tracking/known.py); only these two kinds are looked up that way
            models.Index(
                fields=["workspace", "kind", "value"],
                name="identity_ws_kind_value",
                condition=models.Q(kind__in=["user_id", "anonymous_id"]),
            ),
        ]

    @property
    def is_pii(self) -> bool:
        return self.kind in PII_KINDS


class TagGroup(WorkspaceScoped):
    name = models.CharField(max_length=60)
    color = models.CharField(max_length=16, default="blue")
    sort = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="taggroup_unique")
        ]
        ordering = ["sort", "id"]


class Tag(WorkspaceScoped):
    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=60)
    sort = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "group", "name"], name="tag_unique")
        ]
        ordering = ["sort", "id"]

    def __str__(self) -> str:
        return self.name


class ContactTag(WorkspaceScoped):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="contact_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="contacttag_unique")]
        indexes = [models.Index(fields=["tag", "contact"], name="contacttag_tag")]


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    WECOM = "wecom", _("WeCom")
    WECHAT = "wechat", _("WeChat")


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", _("Granted")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Consent(WorkspaceScoped):
    """The latest consent per contact and channel; its history is in the timeline."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(max_length=120, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "channel"], name="consent_unique")
        ]


class AttributeType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    BOOL = "bool", _("Yes/No")
    CHOICE = "choice", _("Choice")


class AttributeDefinition(WorkspaceScoped):
    """The typed schema of a workspace's custom contact attributes."""

    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=60)
    type = models.CharField(max_length=8, choices=AttributeType.choices)
    choices = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="attribute_unique")
        ]
        ordering = ["id"]


class TimelineEntry(WorkspaceScoped):
    """Everything that happened to a contact, newest first on the profile."""

    # No database constraints (see Contact): ingest writes tens of thousands of entries a
    # batch, and contacts are deleted through the ORM, which deletes their entries first.
    workspace = unchecked_workspace(db_index=True)
    contact = models.ForeignKey(  # indexed by timeline_contact (contact first)
        Contact,
        on_delete=models.CASCADE,
        related_name="timeline",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["contact", "-id"], name="timeline_contact")]
