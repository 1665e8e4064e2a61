"""Messaging pages in the console (触达): channels (forms generated from the kind's fields,
secrets never echoed, callback URLs, a test send against a fake Aliyun SMS), message
templates (errors beside their field, the live preview partial, SMS length), reach rules,
the message log with its filters, the contact's messages card; per role, and a denied
request changes nothing."""

import datetime
from pathlib import Path

import pytest
from django.utils import timezone

from siyu.core.audit import Actor
from siyu.core.models import AuditLog
from siyu.messaging import actions
from siyu.messaging.channels import TRANSPORTS, transport_class
from siyu.messaging.models import ChannelConfig, MessageTemplate, OutboxMessage, ReachPolicy
from tests.messaging.fakes.aliyun_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET, AliyunSmsFake

HTMX = {"HTTP_HX_REQUEST": "true"}
SYSTEM = Actor.system("test")
SECRET = "s3cr3t-never-shown-again"  # noqa: S105 - a test value
SMS_TEXT = "亲爱的${name}，您的积分${points}即将到期，回TD退订"
PAGES = [
    "/w/brand/messaging/channels/",
    "/w/brand/messaging/templates/",
    "/w/brand/messaging/reach-rules/",
    "/w/brand/messaging/outbox/",
]


@pytest.fixture
def fake_sms(settings):
    with AliyunSmsFake() as vendor:
        settings.SIYU_ALIYUN_SMS_URL = vendor.url
        yield vendor


def make_channel(cast, name="阿里云短信", **extra) -> ChannelConfig:
    values = {
        "kind": "sms_aliyun",
        "settings": {"sign_name": "星巴克"},
        "secrets": {"access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET},
    }
    return actions.channel_create(
        workspace=cast.workspace, actor=SYSTEM, name=name, **{**values, **extra}
    )


def make_template(cast, name="积分到期", kind="sms_aliyun", content=None) -> MessageTemplate:
    content = content or {
        "template_code": "SMS_71390007",
        "text": SMS_TEXT,
        "params": {"name": "{{ contact.name }}", "points": "1200"},
    }
    return actions.template_create(
        workspace=cast.workspace, actor=SYSTEM, kind=kind, name=name, content=content
    )


def make_message(cast, contact, channel, status="sent", reason="", source="broadcast:1", **kw):
    now = timezone.now()
    return OutboxMessage.objects.create(
        workspace=cast.workspace,
        key=f"{source}:{contact.pk}:{channel.kind}:{OutboxMessage.objects.count()}",
        contact=contact,
        channel=channel,
        source=source,
        status=status,
        reason=reason,
        address_masked="138****8000",
        created_at=kw.pop("created_at", now),
        **kw,
    )


def messaging_rows() -> dict:
    """Every messaging row and the audit log: a denied request must leave them as they were."""
    models = (ChannelConfig, MessageTemplate, ReachPolicy, OutboxMessage, AuditLog)
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in models}


# --- navigation and empty states -----------------------------------------------------------


def test_navigation_shows_messaging_to_those_who_may_see_it(cast, console):
    html = console("analyst").get("/w/brand/").content.decode()
    for url, label in zip(PAGES, ["渠道", "消息模板", "触达规则", "发送记录"], strict=True):
        assert f'href="{url}"' in html and f">{label}<" in html
    agent = console("agent").get("/w/brand/").content.decode()
    assert "/w/brand/messaging/" not in agent


@pytest.mark.parametrize("url", PAGES)
def test_each_page_renders_in_chinese_with_its_empty_state(cast, console, url):
    page = console("owner").get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert page["Content-Language"] == "zh-hans"
    empty = {
        "channels": ["还没有渠道", "渠道是一种已配置好的触达客户的方式", "添加渠道"],
        "templates": ["还没有消息模板", "新建模板"],
        "reach-rules": ["频次上限", "全部渠道", "短信", "邮件", "企业微信", "微信", "每天", "每周"],
        "outbox": ["还没有消息", "全部状态"],
    }[url.split("/")[-2]]
    for text in empty:
        assert text in html, text
    assert "Asia/Shanghai" in html or url != PAGES[2]  # quiet hours name the time zone


