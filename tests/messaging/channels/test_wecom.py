"""The WeCom transport against a local fake WeCom server, over real HTTP."""

import datetime
import threading

import httpx
import pytest
from django.db import connection, connections
from django.utils import timezone

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import Outcome, Outgoing, VendorError
from siyu.messaging.channels.wecom.transport import WecomTransport
from siyu.messaging.models import ChannelConfig
from siyu.messaging.tokens import DbTokenStore, MemoryTokenStore, forget_cached
from tests.messaging.fakes import wecom as fake_wecom
from tests.messaging.fakes.wecom import FakeWecom

ADD = "/cgi-bin/externalcontact/add_msg_template"
LIST = "/cgi-bin/externalcontact/get_groupmsg_list_v2"
RESULTS = "/cgi-bin/externalcontact/get_groupmsg_send_result"
SETTINGS = {"corp_id": fake_wecom.CORP_ID, "agent_id": fake_wecom.AGENT_ID}
SECRETS = {"contact_secret": fake_wecom.CONTACT_SECRET, "app_secret": fake_wecom.APP_SECRET}


@pytest.fixture
def fake(settings):
    with FakeWecom() as server:
        settings.SIYU_WECOM_URL = server.url
        yield server


def transport(**overrides) -> WecomTransport:
    settings = {**SETTINGS, **overrides.pop("settings", {})}
    secrets = {**SECRETS, **overrides.pop("secrets", {})}
    return WecomTransport(settings, secrets, tokens=MemoryTokenStore(), **overrides)


def outgoing(n: int, sender: str = "zhangsan", text: str = "新品到店", prefix: str = "wm"):
    return [
        Outgoing(f"{prefix}-{sender}-{i}", f"{prefix}{i:06d}", {"text": text}, sender=sender)
        for i in range(n)
    ]


def by_key(results):
    return {r.key: r for r in results}


# --- sending -----------------------------------------------------------------------------------


def test_a_large_batch_becomes_calls_of_at_most_10000_recipients(fake):
    batch = outgoing(25_000)

    results = transport().send(batch)

    calls = [r.json() for r in fake.calls(ADD)]
    assert [len(c["external_userid"]) for c in calls] == [10_000, 10_000, 5_000]
    assert {c["sender"] for c in calls} == {"zhangsan"}
    assert all(c["chat_type"] == "single" and c["text"] == {"content": "新品到店"} for c in calls)
    assert len(results) == 25_000 and {r.outcome for r in results} == {Outcome.SENT}
    assert {r.vendor_id for r in results} == set(fake.tasks)
    task_of = {a: t.msgid for t in fake.tasks.values() for a in t.recipients}
    results_of = by_key(results)
    assert all(task_of[m.address] == results_of[m.key].vendor_id for m in batch)


def test_a_batch_is_grouped_by_sender_and_by_content(fake):
    batch = (
        outgoing(3, "zhangsan", "A")
        + outgoing(2, "lisi", "A")
        + outgoing(2, "zhangsan", "B", prefix="wn")
        + outgoing(2, "", "A", prefix="wd")  # no sender: the channel's default sender
    )

    results = transport(settings={"default_sender": "wangwu"}).send(batch)

    bodies = [r.json() for r in fake.calls(ADD)]
    calls = sorted((b["sender"], b["text"]["content"], len(b["external_userid"])) for b in bodies)
    assert calls == [
        ("lisi", "A", 2),
        ("wangwu", "A", 2),
        ("zhangsan", "A", 3),
        ("zhangsan", "B", 2),
    ]
    assert len(results) == 9 and {r.outcome for r in results} == {Outcome.SENT}
    assert len({r.vendor_id for r in results}) == 4


def test_a_message_without_any_sender_fails(fake):
    results = transport().send(outgoing(1, ""))

    assert results[0].outcome == Outcome.FAILED and results[0].code == "no_sender"
    assert fake.calls(ADD) == []


