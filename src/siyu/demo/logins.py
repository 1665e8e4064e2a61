"""The demo staff's passwords: generated once with `secrets`, kept in SIYU_HOME/demo-login.txt
(mode 0600), never in the repository."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from siyu.accounts.models import Membership
from siyu.core.models import Workspace
from siyu.demo import data

FILE_NAME = "demo-login.txt"


@dataclass(frozen=True)
class Login:
    role: str
    email: str
    password: str
    name: str


def login_file() -> Path:
    return Path(settings.SIYU_HOME) / FILE_NAME


def new_password() -> str:
    return secrets.token_urlsafe(12)


def read_logins(path: Path | None = None) -> dict[str, Login]:
    path = path or login_file()
    if not path.exists():
        return {}
    logins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) != 4:
            continue
        login = Login(*parts)
        logins[login.email] = login
    return logins


def write_logins(logins: list[Login], path: Path | None = None) -> Path:
    path = path or login_file()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# siyu demo logins: generated once on this machine, keep private.\n")
        handle.write("# role\temail\tpassword\tname\n")
        for login in logins:
            handle.write(f"{login.role}\t{login.email}\t{login.password}\t{login.name}\n")
    return path


def planned_logins() -> list[Login]:
    """The demo staff with their passwords: from the file if present, else new ones."""
    known = read_logins()
    return [
        Login(role, email, known[email].password if email in known else new_password(), name)
        for role, email, name in data.STAFF
    ]


def ensure_logins(workspace: Workspace) -> list[Login]:
    """The logins of the demo staff who are members of `workspace`. If the file is missing,
    incomplete or out of date (the owner's password does not match), new passwords are set
    for the affected staff and the file is rewritten."""
    known = read_logins()
    members = {
        m.staff.email: m
        for m in Membership.objects.filter(workspace=workspace).select_related("staff")
    }
    owner = members.get(data.OWNER_EMAIL)
    stale = owner is not None and (
        data.OWNER_EMAIL not in known
        or not owner.staff.check_password(known[data.OWNER_EMAIL].password)
    )
    logins, changed = [], False
    for _role, email, name in data.STAFF:
        membership = members.get(email)
        if membership is None:
            continue
        login = known.get(email)
        if login is None or stale:
            login = Login(membership.role, email, new_password(), membership.staff.name or name)
            membership.staff.set_password(login.password)
            membership.staff.save(update_fields=["password"])
            changed = True
        logins.append(login)
    if changed:
        write_logins(logins)
    return logins