def test_analysts_see_no_buttons_to_change(cast, console):
    client = console("analyst")
    channels = client.get(PAGES[0]).content.decode()
    assert "还没有渠道" in channels and "/messaging/channels/new/" not in channels
    templates = client.get(PAGES[1]).content.decode()
    assert "/messaging/templates/new/" not in templates
    rules = client.get(PAGES[2]).content.decode()
    assert "保存规则" not in rules and "disabled" in rules


def test_kind_pickers_list_every_kind(cast, console):
    html = console("owner").get("/w/brand/messaging/channels/new/").content.decode()
    for kind in TRANSPORTS:
        assert f"?kind={kind}" in html
    assert "阿里云短信" in html and "公众号模板消息" in html
    html = console("operator").get("/w/brand/messaging/templates/new/").content.decode()
    assert "/messaging/templates/new/?kind=wecom" in html


def test_every_channel_field_label_and_help_is_translated():
    """The transports' FieldSpec texts are English; the console shows them through the
    "channel field" context of messaging_console.po, so a new field needs its line there."""
    import polib
    from django.conf import settings

    po = Path(settings.LOCALE_PATHS[0]) / "zh_Hans" / "LC_MESSAGES" / "messaging_console.po"
    translated = {e.msgid for e in polib.pofile(str(po)) if e.msgctxt == "channel field"}
    for kind in TRANSPORTS:
        cls = transport_class(kind)
        for spec in cls.settings_fields + cls.secret_fields + cls.template_fields:
            for text in filter(None, (spec.label, spec.help)):
                assert text in translated, (kind, spec.name, text)


# --- channels ------------------------------------------------------------------------------


def test_add_a_channel_from_the_kinds_fields(cast, console):
    client = console("owner")
    form = client.get("/w/brand/messaging/channels/new/", {"kind": "sms_aliyun"})
    html = form.content.decode()
    assert form.status_code == 200 and "添加渠道：阿里云短信" in html
    assert 'name="settings.sign_name"' in html and "短信签名" in html
    assert 'type="password" id="f-secrets-access_key_secret"' in html
    assert 'name="rate_per_second"' in html and 'value="50.0"' in html  # the vendor's rate
    assert 'name="consent_required" value="1" checked' in html  # SMS: opt-in by default

    answer = client.post(
        "/w/brand/messaging/channels/new/",
        {
            "kind": "sms_aliyun",
            "name": "阿里云短信",
            "settings.sign_name": "星巴克",
            "secrets.access_key_id": ACCESS_KEY_ID,
            "secrets.access_key_secret": SECRET,
            "rate_per_second": "20",
            "consent_required": "1",
            "enabled": "1",
        },
    )
    channel = ChannelConfig.objects.get()
    assert answer.status_code == 302 and answer["Location"].endswith(f"/channels/{channel.pk}/")
    assert channel.secrets() == {"access_key_id": ACCESS_KEY_ID, "access_key_secret": SECRET}
    assert (channel.settings, channel.rate_per_second) == ({"sign_name": "星巴克"}, 20.0)
    assert channel.consent_required and channel.enabled

    page = client.get(answer["Location"]).content.decode()
    assert SECRET not in page and ACCESS_KEY_ID not in page  # never echoed
    assert "已设置，留空则不修改" in page
    assert f"/hooks/channels/{channel.pk}/" in page and "receipts" in page and "replies" in page
    assert 'data-copy="receipt-url"' in page and "发送测试" in page
    listing = client.get(PAGES[0]).content.decode()
    assert "阿里云短信" in listing and "需客户授权" in listing and "20 条/秒" in listing
    assert "AccessKey Secret · 已设置" in listing and SECRET not in listing


def test_an_error_shows_beside_its_field_and_nothing_is_saved(cast, console):
    answer = console("admin").post(
        "/w/brand/messaging/channels/new/",
        {
            "kind": "sms_aliyun",
            "name": "阿里云短信",
            "settings.sign_name": "星巴克",
            "secrets.access_key_id": SECRET,
            "enabled": "1",
        },
    )
    assert answer.status_code == 422
    html = answer.content.decode()
    assert not ChannelConfig.objects.exists()
    slot = html.split('data-field="secrets.access_key_secret"')[1].split('class="field-error"')[1]
    assert slot.split("</div>")[0].endswith(">必填")
    assert SECRET not in html  # a typed secret is not sent back either
    assert 'value="阿里云短信"' in html and 'value="星巴克"' in html  # the rest is kept


