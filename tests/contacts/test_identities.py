"""Identities: canonical forms, uniqueness per workspace, PII encrypted at rest and found by
keyed hash, masked output, search in any common format, and key rotation."""

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.management import call_command
from django.core.management.base import CommandError

from siyu.contacts import actions
from siyu.contacts.actions.identity import find_identity
from siyu.contacts.models import Contact, Identity, TimelineEntry
from siyu.contacts.normalize import mask_email, mask_phone, normalize_email, normalize_phone
from siyu.core import crypto
from siyu.core.errors import ValidationError
from siyu.core.keys import encryption_keys_file, new_fernet_key
from siyu.core.models import AuditLog
from tests.helpers import all_tables_text, db_snapshot, error_of, raw_rows, snapshot_diff

PHONE = "+8613812345678"


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138-1234-5678",
        "+86 (138) 1234-5678",
        "+8613812345678",
        "008613812345678",
        "86 13812345678",
        "8613812345678",
        " 13812345678 ",
    ],
)
def test_chinese_mobile_formats_normalise_to_e164(raw):
    assert normalize_phone(raw) == PHONE


@pytest.mark.parametrize(
    "raw, e164",
    [
        ("010-12345678", "+861012345678"),  # Beijing landline
        ("(021) 6123 4567", "+862161234567"),  # Shanghai landline
        ("+1 415 555 2671", "+14155552671"),
        ("+852 6123 4567", "+85261234567"),
    ],
)
def test_other_numbers_normalise_to_e164(raw, e164):
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12345", "1381234567", "138123456789", "abc", "", "+86 000"])
def test_invalid_phones_name_the_field(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_phone(raw, "identities[0].value")
    assert exc.value.status == 422
    assert exc.value.details["field"] == "identities[0].value"


def test_email_is_trimmed_and_lowercased():
    assert normalize_email("  Wang.Fang@Example.COM ") == "wang.fang@example.com"
    with pytest.raises(ValidationError) as exc:
        normalize_email("not-an-email")
    assert exc.value.details["field"] == "email"


def test_masks():
    assert mask_phone("+8613812341234") == "138****1234"
    assert mask_phone("+14155552671") == "141****2671"
    assert mask_email("wang.fang@example.com") == "w***@example.com"


# --- through the API -------------------------------------------------------------------------


def test_create_with_phone_and_email_stores_canonical_hashed_and_masked(api):
    r = api("admin").post(
        "/api/v1/contacts",
        {
            "name": "王芳",
            "identities": [
                {"kind": "phone", "value": "+86 138-1234-5678"},
                {"kind": "email", "value": "Wang.Fang@Example.com"},
            ],
        },
    )
    assert r.status_code == 201, r.content
    by_kind = {i["kind"]: i for i in r.json()["identities"]}
    assert by_kind["phone"]["value"] == "138****5678" and by_kind["phone"]["masked"] is True
    assert by_kind["email"]["value"] == "w***@example.com" and by_kind["email"]["masked"] is True
    phone = Identity.objects.get(kind="phone")
    assert phone.value == ""
    assert crypto.decrypt(phone.value_enc) == PHONE
    assert phone.value_hash == crypto.keyed_hash("phone/", PHONE)
    email = Identity.objects.get(kind="email")
    assert crypto.decrypt(email.value_enc) == "wang.fang@example.com"


def test_raw_database_rows_hold_no_clear_phone_or_email(api, cast):
    client = api("admin")
    r = client.post(
        "/api/v1/contacts",
        {
            "name": "李雷",
            "identities": [
                {"kind": "phone", "value": "139 8765 4321"},
                {"kind": "email", "value": "Li.Lei@Example.com"},
            ],
        },
    )
    cid = r.json()["id"]
    # more writes that mention the contact: identity added/removed, update, reveal, merge
    added = client.post(
        f"/api/v1/contacts/{cid}/identities", {"kind": "phone", "value": "+86 137 1111 2222"}
    )
    assert added.status_code == 201
    client.delete(f"/api/v1/contacts/{cid}/identities/{added.json()['id']}")
    client.patch(f"/api/v1/contacts/{cid}", {"city": "上海"})
    assert client.get(f"/api/v1/contacts/{cid}", reveal="true").status_code == 200
    other = client.post(
        "/api/v1/contacts",
        {"name": "韩梅梅", "identities": [{"kind": "email", "value": "han@example.org"}]},
    ).json()["id"]
    assert client.post(f"/api/v1/contacts/{cid}/merge", {"other_id": other}).status_code == 200

    for table in ("contacts_identity", "contacts_contact", "core_auditlog"):
        assert raw_rows(table), table
    text = all_tables_text()  # every row of every table
    for secret in (
        "13987654321",
        "8613987654321",
        "139 8765 4321",
        "13711112222",
        "li.lei@example.com",
        "han@example.org",
    ):
        assert secret not in text, secret
    # and the masked forms are what the audit log and the timeline carry
    assert "139****4321" in text
    assert TimelineEntry.objects.filter(kind="identity_added", data__value="137****2222").exists()


def test_invalid_phone_on_create_is_422_naming_the_item(api):
    client = api("admin")
    before = db_snapshot()
    r = client.post(
        "/api/v1/contacts",
        {
            "name": "x",
            "identities": [
                {"kind": "email", "value": "ok@example.com"},
                {"kind": "phone", "value": "12345"},
            ],
        },
    )
    assert r.status_code == 422
    body = error_of(r)
    assert body["code"] == "invalid"
    assert body["details"]["field"] == "identities[1].value"
    assert snapshot_diff(before, db_snapshot()) == []


def test_invalid_phone_on_identity_add_names_value(api, make_contact):
    contact = make_contact()
    client = api("admin")
    before = db_snapshot()
    r = client.post(f"/api/v1/contacts/{contact.pk}/identities", {"kind": "phone", "value": "1"})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "value"
    r = client.post(f"/api/v1/contacts/{contact.pk}/identities", {"kind": "email", "value": "x@"})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "value"
    r = client.post(f"/api/v1/contacts/{contact.pk}/identities", {"kind": "qq", "value": "1"})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "kind"
    r = client.post(f"/api/v1/contacts/{contact.pk}/identities", {"kind": "user_id", "value": " "})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "value"
    r = client.post(f"/api/v1/contacts/{contact.pk}/identities", {"kind": "phone"})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "value"
    assert snapshot_diff(before, db_snapshot()) == []


def test_unknown_kind_in_create_names_the_item(api):
    r = api("admin").post(
        "/api/v1/contacts", {"identities": [{"kind": "qq", "value": "10001"}], "name": "x"}
    )
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "identities[0].kind"
    assert Contact.objects.count() == 0


@pytest.mark.parametrize(
    "kind, first, second",
    [
        ("phone", "13812345678", "+86 138 1234 5678"),
        ("email", "A@Example.com", "a@example.COM"),
        ("user_id", "u-42", " u-42 "),
        ("anonymous_id", "anon-1", "anon-1"),
        ("wechat_unionid", "oUnion", "oUnion"),
        ("wecom_external_userid", "wmExt", "wmExt"),
    ],
)
def test_duplicate_identity_is_409_with_the_existing_contact(kind, first, second, api):
    client = api("admin")
    owner = client.post(
        "/api/v1/contacts", {"name": "甲", "identities": [{"kind": kind, "value": first}]}
    )
    assert owner.status_code == 201, owner.content
    existing = owner.json()["id"]
    other = client.post("/api/v1/contacts", {"name": "乙"}).json()["id"]
    before = db_snapshot()
    r = client.post(f"/api/v1/contacts/{other}/identities", {"kind": kind, "value": second})
    assert r.status_code == 409, r.content
    body = error_of(r)
    assert body["code"] == "identity_taken"
    assert body["details"]["contact_id"] == existing
    r = client.post(
        "/api/v1/contacts", {"name": "丙", "identities": [{"kind": kind, "value": second}]}
    )
    assert r.status_code == 409
    assert error_of(r)["details"]["contact_id"] == existing
    assert snapshot_diff(before, db_snapshot()) == []


def test_adding_an_identity_the_contact_already_has_is_harmless(api, make_contact):
    contact = make_contact(phone="13812345678")
    r = api("admin").post(
        f"/api/v1/contacts/{contact.pk}/identities", {"kind": "phone", "value": "138 1234 5678"}
    )
    assert r.status_code == 201
    assert contact.identities.filter(kind="phone").count() == 1


def test_the_same_identity_may_exist_in_two_workspaces(cast, make_contact):
    a = make_contact(phone="13812345678", email="x@example.com")
    b = make_contact(phone="13812345678", email="x@example.com", workspace=cast.outsider_workspace)
    assert a.workspace_id != b.workspace_id
    assert find_identity(cast.workspace, "phone", "13812345678").contact_id == a.pk
    assert find_identity(cast.outsider_workspace, "phone", "13812345678").contact_id == b.pk


def test_openid_is_unique_per_app_id(api):
    client = api("admin")
    a = client.post(
        "/api/v1/contacts",
        {"name": "甲", "identities": [{"kind": "wechat_openid", "value": "oX1", "app_id": "wxA"}]},
    )
    assert a.status_code == 201
    b = client.post(
        "/api/v1/contacts",
        {"name": "乙", "identities": [{"kind": "wechat_openid", "value": "oX1", "app_id": "wxB"}]},
    )
    assert b.status_code == 201, b.content
    assert b.json()["identities"][0]["app_id"] == "wxB"
    c = client.post(
        "/api/v1/contacts",
        {"name": "丙", "identities": [{"kind": "wechat_openid", "value": "oX1", "app_id": "wxA"}]},
    )
    assert c.status_code == 409
    assert error_of(c)["details"]["contact_id"] == a.json()["id"]


def test_openid_without_app_id_is_422(api):
    client = api("admin")
    r = client.post(
        "/api/v1/contacts", {"name": "x", "identities": [{"kind": "wechat_openid", "value": "o1"}]}
    )
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "identities[0].app_id"
    assert Contact.objects.count() == 0
    cid = client.post("/api/v1/contacts", {"name": "y"}).json()["id"]
    r = client.post(f"/api/v1/contacts/{cid}/identities", {"kind": "wechat_openid", "value": "o1"})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "app_id"
    assert not Identity.objects.exists()


def test_app_id_is_ignored_for_other_kinds(api):
    r = api("admin").post(
        "/api/v1/contacts",
        {"name": "x", "identities": [{"kind": "wechat_unionid", "value": "u1", "app_id": "wxA"}]},
    )
    assert r.json()["identities"][0]["app_id"] == ""


def test_all_identity_kinds_are_listed(api, make_contact):
    contact = make_contact(
        phone="13812345678",
        email="a@b.cn",
        user_id="u1",
        anonymous_id="an1",
        wechat_unionid="un1",
        wecom_external_userid="wm1",
    )
    client = api("operator")
    client.post(
        f"/api/v1/contacts/{contact.pk}/identities",
        {"kind": "wechat_openid", "value": "op1", "app_id": "wx1"},
    )
    rows = client.get(f"/api/v1/contacts/{contact.pk}/identities").json()
    assert [(i["kind"], i["value"], i["masked"]) for i in rows] == [
        ("phone", "138****5678", True),
        ("email", "a***@b.cn", True),
        ("user_id", "u1", False),
        ("anonymous_id", "an1", False),
        ("wechat_unionid", "un1", False),
        ("wecom_external_userid", "wm1", False),
        ("wechat_openid", "op1", False),
    ]


# --- search ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q",
    ["13812345678", "138 1234 5678", "+86 138-1234-5678", "008613812345678", "+8613812345678"],
)
def test_search_by_phone_in_any_format(q, api, make_contact):
    target = make_contact(name="目标", phone="138-1234-5678")
    make_contact(name="别人", phone="13900001111")
    items = api("analyst").get("/api/v1/contacts", q=q).json()["items"]
    assert [c["id"] for c in items] == [target.pk]


