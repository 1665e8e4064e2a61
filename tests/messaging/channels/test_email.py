"""E-mail through a real SMTP server (aiosmtpd on 127.0.0.1) and Django's SMTP backend."""

import asyncio
import email
import socket
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from siyu.core.errors import ValidationError
from siyu.messaging.channels import transport_class
from siyu.messaging.channels.base import Outcome, Outgoing
from siyu.messaging.channels.email.transport import EmailTransport, message_id

USERNAME, PASSWORD = "news@brand.cn", "smtp-pass-2026"  # noqa: S105
FROM = "品牌 <news@brand.cn>"
UNSUBSCRIBE = "https://siyu.brand.cn/u/tok123?c=7&s=ab"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler that keeps what it accepted, with switches to misbehave."""

    def __init__(self):
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse: dict[str, str] = {}  # recipient -> the reply to its RCPT TO
        self.data_reply: str | None = None  # answer DATA with this instead of accepting
        self.drop_at: int | None = None  # hang up on the DATA of this (0-based) message
        self.slow_at: int | None = None  # stall on the DATA of this message
        self.data_count = 0
        self.mechanisms: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number, self.data_count = self.data_count, self.data_count + 1
        if number == self.drop_at:
            server.transport.close()
            return "250 never heard"
        if number == self.slow_at:
            await asyncio.sleep(2)
        if self.data_reply:
            return self.data_reply
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Ok: queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.mechanisms.append(mechanism)
        ok = auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # False: the server answers 535


@pytest.fixture
def smtp_server():
    """Start servers on demand: smtp_server(**aiosmtpd options) -> (mailbox, port)."""
    controllers = []

    def start(**options):
        mailbox, port = Mailbox(), free_port()
        if options.pop("auth", False):
            options.update(authenticator=mailbox.authenticate, auth_require_tls=False)
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return mailbox, port

    yield start
    for controller in controllers:
        controller.stop()


def transport_for(port: int, password: str = "", **settings) -> EmailTransport:
    base = {
        "host": "127.0.0.1",
        "port": port,
        "use_tls": False,
        "use_ssl": False,
        "from_email": FROM,
        "timeout_seconds": 5,
    }
    return EmailTransport({**base, **settings}, {"password": password})


def outgoing(n: int = 1, address: str = "", **content) -> Outgoing:
    body = {"subject": f"春季上新 第{n}期", "text": "您好，新品已上架。", **content}
    return Outgoing(f"key-{n}", address or f"user{n}@example.cn", body, 100 + n)


def parts(message: EmailMessage) -> tuple[str, str | None]:
    """The text and the HTML part (None without one), with the wire's CRLFs as newlines."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",))
    if html is not None and html.get_content_type() == "text/html":
        return text.replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")
    return text.replace("\r\n", "\n"), None


# --- the contract ----------------------------------------------------------------------------


def test_the_registry_names_the_transport():
    cls = transport_class("email")
    assert cls is EmailTransport
    assert (cls.kind, cls.consent_channel, cls.address_identity) == ("email", "email", "email")
    assert cls.idempotent_resend is False and cls.max_batch == 50
    assert [f.name for f in cls.secret_fields] == ["password"]
    assert [(f.name, f.kind, f.template) for f in cls.template_fields] == [
        ("subject", "text", True),
        ("text", "textarea", True),
        ("html", "html", True),
    ]
    assert EmailTransport({}, {}).lookup(outgoing(), since=None) is None


@pytest.mark.parametrize(
    "content, field",
    [
        ({"subject": "", "text": "x"}, "subject"),
        ({"subject": "a\nBcc: x@y.cn", "text": "x"}, "subject"),
        ({"subject": "长" * 201, "text": "x"}, "subject"),
        ({"subject": "ok", "text": "  ", "html": ""}, "text"),
        ({"subject": "ok", "text": "x" * 500_001}, "text"),
    ],
)
def test_check_content_names_the_field(content, field):
    with pytest.raises(ValidationError) as caught:
        EmailTransport({}, {}).check_content(content)
    assert caught.value.field == field