def test_a_webhook_channel_needs_its_url_and_signing_secret(cast, console):
    client = console("owner")
    html = client.get("/w/brand/messaging/channels/new/", {"kind": "webhook"}).content.decode()
    assert 'name="settings.url"' in html and 'name="secrets.signing_secret"' in html
    assert 'name="consent_required"' not in html  # a webhook has no consent channel
    answer = client.post(
        "/w/brand/messaging/channels/new/",
        {
            "kind": "webhook",
            "name": "CRM 回调",
            "settings.url": "https://crm.example.test/hooks",
            "settings.timeout_seconds": "5",
            "secrets.signing_secret": SECRET,
            "rate_per_second": "",
            "enabled": "1",
        },
    )
    assert answer.status_code == 302
    channel = ChannelConfig.objects.get()
    assert channel.settings == {"url": "https://crm.example.test/hooks", "timeout_seconds": 5}
    assert channel.rate_per_second == 10.0 and channel.consent_required is False


def test_editing_keeps_secrets_left_empty_and_changes_typed_ones(cast, console):
    channel = make_channel(cast)
    client = console("owner")
    form = {
        "name": "阿里云短信（营销）",
        "settings.sign_name": "星巴克中国",
        "secrets.access_key_id": "",
        "secrets.access_key_secret": "",
        "rate_per_second": "5",
        "consent_required": "1",
    }  # enabled unticked: the channel stops
    url = f"/w/brand/messaging/channels/{channel.pk}/save/"
    assert client.post(url, form).status_code == 302
    channel.refresh_from_db()
    assert channel.name == "阿里云短信（营销）" and channel.settings["sign_name"] == "星巴克中国"
    assert channel.secrets()["access_key_secret"] == ACCESS_KEY_SECRET
    assert channel.rate_per_second == 5 and not channel.enabled
    client.post(url, {**form, "secrets.access_key_secret": SECRET, "enabled": "1"})
    channel.refresh_from_db()
    assert channel.secrets()["access_key_secret"] == SECRET and channel.enabled
    bad = client.post(url, {**form, "rate_per_second": "0"})
    assert bad.status_code == 422 and "应为 0.01 到 10000 之间的数字" in bad.content.decode()
    assert SECRET not in bad.content.decode()
    channel.refresh_from_db()
    assert channel.rate_per_second == 5  # nothing saved


def test_an_optional_secret_can_be_cleared(cast, console):
    channel = actions.channel_create(
        workspace=cast.workspace,
        actor=SYSTEM,
        kind="email",
        name="邮件",
        settings={"host": "smtp.example.test", "port": 465, "from_email": "news@brand.cn"},
        secrets={"password": SECRET},
    )
    client = console("owner")
    html = client.get(f"/w/brand/messaging/channels/{channel.pk}/").content.decode()
    assert 'name="secrets_clear.password"' in html and SECRET not in html
    assert 'name="settings.use_ssl" value="1" checked' in html  # the default, shown ticked
    form = {
        "name": "邮件",
        "settings.host": "smtp.example.test",
        "settings.port": "587",
        "settings.use_tls": "1",
        "settings.from_email": "news@brand.cn",
        "rate_per_second": "10",
        "enabled": "1",
        "secrets_clear.password": "1",
    }
    assert client.post(f"/w/brand/messaging/channels/{channel.pk}/save/", form).status_code == 302
    channel.refresh_from_db()
    assert channel.secrets() == {}
    assert channel.settings["use_ssl"] is False and channel.settings["use_tls"] is True
    assert channel.settings["port"] == 587


def test_send_a_test_through_a_fake_aliyun(cast, console, fake_sms):
    channel = make_channel(cast)
    template = make_template(cast)
    client = console("owner")
    url = f"/w/brand/messaging/channels/{channel.pk}/test/"
    body = {"address": "+8613800138000", "template_id": template.pk}
    sent = client.post(url, body, HTTP_HX_TARGET="channel-test", **HTMX)
    html = sent.content.decode()
    assert sent.status_code == 200 and "<html" not in html
    assert 'data-outcome="sent"' in html and "已发送：渠道已接收" in html
    [sms] = fake_sms.sent
    assert sms.phone == "13800138000" and sms.sign_name == "星巴克"
    assert sms.params == {"name": "王小明", "points": "1200"}  # rendered for the sample contact
    assert AuditLog.objects.filter(action="channel.test").count() == 1

    fake_sms.fail_numbers.add("13900000000")
    failed = client.post(url, {**body, "address": "13900000000"}, HTTP_HX_TARGET="channel-test")
    html = failed.content.decode()
    assert 'data-outcome="failed"' in html and "发送失败" in html
    assert "isv.MOBILE_NUMBER_ILLEGAL" in html and "非法手机号" in html
    assert OutboxMessage.objects.count() == 0  # a test is not a customer message