def test_customers_in_fail_list_fail_and_the_others_are_sent(fake):
    batch = outgoing(5)
    fake.not_customers = {batch[1].address, batch[3].address}

    results = by_key(transport().send(batch))

    outcomes = [results[m.key].outcome for m in batch]
    assert outcomes == [Outcome.SENT, Outcome.FAILED, Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert results[batch[1].key].code == "fail_list"
    assert results[batch[0].key].vendor_id == next(iter(fake.tasks))


def test_attachments_are_sent_with_the_text(fake):
    content = {
        "text": "周末特惠",
        "link_title": "活动详情",
        "link_url": "https://example.com/sale",
        "link_desc": "满100减20",
        "image_media_id": "MEDIA_1",
        "miniprogram_title": "去下单",
        "miniprogram_appid": "wx8bd80126147dfAAA",
        "miniprogram_page": "pages/index",
        "miniprogram_pic_media_id": "MEDIA_2",
    }

    results = transport().send([Outgoing("k", "wm1", content, sender="zhangsan")])

    assert results[0].outcome == Outcome.SENT
    body = fake.calls(ADD)[0].json()
    assert body["attachments"] == [
        {"msgtype": "image", "image": {"media_id": "MEDIA_1"}},
        {
            "msgtype": "link",
            "link": {"title": "活动详情", "url": "https://example.com/sale", "desc": "满100减20"},
        },
        {
            "msgtype": "miniprogram",
            "miniprogram": {
                "title": "去下单",
                "appid": "wx8bd80126147dfAAA",
                "page": "pages/index",
                "pic_media_id": "MEDIA_2",
            },
        },
    ]


# --- tokens ------------------------------------------------------------------------------------


def test_the_token_is_fetched_once_for_many_calls(fake):
    wecom = transport()
    for sender in ("a", "b", "c", "d"):
        wecom.send(outgoing(2, sender))

    # one token per secret, however many calls: the contact secret's for the mass sends, the
    # app's for the reminders each sender gets to confirm its task
    assert token_fetches(fake, fake_wecom.CONTACT_SECRET) == 1
    assert token_fetches(fake, fake_wecom.APP_SECRET) == 1
    assert len(fake.calls(ADD)) == 4
    reminders = fake.calls("/cgi-bin/message/send")
    assert sorted(r.json()["touser"] for r in reminders) == ["a", "b", "c", "d"]
    assert "待确认" in reminders[0].json()["text"]["content"]
    token = fake.calls("/cgi-bin/gettoken")[0].query
    assert token == {"corpid": fake_wecom.CORP_ID, "corpsecret": fake_wecom.CONTACT_SECRET}


def token_fetches(fake, secret: str) -> int:
    return sum(1 for r in fake.calls("/cgi-bin/gettoken") if r.query["corpsecret"] == secret)


def test_an_expired_token_is_refetched_once_and_the_call_succeeds(fake):
    wecom = transport()
    wecom.send(outgoing(1, "a"))
    fake.expire_tokens()

    results = wecom.send(outgoing(2, "b"))

    assert {r.outcome for r in results} == {Outcome.SENT}
    assert token_fetches(fake, fake_wecom.CONTACT_SECRET) == 2
    assert len(fake.calls(ADD)) == 3  # a, then b answered 42001, then b again
    assert len(fake.tasks) == 2


def test_a_token_refused_twice_is_retryable(fake):
    fake.invalid_token_next = 2

    results = transport().send(outgoing(2))

    assert {(r.outcome, r.code) for r in results} == {(Outcome.RETRY, "40014")}
    assert fake.gettoken_calls == 2 and fake.tasks == {}


def test_a_wrong_secret_is_permanent(fake):
    results = transport(secrets={"contact_secret": "wrong"}).send(outgoing(1))

    assert (results[0].outcome, results[0].code) == (Outcome.FAILED, "40001")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers itself")
def test_concurrent_senders_share_one_token_through_the_database(fake, cast):
    channel = ChannelConfig.objects.create(workspace=cast.workspace, kind="wecom", name="企微")
    forget_cached()
    errors, barrier = [], threading.Barrier(6)

    def send(sender: str) -> None:
        try:
            wecom = WecomTransport(SETTINGS, SECRETS, tokens=DbTokenStore(channel))
            barrier.wait()
            assert wecom.send(outgoing(1, sender))[0].outcome == Outcome.SENT
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(f"s{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    forget_cached()

    assert errors == []
    # one token per secret for all six senders (the app's is for the confirmation reminders)
    assert token_fetches(fake, fake_wecom.CONTACT_SECRET) == 1 and len(fake.tasks) == 6
    assert token_fetches(fake, fake_wecom.APP_SECRET) == 1


# --- errors ------------------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_after_a_minute(fake):
    fake.rate_limit_next = 1

    results = transport().send(outgoing(3))

    assert {(r.outcome, r.code, r.retry_after) for r in results} == {(Outcome.RETRY, "45009", 60)}
    assert fake.tasks == {}


def test_an_error_answers_for_its_own_group_only(fake):
    """The task of the first group exists: its messages must stay SENT."""
    batch = outgoing(2, "a", "短消息") + outgoing(2, "b", "长" * 1400)  # 4,200 bytes: 45002

    results = transport().send(batch)

    assert [(r.outcome, r.code) for r in results] == [(Outcome.SENT, "")] * 2 + [
        (Outcome.FAILED, "45002")
    ] * 2
    assert len(fake.tasks) == 1


def test_lost_answer_is_resolved_by_looking_for_the_task(fake):
    """WeCom created the task but its answer timed out: the task is found, not created twice."""
    fake.delay, fake.delay_paths = 1.0, {ADD}
    batch = outgoing(3)
    fake.not_customers = {batch[2].address}
    wecom = transport(http=httpx.Client(timeout=0.3))

    results = by_key(wecom.send(batch))

    (msgid,) = fake.tasks
    assert [results[m.key].outcome for m in batch] == [Outcome.SENT, Outcome.SENT, Outcome.FAILED]
    assert results[batch[0].key].vendor_id == msgid
    assert len(fake.calls(LIST)) == 1


def test_an_unreachable_wecom_is_retryable(settings):
    settings.SIYU_WECOM_URL = "http://127.0.0.1:9"  # discard port: nothing listens

    results = transport().send(outgoing(1))

    assert (results[0].outcome, results[0].code) == (Outcome.RETRY, "network")


# --- tracking ----------------------------------------------------------------------------------


def test_track_before_confirmation_has_nothing_final(fake):
    wecom = transport()
    msgid = wecom.send(outgoing(4))[0].vendor_id

    assert wecom.track(msgid) == []
    assert wecom.task_confirmed(msgid) is False
    assert wecom.staff_states(msgid) == {"zhangsan": False}


def test_track_after_confirmation_reads_every_page(fake):
    wecom = transport()
    batch = outgoing(8)
    msgid = wecom.send(batch)[0].vendor_id
    not_friend, capped = batch[2].address, batch[5].address

    fake.confirm(msgid, failed={not_friend: 2, capped: 3})
    receipts = {r.address: r for r in wecom.track(msgid)}

    assert wecom.task_confirmed(msgid) is True
    assert set(receipts) == {m.address for m in batch}
    assert all(r.vendor_id == msgid for r in receipts.values())
    assert (receipts[not_friend].delivered, receipts[not_friend].code) == (False, "not_friend")
    assert (receipts[capped].delivered, receipts[capped].code) == (False, "receive_limit")
    delivered = [r for r in receipts.values() if r.delivered]
    assert len(delivered) == 6 and all(r.at is not None for r in delivered)
    assert len(fake.calls(RESULTS)) == 3  # 8 customers, 3 a page


def test_track_skips_customers_not_yet_sent(fake):
    wecom = transport()
    batch = outgoing(3)
    msgid = wecom.send(batch)[0].vendor_id

    fake.confirm(msgid, delivered={batch[0].address})

    assert [(r.address, r.delivered) for r in wecom.track(msgid)] == [(batch[0].address, True)]


# --- lookup after a crash ----------------------------------------------------------------------


def test_lookup_finds_the_task_an_earlier_send_created(fake):
    since = timezone.now()
    wecom = transport()
    for i in range(4):  # other tasks, so that the list has several pages
        wecom.send(outgoing(1, "zhangsan", f"其他消息 {i}", prefix=f"o{i}"))
    batch = outgoing(5)
    fake.not_customers = {batch[4].address}
    msgid = next(r.vendor_id for r in wecom.send(batch) if r.vendor_id)

    after_crash = transport()
    found = after_crash.lookup(batch[3], since)
    refused = after_crash.lookup(batch[4], since)

    assert (found.outcome, found.vendor_id, found.key) == (Outcome.SENT, msgid, batch[3].key)
    assert (refused.outcome, refused.code) == (Outcome.RETRY, "not_sent")
    assert len(fake.calls(LIST)) == 4  # 5 tasks, 3 a page: two pages a lookup


def test_lookup_answers_not_sent_when_no_task_exists(fake):
    since = timezone.now() - datetime.timedelta(minutes=1)
    wecom = transport()
    wecom.send(outgoing(1, "lisi"))  # another sender's task with the same text
    wecom.send(outgoing(1, "zhangsan", "另一条消息"))

    result = wecom.lookup(outgoing(1)[0], since)

    assert (result.outcome, result.code) == (Outcome.RETRY, "not_sent")


def test_lookup_over_more_than_a_month_asks_month_by_month(fake):
    result = transport().lookup(outgoing(1)[0], timezone.now() - datetime.timedelta(days=45))

    assert result.outcome == Outcome.RETRY
    spans = [(c.json()["start_time"], c.json()["end_time"]) for c in fake.calls(LIST)]
    assert len(spans) == 2 and all(end - start <= 30 * 86400 for start, end in spans)


def test_lookup_cannot_tell_without_permission(fake):
    app_only = transport(secrets={"contact_secret": "", "app_secret": fake_wecom.APP_SECRET})

    assert app_only.lookup(outgoing(1)[0], timezone.now()) is None  # 48002 for the app's token


# --- content and staff reminders ---------------------------------------------------------------


def test_check_content_refuses_more_than_4000_bytes_naming_the_field():
    wecom = WecomTransport(SETTINGS, SECRETS)
    wecom.check_content({"text": "好" * 1333})  # 3,999 bytes

    with pytest.raises(ValidationError) as exc:
        wecom.check_content({"text": "好" * 1334})
    assert exc.value.field == "text"

    with pytest.raises(ValidationError) as exc:
        wecom.check_content({"text": "hi", "link_url": "https://example.com"})
    assert exc.value.field == "link_title"

    with pytest.raises(ValidationError) as exc:
        wecom.check_content({"text": "hi", "miniprogram_appid": "wx1"})
    assert exc.value.field == "miniprogram_title"


def test_notify_staff_sends_an_app_message_with_the_agentid(fake):
    wecom = transport()

    msgid = wecom.notify_staff("zhangsan", "请在企业微信中确认群发任务")

    (message,) = fake.app_messages
    assert message["msgid"] == msgid
    assert message["agentid"] == fake_wecom.AGENT_ID
    assert (message["touser"], message["msgtype"]) == ("zhangsan", "text")
    assert message["text"] == {"content": "请在企业微信中确认群发任务"}
    token = fake.calls("/cgi-bin/gettoken")[0].query
    assert token["corpsecret"] == fake_wecom.APP_SECRET


def test_notify_staff_refuses_an_unreachable_staff_member(fake):
    fake.staff = {"lisi"}

    with pytest.raises(VendorError) as exc:
        transport().notify_staff("zhangsan", "请确认")
    assert (exc.value.code, exc.value.retryable) == ("81013", False)


def test_declared_fields():
    settings = {f.name: f for f in WecomTransport.settings_fields}
    names = {"corp_id", "agent_id", "default_sender", "mass_send_cap", "mass_send_cap_days"}
    assert set(settings) == names
    assert (settings["mass_send_cap"].default, settings["mass_send_cap_days"].default) == (1, 1)
    assert [f.name for f in WecomTransport.secret_fields] == ["contact_secret", "app_secret"]
    text = WecomTransport.template_fields[0]
    assert (text.name, text.template, text.required) == ("text", True, True)
    assert WecomTransport.max_batch == 10_000
    assert (WecomTransport.kind, WecomTransport.consent_channel) == ("wecom", "wecom")
    assert WecomTransport.address_identity == "wecom_external_userid"