def test_check_content_accepts_text_or_html():
    transport = EmailTransport({}, {})
    transport.check_content({"subject": "长" * 200, "text": "x"})
    transport.check_content({"subject": "ok", "html": "<p>x</p>"})


def test_message_id_is_stable_per_key_on_the_senders_domain():
    first = message_id("key-1", FROM)
    assert first == message_id("key-1", "news@brand.cn")
    assert first != message_id("key-2", FROM)
    assert (
        first.startswith("<")
        and first.endswith("@brand.cn>")
        and len(first) == len("<@brand.cn>") + 32
    )


# --- sending ---------------------------------------------------------------------------------


def test_a_message_arrives_with_both_parts_and_the_unsubscribe_headers(smtp_server):
    mailbox, port = smtp_server()
    transport = transport_for(
        port, reply_to="service@brand.cn", unsubscribe_mailto="unsubscribe@brand.cn"
    )
    html = "<html><body><h1>新品</h1><p>您好，张三</p></body></html>"
    (result,) = transport.send([outgoing(1, html=html, unsubscribe_url=UNSUBSCRIBE)])
    assert (result.key, result.outcome) == ("key-1", Outcome.SENT)
    assert result.vendor_id == message_id("key-1", FROM)

    ((mail_from, rcpt_tos, message),) = mailbox.received
    assert (mail_from, rcpt_tos) == ("news@brand.cn", ["user1@example.cn"])
    assert message["Subject"] == "春季上新 第1期"
    assert message["From"].addresses[0].display_name == "品牌"
    assert message["Reply-To"] == "service@brand.cn"
    assert message["Message-ID"] == result.vendor_id
    assert message["X-Siyu-Key"] == "key-1"
    assert message["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE}>, <mailto:unsubscribe@brand.cn?subject=unsubscribe%20key-1>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html_part = parts(message)
    assert text.startswith("您好，新品已上架。") and f"退订: {UNSUBSCRIBE}" in text
    assert "<p>您好，张三</p>" in html_part
    assert '<a href="https://siyu.brand.cn/u/tok123?c=7&amp;s=ab">退订</a></p></body>' in html_part


def test_without_an_unsubscribe_url_there_is_no_footer_and_no_header(smtp_server):
    mailbox, port = smtp_server()
    (result,) = transport_for(port).send([outgoing(1)])
    assert result.outcome == Outcome.SENT
    ((_, _, message),) = mailbox.received
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    text, html_part = parts(message)
    assert "退订" not in text and html_part is None
    assert not message.is_multipart()


def test_a_body_that_shows_the_url_gets_no_second_footer(smtp_server):
    mailbox, port = smtp_server()
    html = '<p><a href="https://siyu.brand.cn/u/tok123?c=7&amp;s=ab">不想再收到</a></p>'
    text = f"不想再收到？{UNSUBSCRIBE}"
    transport_for(port).send([outgoing(1, text=text, html=html, unsubscribe_url=UNSUBSCRIBE)])
    ((_, _, message),) = mailbox.received
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    text_part, html_part = parts(message)
    assert text_part.count(UNSUBSCRIBE) == 1 and "退订" not in text_part
    assert html_part.count("siyu.brand.cn/u/tok123") == 1 and "退订" not in html_part


def test_an_html_only_template_also_gets_a_text_part(smtp_server):
    mailbox, port = smtp_server()
    html = "<h1>新品 &amp; 优惠</h1>\n\n\n<p>您好</p>"
    (result,) = transport_for(port).send([outgoing(1, text="", html=html)])
    assert result.outcome == Outcome.SENT
    text, html_part = parts(mailbox.received[0][2])
    assert text.strip() == "新品 & 优惠\n\n您好"
    assert html_part.strip() == html


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_logs_in_with_login_or_plain(smtp_server, mechanism):
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    mailbox, port = smtp_server(auth=True, auth_exclude_mechanism=[other])
    transport = transport_for(port, password=PASSWORD, username=USERNAME)
    results = transport.send([outgoing(1), outgoing(2)])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert mailbox.mechanisms == [mechanism]  # one login for the whole batch
    assert len(mailbox.received) == 2


def test_a_wrong_password_fails_the_whole_batch(smtp_server):
    mailbox, port = smtp_server(auth=True)
    transport = transport_for(port, password="wrong", username=USERNAME)  # noqa: S106
    results = transport.send([outgoing(1), outgoing(2)])
    assert [(r.outcome, r.code) for r in results] == [(Outcome.FAILED, "smtp:auth")] * 2
    assert "refused the login" in results[0].reason and "535" in results[0].reason
    assert mailbox.received == []


def test_a_refused_recipient_fails_alone(smtp_server):
    mailbox, port = smtp_server()
    mailbox.refuse["user2@example.cn"] = "550 5.1.1 <user2@example.cn>: no such user"
    mailbox.refuse["user4@example.cn"] = "450 4.2.1 mailbox busy, try later"
    results = transport_for(port).send([outgoing(n) for n in (1, 2, 3, 4)])
    assert [(r.key, r.outcome, r.code) for r in results] == [
        ("key-1", Outcome.SENT, ""),
        ("key-2", Outcome.FAILED, "smtp:550"),
        ("key-3", Outcome.SENT, ""),
        ("key-4", Outcome.RETRY, "smtp:450"),
    ]
    assert "no such user" in results[1].reason
    assert [rcpt for _, rcpt, _ in mailbox.received] == [["user1@example.cn"], ["user3@example.cn"]]


@pytest.mark.parametrize(
    "reply, outcome",
    [("554 5.7.1 rejected as spam", Outcome.FAILED), ("451 4.3.0 later", Outcome.RETRY)],
)
def test_a_refused_message_body_is_classified_by_its_code(smtp_server, reply, outcome):
    mailbox, port = smtp_server()
    mailbox.data_reply = reply
    (result,) = transport_for(port).send([outgoing(1)])
    assert (result.outcome, result.code) == (outcome, f"smtp:{reply[:3]}")


def test_a_connection_broken_mid_batch_keeps_what_was_accepted(smtp_server):
    mailbox, port = smtp_server()
    mailbox.drop_at = 1
    results = transport_for(port).send([outgoing(n) for n in (1, 2, 3)])
    assert [(r.key, r.outcome) for r in results] == [
        ("key-1", Outcome.SENT),
        ("key-2", Outcome.RETRY),
        ("key-3", Outcome.RETRY),
    ]
    assert results[2].code == "smtp:disconnected"
    assert len(mailbox.received) == 1


def test_a_server_that_stalls_times_out_and_is_retried(smtp_server):
    mailbox, port = smtp_server()
    mailbox.slow_at = 1
    results = transport_for(port, timeout_seconds=1).send([outgoing(n) for n in (1, 2)])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.RETRY]


def test_a_server_that_is_down_is_retried():
    results = transport_for(free_port()).send([outgoing(1), outgoing(2)])
    assert [(r.outcome, r.code) for r in results] == [(Outcome.RETRY, "smtp:connect")] * 2


def test_starttls_on_a_server_without_it_is_a_configuration_failure(smtp_server):
    _, port = smtp_server()
    (result,) = transport_for(port, use_tls=True).send([outgoing(1)])
    assert (result.outcome, result.code) == (Outcome.FAILED, "smtp:starttls")


def test_tls_and_ssl_together_is_a_configuration_failure():
    (result,) = transport_for(1, use_tls=True, use_ssl=True).send([outgoing(1)])
    assert (result.outcome, result.code) == (Outcome.FAILED, "config")
    with pytest.raises(ValidationError) as caught:
        EmailTransport.validate_settings({"use_tls": True, "use_ssl": True, "from_email": FROM})
    assert caught.value.field == "use_tls"
    with pytest.raises(ValidationError) as caught:
        EmailTransport.validate_settings({"from_email": "品牌"})
    assert caught.value.field == "from_email"