def test_a_test_send_names_what_is_missing(cast, console, fake_sms):
    channel, sms = make_channel(cast), make_template(cast)
    wecom = make_template(cast, "企微", kind="wecom", content={"text": "你好"})
    client = console("admin")
    url = f"/w/brand/messaging/channels/{channel.pk}/test/"
    no_address = client.post(url, {"address": " ", "template_id": sms.pk}, **HTMX)
    html = no_address.content.decode()
    assert no_address.status_code == 422
    assert html.split('id="test-address"')[1].split("</div>")[0].endswith(">必填")
    options = html.split('id="test-template"')[1].split("</select>")[0]
    assert "积分到期" in options and "企微" not in options  # only templates of this kind
    other_kind = client.post(url, {"address": "13800138000", "template_id": wecom.pk})
    assert other_kind.status_code == 422  # the whole page, with the error beside the picker
    assert "wecom 类型的模板不能通过此渠道发送" in other_kind.content.decode()
    assert fake_sms.sent == [] and not AuditLog.objects.filter(action="channel.test").exists()


# --- templates -----------------------------------------------------------------------------


def test_create_a_template_with_parameter_rows(cast, console):
    client = console("operator")
    editor = client.get("/w/brand/messaging/templates/new/", {"kind": "sms_aliyun"})
    html = editor.content.decode()
    assert editor.status_code == 200 and "新建模板：阿里云短信" in html
    assert 'name="content.template_code"' in html and 'data-rows="content.params"' in html
    assert 'hx-post="/w/brand/messaging/templates/preview/"' in html
    answer = client.post(
        "/w/brand/messaging/templates/new/",
        {
            "kind": "sms_aliyun",
            "name": "积分到期",
            "content.template_code": "SMS_71390007",
            "content.text": SMS_TEXT,
            "content.params.key": ["name", "points", ""],
            "content.params.value": ["{{ contact.name }}", "1200", ""],
        },
    )
    template = MessageTemplate.objects.get()
    assert answer.status_code == 302 and answer["Location"].endswith(f"/{template.pk}/")
    assert template.content["params"] == {"name": "{{ contact.name }}", "points": "1200"}
    listing = client.get(PAGES[1]).content.decode()
    assert "积分到期" in listing and "阿里云短信" in listing


def test_a_syntax_error_shows_beside_its_field_and_nothing_is_saved(cast, console):
    client = console("owner")
    answer = client.post(
        "/w/brand/messaging/templates/new/",
        {
            "kind": "email",
            "name": "欢迎邮件",
            "content.subject": "欢迎",
            "content.text": "你好 {{ contact.name",
        },
    )
    assert answer.status_code == 422 and not MessageTemplate.objects.exists()
    html = answer.content.decode()
    slot = html.split('id="err-f-content-text"')[1].split("</div>")[0]
    assert "第 1 行" in slot
    assert "你好 {{ contact.name</textarea>" in html  # what was typed stays

    template = make_template(cast, "欢迎邮件", kind="email", content={"subject": "欢迎"})
    update = client.post(
        f"/w/brand/messaging/templates/{template.pk}/save/",
        {"name": "欢迎邮件", "content.subject": "{{ phone }}"},
    )
    assert update.status_code == 422
    slot = update.content.decode().split('id="err-f-content-subject"')[1].split("</div>")[0]
    assert "未知变量 phone" in slot
    template.refresh_from_db()
    assert template.content == {"subject": "欢迎"}


def test_an_unknown_variable_is_refused_beside_the_field(cast, console):
    answer = console("owner").post(
        "/w/brand/messaging/templates/new/",
        {"kind": "wecom", "name": "企微", "content.text": "{{ coupon_code }}"},
    )
    slot = answer.content.decode().split('id="err-f-content-text"')[1].split("</div>")[0]
    assert "未知变量 coupon_code" in slot and not MessageTemplate.objects.exists()