@pytest.mark.parametrize(
    "q, kind",
    [
        ("Zhang.San@Example.com", "email"),
        ("zhang.san@example.com", "email"),
        ("uid-7", "user_id"),
        ("anon-7", "anonymous_id"),
        ("oUnion7", "wechat_unionid"),
        ("wmExternal7", "wecom_external_userid"),
        ("oOpenid7", "wechat_openid"),
    ],
)
def test_search_by_other_identities(q, kind, api, make_contact):
    target = make_contact(
        name="目标",
        email="zhang.san@example.com",
        user_id="uid-7",
        anonymous_id="anon-7",
        wechat_unionid="oUnion7",
        wecom_external_userid="wmExternal7",
    )
    actions.identity_add(
        workspace=target.workspace,
        actor=_system(),
        contact=target,
        kind="wechat_openid",
        value="oOpenid7",
        app_id="wxMini",
    )
    make_contact(name="别人", email="other@example.com", user_id="uid-8")
    items = api("admin").get("/api/v1/contacts", q=q).json()["items"]
    assert [c["id"] for c in items] == [target.pk], kind


def test_search_matches_name_prefix_and_nothing_partial_on_identities(api, make_contact):
    a = make_contact(name="王小明", phone="13812345678")
    make_contact(name="李王", phone="13900001111")
    client = api("admin")
    assert [c["id"] for c in client.get("/api/v1/contacts", q="王小").json()["items"]] == [a.pk]
    assert client.get("/api/v1/contacts", q="1381234").json()["items"] == []
    assert client.get("/api/v1/contacts", q="5678").json()["items"] == []


