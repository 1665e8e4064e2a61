"""Tracked short links: rendered per message, a click recorded for the message's contact and
redirected, forged codes refused, counted in a broadcast's report; previews write nothing."""

import pytest
from django.test import Client

from siyu.contacts.actions.consent import consent_set
from siyu.messaging import actions, channels, links, sender
from siyu.messaging.models import LinkClick, OutboxMessage, TrackedLink
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db
URL = "https://shop.example.cn/p/42?from=sms"


@pytest.fixture
def sent(cast, system_actor, make_contact, monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    channel = actions.channel_create(
        workspace=cast.workspace, actor=system_actor, kind="sms_aliyun", name="短信"
    )
    template = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="sms_aliyun",
        name="新品",
        content={"text": f"新品 {{{{ link('{URL}') }}}}"},
    )
    people = [make_contact(name=f"客{i}", phone=f"1380013800{i}") for i in range(2)]
    for person in people:
        consent_set(
            workspace=cast.workspace,
            actor=system_actor,
            contact=person,
            channel="sms",
            status="granted",
        )
    actions.outbox_enqueue(
        workspace=cast.workspace,
        channel=channel,
        template=template,
        source="broadcast:5:1",
        contact_ids=[p.pk for p in people],
    )
    sender.send_channel(channel.pk)
    return people


def _path(text):
    return "/l/" + text.split("/l/", 1)[1]


def test_each_message_gets_its_own_short_link(sent):
    texts = {m.contact_id: m.content["text"] for m in OutboxMessage.objects.all()}
    assert len(set(texts.values())) == 2 and TrackedLink.objects.count() == 1
    first = _path(texts[sent[0].pk])
    assert len(first) < 20  # short: SMS counts every character
    answer = Client().get(first, HTTP_USER_AGENT="MicroMessenger")
    assert answer.status_code == 302 and answer["Location"] == URL
    click = LinkClick.objects.get()
    assert click.contact_id == sent[0].pk and click.user_agent == "MicroMessenger"
    assert Client().head(first).status_code == 302 and LinkClick.objects.count() == 1


def test_forged_codes_are_refused(sent):
    code = _path(OutboxMessage.objects.first().content["text"])[3:]
    link_part, message_part, signature = code.split("-")
    for forged in (
        f"{link_part}-{message_part}-{'a' * len(signature)}",
        f"{link_part}-zz-{signature}",
        "nonsense",
        "",
    ):
        assert Client().get(f"/l/{forged}").status_code == 404
    assert not LinkClick.objects.exists()


def test_clicks_count_in_the_report(sent):
    from siyu.campaigns.reports import message_counts

    message = OutboxMessage.objects.first()
    path = _path(message.content["text"])
    Client().get(path)
    Client().get(path)  # twice: one message clicked
    assert message_counts(message.workspace_id, "broadcast:5:1")["clicked"] == 1


def test_a_preview_writes_no_link_and_bad_urls_are_template_errors(cast, system_actor):
    from siyu.messaging.templating import TemplateRenderError

    good = {"body": """{"u": "{{ link('https://a.cn') }}"}"""}
    rendered = actions.template_render(
        workspace=cast.workspace, kind="webhook", content=good, contact=None
    )
    assert "/l/" in rendered["body"] and not TrackedLink.objects.exists()
    bad = {"body": """{"u": "{{ link('javascript:alert(1)') }}"}"""}
    with pytest.raises(TemplateRenderError) as error:
        actions.template_render(workspace=cast.workspace, kind="webhook", content=bad, contact=None)
    assert "http" in error.value.message
    assert links.read_code(links.code_for(7, 9)) == (7, 9)