def test_the_live_preview_renders_for_a_sample_or_chosen_contact(cast, console, make_contact):
    client = console("analyst")  # viewers may preview
    url = "/w/brand/messaging/templates/preview/"
    body = {"kind": "email", "content.subject": "{{ contact.name }}，您好", "content.text": "x"}
    sample = client.post(url, body, **HTMX)
    html = sample.content.decode()
    assert sample.status_code == 200 and "<html" not in html
    assert "王小明，您好" in html and "示例客户（王小明，上海）将收到" in html
    assert 'id="err-f-content-subject" role="alert" hx-swap-oob="true"></div>' in html

    chosen = make_contact("李娜")
    html = client.post(url, {**body, "contact_id": chosen.pk}, **HTMX).content.decode()
    assert "李娜，您好" in html and "李娜 将收到" in html

    other = make_contact("外人", workspace=cast.outsider_workspace)
    hidden = client.post(url, {**body, "contact_id": other.pk}, **HTMX)
    assert hidden.status_code == 422 and "该客户不在此工作区" in hidden.content.decode()

    broken = client.post(url, {**body, "content.subject": "{% if %}"}, **HTMX)
    html = broken.content.decode()
    assert broken.status_code == 422
    slot = html.split('id="err-f-content-subject" role="alert" hx-swap-oob="true">')[1]
    assert slot.startswith("第 1 行")
    assert not MessageTemplate.objects.exists()


def test_the_preview_counts_sms_characters_and_segments(cast, console):
    make_channel(cast)  # its sign name 星巴克 counts in the length
    client = console("owner")
    body = {
        "kind": "sms_aliyun",
        "content.template_code": "SMS_1",
        "content.text": SMS_TEXT,
        "content.params.key": ["name", "points"],
        "content.params.value": ["{{ contact.name }}", "1200"],
    }
    html = client.post("/w/brand/messaging/templates/preview/", body, **HTMX).content.decode()
    full = "【星巴克】亲爱的王小明，您的积分1200即将到期，回TD退订"
    assert full in html
    assert f'data-sms-characters="{len(full)}" data-sms-segments="1"' in html
    assert "按 1 条短信计费" in html and "已计入签名【星巴克】" in html
    long = {**body, "content.text": "长" * 80}
    html = client.post("/w/brand/messaging/templates/preview/", long, **HTMX).content.decode()
    assert 'data-sms-segments="2"' in html and "单条短信 70 字" in html
    missing = {**body, "content.params.key": ["name"], "content.params.value": ["x"]}
    answer = client.post("/w/brand/messaging/templates/preview/", missing, **HTMX)
    slot = answer.content.decode().split('id="err-f-content-params"')[1]
    assert answer.status_code == 422 and "${points}" in slot.split("</div>")[0]


def test_the_contact_picker_searches_by_name(cast, console, make_contact):
    wang = make_contact("王芳", phone="13800138001")
    make_contact("李雷")
    client = console("owner")
    answer = client.get("/w/brand/messaging/templates/contacts/", {"contact_q": "王"}, **HTMX)
    html = answer.content.decode()
    assert f'<option value="{wang.pk}" selected>王芳' in html and "李雷" not in html
    assert answer["HX-Trigger-After-Swap"] == "preview"
    by_phone = client.get("/w/brand/messaging/templates/contacts/", {"contact_q": "13800138001"})
    assert f'value="{wang.pk}"' in by_phone.content.decode()


def test_archive_and_restore_a_template(cast, console):
    template = make_template(cast)
    client = console("operator")
    url = f"/w/brand/messaging/templates/{template.pk}/archive/"
    assert client.post(url, {"archived": "1"}).status_code == 302
    template.refresh_from_db()
    assert template.archived
    row = f'data-template="{template.pk}"'
    assert row not in client.get(PAGES[1]).content.decode()
    assert row in client.get(PAGES[1], {"tab": "archived"}).content.decode()
    client.post(url, {"archived": "0"})
    template.refresh_from_db()
    assert not template.archived


# --- reach rules ---------------------------------------------------------------------------


def test_save_caps_and_quiet_hours(cast, console):
    client = console("operator")
    answer = client.post(
        "/w/brand/messaging/reach-rules/save/",
        {
            "caps.all.week": "6",
            "caps.sms.day": "1",
            "caps.sms.week": "3",
            "caps.email.day": "",
            "quiet_start": "21:00",
            "quiet_end": "09:00",
        },
    )
    assert answer.status_code == 302
    policy = ReachPolicy.objects.get()
    assert policy.caps == {"all": {"week": 6}, "sms": {"day": 1, "week": 3}}
    assert (policy.quiet_start, policy.quiet_end) == (datetime.time(21), datetime.time(9))
    html = client.get(PAGES[2]).content.decode()
    assert 'name="caps.sms.week" value="3"' in html and 'value="21:00"' in html
    assert "触达规则已保存" in html