def _system():
    from siyu.core.audit import Actor

    return Actor.system("test")


# --- key rotation ----------------------------------------------------------------------------


def test_rotate_key_refuses_to_add_a_key_when_keys_come_from_the_environment(
    settings, make_contact
):
    assert settings.SIYU_ENCRYPTION_KEYS_FROM_ENV is True
    make_contact(phone="13812345678")
    keys = list(settings.SIYU_ENCRYPTION_KEYS)
    with pytest.raises(CommandError, match="--reencrypt-only"):
        call_command("rotate_key")
    assert settings.SIYU_ENCRYPTION_KEYS == keys


def test_rotate_key_env_mode_reencrypts_under_the_first_key(settings, make_contact, capsys):
    old = settings.SIYU_ENCRYPTION_KEYS[0]
    make_contact(phone="13812345678", email="a@example.com")
    new = new_fernet_key()
    settings.SIYU_ENCRYPTION_KEYS = [new, old]  # the operator put a new key first
    call_command("rotate_key", "--reencrypt-only", "--drop-old")
    assert "re-encrypted 2 value(s)" in capsys.readouterr().out
    only_new = MultiFernet([Fernet(new)])
    for token in Identity.objects.exclude(value_enc="").values_list("value_enc", flat=True):
        only_new.decrypt(token.encode())
    # --drop-old never edits keys that come from the environment
    assert settings.SIYU_ENCRYPTION_KEYS == [new, old]


