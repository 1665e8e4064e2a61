"""A list of identities uploaded for a static segment, matched to contacts: a CSV or Excel
file read like an import (encoding, delimiter, .xlsx), one column named by its header
(手机号/phone, 邮箱/email, user_id, unionid, openid, external_userid). Values are normalised
and hashed like stored identities, then looked up in batches (never one query per row);
the report says how many rows matched and which did not, and why."""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from siyu.contacts.actions.identity import identity_hash
from siyu.contacts.imports.reading import ImportFileError, open_table, sniff_format
from siyu.contacts.models import Identity, IdentityKind
from siyu.contacts.normalize import normalize_identity
from siyu.contacts.queries import visible_contacts
from siyu.core.audit import Actor
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace

BATCH = 1000
SHOW_UNMATCHED = 200
# header (lower case, spaces removed) -> identity kind
COLUMNS: dict[str, str] = {
    "手机号": IdentityKind.PHONE,
    "手机": IdentityKind.PHONE,
    "手机号码": IdentityKind.PHONE,
    "phone": IdentityKind.PHONE,
    "mobile": IdentityKind.PHONE,
    "邮箱": IdentityKind.EMAIL,
    "电子邮箱": IdentityKind.EMAIL,
    "email": IdentityKind.EMAIL,
    "e-mail": IdentityKind.EMAIL,
    "user_id": IdentityKind.USER_ID,
    "userid": IdentityKind.USER_ID,
    "用户id": IdentityKind.USER_ID,
    "unionid": IdentityKind.WECHAT_UNIONID,
    "wechat_unionid": IdentityKind.WECHAT_UNIONID,
    "openid": IdentityKind.WECHAT_OPENID,
    "wechat_openid": IdentityKind.WECHAT_OPENID,
    "external_userid": IdentityKind.WECOM_EXTERNAL_USERID,
    "wecom_external_userid": IdentityKind.WECOM_EXTERNAL_USERID,
}


@dataclass
class Unmatched:
    row: int
    value: str
    reason: str


@dataclass
class MatchReport:
    kind: str = ""
    column: str = ""
    rows: int = 0
    matched_rows: int = 0
    contact_ids: list[int] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)  # the first SHOW_UNMATCHED
    unmatched_count: int = 0

    @property
    def kind_label(self) -> str:
        return str(IdentityKind(self.kind).label) if self.kind else ""

    def miss(self, row: int, value: str, reason: str) -> None:
        self.unmatched_count += 1
        if len(self.unmatched) < SHOW_UNMATCHED:
            self.unmatched.append(Unmatched(row, value, reason))


def _column(header: list[str]) -> tuple[int, str]:
    for index, name in enumerate(header):
        kind = COLUMNS.get(name.strip().lower().replace(" ", ""))
        if kind:
            return index, kind
    raise ImportFileError(
        "no identity column: name the first row's column 手机号, 邮箱, user_id, unionid, "
        "openid or external_userid"
    )


def _save(upload: UploadedFile) -> Path:
    """The upload in a temporary file named as what it is (openpyxl goes by the suffix)."""
    handle, name = tempfile.mkstemp(prefix="siyu-segment-", suffix=".csv")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        if path.stat().st_size and sniff_format(path) == "xlsx":
            path = path.rename(path.with_suffix(".xlsx"))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def match_upload(workspace: Workspace, actor: Actor, upload: UploadedFile) -> MatchReport:
    """Match every row of the file; raises ImportFileError when the file cannot be read."""
    path = _save(upload)
    try:
        table = open_table(path)
        index, kind = _column(table.header)
        report = MatchReport(kind=kind, column=table.header[index])
        # normalised value -> the row numbers holding it
        wanted: dict[str, list[tuple[int, str]]] = {}
        for number, cells in table.rows():
            report.rows += 1
            raw = cells[index].strip() if index < len(cells) else ""
            if not raw:
                report.miss(number, "", _("empty"))
                continue
            try:
                value = normalize_identity(kind, raw)
            except ValidationError as exc:
                report.miss(number, raw, exc.localized())
                continue
            wanted.setdefault(value, []).append((number, raw))
    finally:
        path.unlink(missing_ok=True)
    found = _lookup(workspace, actor, kind, list(wanted))
    contacts: set[int] = set()
    for value, rows in wanted.items():
        ids = found.get(value)
        if ids:
            contacts |= ids
            report.matched_rows += len(rows)
        else:
            for number, raw in rows:
                report.miss(number, raw, _("no contact with this identity"))
    report.unmatched.sort(key=lambda u: u.row)
    report.contact_ids = sorted(contacts)
    return report


def _lookup(workspace: Workspace, actor: Actor, kind: str, values: list[str]) -> dict[str, set]:
    """value -> ids of the contacts holding it that the actor may see, in batches. An openid
    is stored in clear under its app id, which a list does not carry: matched by value."""
    found: dict[str, set] = {}
    visible = visible_contacts(workspace, actor)
    identities = Identity.objects.filter(workspace=workspace, kind=kind)
    for start in range(0, len(values), BATCH):
        chunk = values[start : start + BATCH]
        if kind == IdentityKind.WECHAT_OPENID:
            rows = identities.filter(value__in=chunk).values_list("value", "contact_id")
        else:
            by_hash = {identity_hash(kind, v): v for v in chunk}
            rows = [
                (by_hash[h], contact_id)
                for h, contact_id in identities.filter(value_hash__in=list(by_hash)).values_list(
                    "value_hash", "contact_id"
                )
            ]
        pairs = list(rows)
        allowed = set(visible.filter(pk__in={c for _v, c in pairs}).values_list("pk", flat=True))
        for value, contact_id in pairs:
            if contact_id in allowed:
                found.setdefault(value, set()).add(contact_id)
    return found