def test_reach_rule_errors_show_beside_the_cell_and_keep_hidden_caps(cast, console):
    actions.policy_update(workspace=cast.workspace, actor=SYSTEM, caps={"webhook": {"day": 9}})
    client = console("owner")
    bad = client.post("/w/brand/messaging/reach-rules/save/", {"caps.sms.day": "1001"})
    assert bad.status_code == 422
    cell = bad.content.decode().split('name="caps.sms.day"')[1].split("</td>")[0]
    assert "应为 0 到 1000 之间的整数" in cell
    half = client.post("/w/brand/messaging/reach-rules/save/", {"quiet_start": "21:00"})
    slot = half.content.decode().split('id="quiet-end"')[1].split("</div>")[0]
    assert half.status_code == 422 and "请同时填写免打扰时段的开始和结束时间" in slot
    assert ReachPolicy.objects.get().caps == {"webhook": {"day": 9}}
    client.post("/w/brand/messaging/reach-rules/save/", {"caps.all.day": "2"})
    assert ReachPolicy.objects.get().caps == {"webhook": {"day": 9}, "all": {"day": 2}}


# --- the message log -----------------------------------------------------------------------


def test_the_message_log_filters_and_labels(cast, console, make_contact):
    sms = make_channel(cast)
    mail = make_channel(
        cast,
        name="邮件",
        kind="email",
        settings={"host": "smtp.example.test", "port": 465, "from_email": "news@brand.cn"},
        secrets={},
    )
    wang, li = make_contact("王芳"), make_contact("李娜")
    make_message(cast, wang, sms, status="sent")
    make_message(cast, li, sms, status="suppressed", reason="no_consent")
    make_message(cast, li, sms, status="suppressed", reason="frequency_cap:sms/day")
    make_message(cast, wang, mail, status="failed", reason="vendor:550", source="journey:3:a")
    make_message(cast, wang, mail, status="failed", reason="outcome_unknown", source="journey:3:a")
    client = console("analyst")
    html = client.get(PAGES[3]).content.decode()
    assert html.count("data-message=") == 5
    assert "未授权" in html and "超出频次上限（短信，每天）" in html
    assert "渠道返回错误 550" in html and "发送结果未知" in html
    assert "已拦截" in html and "138****8000" in html
    assert f'href="/w/brand/contacts/{li.pk}/"' in html
    first = html.index("data-message=")
    assert f'data-message="{OutboxMessage.objects.order_by("-pk")[0].pk}"' in html[first:][:40]

    def shown(**params):
        return client.get(PAGES[3], params).content.decode().count("data-message=")

    assert shown(status="suppressed") == 2
    assert shown(channel=mail.pk) == 2
    assert shown(source="journey:3:a", status="failed") == 2
    assert shown(source="broadcast:9") == 0
    assert "没有符合条件的消息" in client.get(PAGES[3], {"source": "x"}).content.decode()


def test_the_message_log_pages_by_cursor(cast, console, make_contact, monkeypatch):
    from siyu.console.views import messaging_outbox

    monkeypatch.setattr(messaging_outbox, "PAGE_SIZE", 2)
    channel, contact = make_channel(cast), make_contact("王芳")
    made = [make_message(cast, contact, channel, source=f"broadcast:{i}") for i in range(5)]
    client = console("owner")
    first = client.get(PAGES[3], {"channel": channel.pk})
    cursor = first.context["next_cursor"]
    assert [r["message"].pk for r in first.context["rows"]] == [made[4].pk, made[3].pk]
    second = client.get(PAGES[3], {"channel": channel.pk, "cursor": cursor})
    assert [r["message"].pk for r in second.context["rows"]] == [made[2].pk, made[1].pk]
    assert "第一页" in second.content.decode() and "下一页" in second.content.decode()
    stale = client.get(PAGES[3], {"cursor": "not-a-cursor"})
    assert stale.status_code == 200 and "翻页链接已失效" in stale.content.decode()