@pytest.fixture
def file_keys(settings, tmp_path):
    """Keys from SIYU_HOME/encryption.keys instead of the environment."""
    old = settings.SIYU_ENCRYPTION_KEYS[0]
    settings.SIYU_HOME = tmp_path
    settings.SIYU_ENCRYPTION_KEYS_FROM_ENV = False
    settings.SIYU_ENCRYPTION_KEYS = [old]
    encryption_keys_file(tmp_path).write_text(old + "\n")
    return old


def test_rotate_key_file_mode_adds_a_key_and_reencrypts(
    settings, file_keys, tmp_path, make_contact
):
    old = file_keys
    a = make_contact(phone="13812345678", email="a@example.com", user_id="u1")
    make_contact(phone="13900001111")
    old_token = crypto.encrypt("13700000000")  # e.g. a backup taken before the rotation
    before = dict(Identity.objects.values_list("pk", "value_enc"))

    call_command("rotate_key")

    path = encryption_keys_file(tmp_path)
    lines = path.read_text().split()
    assert len(lines) == 2 and lines[1] == old and lines[0] != old
    new = lines[0]
    assert settings.SIYU_ENCRYPTION_KEYS == [new, old]
    # a value encrypted under the old key still decrypts
    assert crypto.decrypt(old_token) == "13700000000"
    # every stored token was re-encrypted under the new key alone
    only_new = MultiFernet([Fernet(new)])
    after = dict(Identity.objects.exclude(value_enc="").values_list("pk", "value_enc"))
    assert len(after) == 3
    for pk, token in after.items():
        assert token != before[pk]
        assert only_new.decrypt(token.encode()).decode() == crypto.decrypt(before[pk])
        with pytest.raises(InvalidToken):
            MultiFernet([Fernet(old)]).decrypt(token.encode())
    # the clear values, hashes and lookups are untouched
    assert find_identity(a.workspace, "phone", "13812345678").contact_id == a.pk
    assert Identity.objects.get(kind="user_id").value == "u1"


def test_rotate_key_drop_old_leaves_one_key(settings, file_keys, tmp_path, make_contact, api):
    old = file_keys
    contact = make_contact(phone="13812345678")
    call_command("rotate_key", "--drop-old")
    lines = encryption_keys_file(tmp_path).read_text().split()
    assert len(lines) == 1 and lines[0] != old
    assert settings.SIYU_ENCRYPTION_KEYS == lines
    token = Identity.objects.get(kind="phone").value_enc
    assert MultiFernet([Fernet(lines[0])]).decrypt(token.encode()) == b"+8613812345678"
    # the application still reads and reveals with the single new key
    r = api("admin").get(f"/api/v1/contacts/{contact.pk}", reveal="true")
    assert r.json()["identities"][0]["value"] == "+8613812345678"
    assert AuditLog.objects.filter(action="pii.reveal").count() == 1


def test_rotate_twice_keeps_every_value_readable(settings, file_keys, tmp_path, make_contact):
    make_contact(phone="13812345678", email="e@example.com")
    call_command("rotate_key")
    call_command("rotate_key")
    keys = encryption_keys_file(tmp_path).read_text().split()
    assert len(keys) == 3 and keys[2] == file_keys
    newest = MultiFernet([Fernet(keys[0])])
    values = sorted(
        newest.decrypt(t.encode()).decode()
        for t in Identity.objects.exclude(value_enc="").values_list("value_enc", flat=True)
    )
    assert values == ["+8613812345678", "e@example.com"]
