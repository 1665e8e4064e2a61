"""The demo brand and the synthetic pool: loads, deterministic, idempotent, identities valid
and encrypted, seed-demo adds exactly N, the demo command prints its URL and login."""

import datetime
import io
import random
import stat

import pytest
from django.core.management import call_command

from siyu.accounts.models import Membership, Staff
from siyu.contacts import actions as contact_actions
from siyu.contacts.actions.contact import IdentityInput
from siyu.contacts.actions.identity import identity_hash
from siyu.contacts.models import (
    AttributeDefinition,
    Contact,
    ContactTag,
    Identity,
    TagGroup,
    TimelineEntry,
)
from siyu.contacts.normalize import normalize_email, normalize_phone
from siyu.core import crypto
from siyu.core.audit import Actor
from siyu.core.models import AuditLog, Workspace
from siyu.demo import data, people
from siyu.demo.brand import load_demo
from siyu.demo.bulk import next_counter
from siyu.demo.logins import login_file, read_logins

NOW = datetime.datetime(2026, 11, 20, 8, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def demo_home(settings, tmp_path):
    """Each test gets its own SIYU_HOME, so demo-login.txt starts absent."""
    settings.SIYU_HOME = tmp_path
    return tmp_path


def _snapshot(workspace):
    contacts = Contact.objects.filter(workspace=workspace).order_by("id")
    phones = Identity.objects.filter(workspace=workspace, kind="phone").order_by("contact_id")
    return (
        [(c.name, c.gender, c.city, c.source, c.attributes) for c in contacts],
        [i.value_hash for i in phones],
    )


def test_the_demo_loads_deterministically(db):
    first = load_demo(seed=7, contacts=120, now=NOW)
    ws = first.workspace
    assert (ws.slug, ws.timezone, ws.currency) == ("demo", "Asia/Shanghai", "CNY")
    assert first.counts.contacts == Contact.objects.filter(workspace=ws).count() == 120
    roles = sorted(Membership.objects.filter(workspace=ws).values_list("role", flat=True))
    assert roles.count("agent") == len(data.STORES) and roles.count("owner") == 1
    assert TagGroup.objects.filter(workspace=ws).count() == len(data.TAG_GROUPS)
    assert AttributeDefinition.objects.filter(workspace=ws).count() == len(data.ATTRIBUTES)
    assert ContactTag.objects.filter(workspace=ws).exists()
    created = TimelineEntry.objects.filter(workspace=ws, kind="created").count()
    assert created == 120
    assert AuditLog.objects.filter(workspace=ws, action="demo.load").count() == 1
    owned = Contact.objects.filter(workspace=ws, owner__isnull=False).count()
    assert owned > 60  # most contacts have an advisor
    snapshot = _snapshot(ws)

    ws.delete()  # the same seed again gives the same people
    assert _snapshot(load_demo(seed=7, contacts=120, now=NOW).workspace) == snapshot
    Workspace.objects.get(slug="demo").delete()
    other = _snapshot(load_demo(seed=8, contacts=120, now=NOW).workspace)
    assert other[0] != snapshot[0]


def test_identities_are_valid_and_pii_is_encrypted(db):
    ws = load_demo(seed=3, contacts=150, now=NOW).workspace
    phones = Identity.objects.filter(workspace=ws, kind="phone")
    assert phones.count() > 100
    for identity in phones:
        clear = crypto.decrypt(identity.value_enc)
        assert identity.value == ""
        assert normalize_phone(clear) == clear and clear.startswith("+861")
        assert identity.value_hash == identity_hash("phone", clear)
        assert identity.masked == clear[3:6] + "****" + clear[-4:]
    for identity in Identity.objects.filter(workspace=ws, kind="email"):
        clear = crypto.decrypt(identity.value_enc)
        assert identity.value == "" and normalize_email(clear) == clear
    openids = Identity.objects.filter(workspace=ws, kind="wechat_openid")
    assert set(openids.values_list("app_id", flat=True)) <= {
        data.MINI_PROGRAM_APP_ID,
        data.OFFICIAL_ACCOUNT_APP_ID,
    }


def test_synthetic_phones_are_valid_and_unique():
    rng = random.Random(1)
    ks = [rng.randrange(people.MAX_COUNTER) for _ in range(300)]
    ks += list(range(len(people.MOBILE_PREFIXES) * 3))
    for k in ks:
        phone = people.phone_for(k)
        assert normalize_phone(phone) == phone
    assert len({people.phone_for(k) for k in range(20_000)}) == 20_000
    assert len({people.user_id_for(k) for k in range(20_000)}) == 20_000


def test_the_demo_command_is_idempotent_and_prints_the_login(db, demo_home, monkeypatch):
    served = []
    monkeypatch.setattr("siyu.core.management.commands.demo.serve", lambda **kw: served.append(kw))
    out = io.StringIO()
    call_command("demo", "--no-serve", "--contacts", "40", "--port", "8123", stdout=out)
    text = out.getvalue()
    logins = read_logins()
    password = logins[data.OWNER_EMAIL].password
    assert "http://127.0.0.1:8123/" in text
    assert data.OWNER_EMAIL in text and password in text
    assert "seed-demo --contacts" in text
    assert stat.S_IMODE(login_file().stat().st_mode) == 0o600
    assert len(logins) == len(data.STAFF)
    assert Staff.objects.get(email=data.OWNER_EMAIL).check_password(password)
    assert not served

    again = io.StringIO()
    call_command("demo", stdout=again)  # exists: loads nothing, prints the same login, serves
    assert "nothing loaded" in again.getvalue() and password in again.getvalue()
    assert Contact.objects.filter(workspace__slug="demo").count() == 40
    assert Workspace.objects.filter(slug="demo").count() == 1
    assert served and served[0]["with_worker"] is True and served[0]["workers"] == 2


def test_a_lost_login_file_gets_new_passwords(db, demo_home):
    call_command("demo", "--no-serve", "--contacts", "5", stdout=io.StringIO())
    old = read_logins()[data.OWNER_EMAIL].password
    login_file().unlink()
    call_command("demo", "--no-serve", stdout=io.StringIO())
    new = read_logins()[data.OWNER_EMAIL].password
    assert new != old and Staff.objects.get(email=data.OWNER_EMAIL).check_password(new)


def test_seed_demo_adds_exactly_n_and_never_collides(db):
    ws = load_demo(seed=5, contacts=30, now=NOW).workspace
    # A real contact already holds the phone the next synthetic contact would get.
    taken = people.phone_for(next_counter(ws))
    real = contact_actions.contact_create(
        workspace=ws,
        actor=Actor.system("test"),
        profile={"name": "真实客户"},
        identities=[IdentityInput("phone", taken)],
    )
    out = io.StringIO()
    call_command("seed_demo", "--contacts", "250", "--batch", "100", stdout=out)
    assert Contact.objects.filter(workspace=ws).count() == 30 + 1 + 250
    assert "contacts/s" in out.getvalue()
    call_command("seed_demo", "--contacts", "70", "--seed", "5", stdout=io.StringIO())
    assert Contact.objects.filter(workspace=ws).count() == 30 + 1 + 250 + 70
    phone = Identity.objects.get(
        workspace=ws, kind="phone", value_hash=identity_hash("phone", taken)
    )
    assert phone.contact_id == real.pk
    seeds = AuditLog.objects.filter(workspace=ws, action="demo.seed")
    assert sum(a.after["contacts"] for a in seeds) == 320


def test_seed_demo_creates_the_demo_when_absent(db, monkeypatch):
    monkeypatch.setattr("siyu.core.management.commands.seed_demo.DEFAULT_CONTACTS", 20)
    call_command("seed_demo", "--contacts", "15", stdout=io.StringIO())
    assert Contact.objects.filter(workspace__slug="demo").count() == 35