def test_the_contacts_messages_card(cast, console, make_contact):
    channel, wang, li = make_channel(cast), make_contact("王芳"), make_contact("李娜")
    make_message(cast, wang, channel, status="delivered")
    make_message(cast, li, channel, status="bounced", reason="receipt:MK:0001")
    card = console("owner").get(f"/w/brand/contacts/{wang.pk}/messages/", **HTMX)
    html = card.content.decode()
    assert card.status_code == 200 and 'id="contact-messages"' in html
    assert html.count("data-message=") == 1 and "已送达" in html
    assert console("agent").get(f"/w/brand/contacts/{wang.pk}/messages/").status_code == 403
    assert console("outsider").get(f"/w/brand/contacts/{wang.pk}/messages/").status_code == 404
    # the contact page loads the card for those who may see messages, not for agents
    detail = console("operator").get(f"/w/brand/contacts/{wang.pk}/").content.decode()
    assert 'id="contact-messages"' in detail and f"/contacts/{wang.pk}/messages/" in detail
    wang.owner = cast.agent.staff
    wang.save(update_fields=["owner"])
    own = console("agent").get(f"/w/brand/contacts/{wang.pk}/").content.decode()
    assert 'id="contact-orders"' in own and 'id="contact-messages"' not in own


# --- roles ---------------------------------------------------------------------------------


@pytest.fixture
def configured(cast):
    channel, template = make_channel(cast), make_template(cast)
    return {"channel": channel, "template": template}


def test_an_analyst_can_view_but_not_change(cast, console, configured, fake_sms):
    channel, template = configured["channel"], configured["template"]
    client = console("analyst")
    for url in [
        *PAGES,
        f"/w/brand/messaging/channels/{channel.pk}/",
        f"/w/brand/messaging/templates/{template.pk}/",
    ]:
        assert client.get(url).status_code == 200, url
    page = client.get(f"/w/brand/messaging/channels/{channel.pk}/").content.decode()
    assert '<fieldset class="plain" disabled>' in page and "发送测试" not in page
    before = messaging_rows()
    denied = {
        "/w/brand/messaging/channels/new/": {"kind": "sms_aliyun", "name": "x"},
        f"/w/brand/messaging/channels/{channel.pk}/save/": {"name": "x", "rate_per_second": "1"},
        f"/w/brand/messaging/channels/{channel.pk}/test/": {
            "address": "13800138000",
            "template_id": template.pk,
        },
        "/w/brand/messaging/templates/new/": {"kind": "wecom", "name": "x", "content.text": "x"},
        f"/w/brand/messaging/templates/{template.pk}/save/": {"name": "x"},
        f"/w/brand/messaging/templates/{template.pk}/archive/": {"archived": "1"},
        "/w/brand/messaging/reach-rules/save/": {"caps.all.day": "1"},
    }
    for url, body in denied.items():
        assert client.post(url, body).status_code == 403, url
    assert messaging_rows() == before and fake_sms.sent == []


def test_an_operator_manages_templates_and_rules_but_not_channels(cast, console, configured):
    channel = configured["channel"]
    client = console("operator")
    assert client.get("/w/brand/messaging/channels/new/").status_code == 403
    save = client.post(f"/w/brand/messaging/channels/{channel.pk}/save/", {"name": "x"})
    assert save.status_code == 403
    assert client.post("/w/brand/messaging/reach-rules/save/", {}).status_code == 302


def test_outsiders_get_404_and_change_nothing(cast, console, configured):
    channel, template = configured["channel"], configured["template"]
    client = console("outsider")
    before = messaging_rows()
    for url in [*PAGES, f"/w/brand/messaging/channels/{channel.pk}/"]:
        assert client.get(url).status_code == 404, url
    posts = [
        f"/w/brand/messaging/channels/{channel.pk}/save/",
        f"/w/brand/messaging/templates/{template.pk}/save/",
        "/w/brand/messaging/templates/preview/",
        "/w/brand/messaging/reach-rules/save/",
    ]
    for url in posts:
        assert client.post(url, {"name": "x", "kind": "email"}).status_code == 404, url
    # their own workspace does not reach ours either
    own = client.get(f"/w/other/messaging/channels/{channel.pk}/")
    assert own.status_code == 404
    assert messaging_rows() == before


def test_agents_see_no_messaging(cast, console):
    client = console("agent")
    for url in PAGES:
        assert client.get(url).status_code == 403, url
