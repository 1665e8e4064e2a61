"""The signed webhook against a local receiver that checks signatures as receivers must."""

import json
import socket
import time

import httpx
import pytest

from siyu.core.errors import ValidationError
from siyu.messaging.channels import transport_class
from siyu.messaging.channels.base import Outcome, Outgoing, VendorError
from siyu.messaging.channels.webhook.signature import sign, verify
from siyu.messaging.channels.webhook.transport import WebhookTransport
from tests.messaging.fakes.webhook import FakeWebhookReceiver

SECRET = "whsec-test-secret"  # noqa: S105


@pytest.fixture(scope="module")
def shared_receiver():
    with FakeWebhookReceiver(SECRET) as fake:
        yield fake


@pytest.fixture
def receiver(shared_receiver):
    shared_receiver.reset()
    return shared_receiver


def transport_for(url: str, secret: str = SECRET, **settings) -> WebhookTransport:
    return WebhookTransport({"url": url, **settings}, {"signing_secret": secret})


def message(n: int = 1, body: str = "", **content) -> Outgoing:
    return Outgoing(f"key-{n}", "", {"body": body, **content} if body else content, 100 + n)


# --- the signature ---------------------------------------------------------------------------


def test_sign_is_stripe_like_and_verifies():
    body = '{"a":"你好"}'.encode()
    header = sign(SECRET, body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert len(header.split("v1=")[1]) == 64
    assert verify(SECRET, body, header, now=1_700_000_100)


def test_verify_refuses_a_tampered_body_or_a_wrong_secret():
    body = b'{"amount":1}'
    header = sign(SECRET, body, int(time.time()))
    assert not verify(SECRET, b'{"amount":9}', header)
    assert not verify("other-secret", body, header)


def test_verify_refuses_a_replay_beyond_the_tolerance():
    body = b"{}"
    header = sign(SECRET, body, 1_700_000_000)
    assert verify(SECRET, body, header, now=1_700_000_300)
    assert not verify(SECRET, body, header, now=1_700_000_301)
    assert not verify(SECRET, body, header, tolerance_seconds=60, now=1_700_000_061)
    old = sign(SECRET, body, int(time.time()) - 3600)
    assert not verify(SECRET, body, old)


def test_verify_accepts_any_of_several_signatures_and_refuses_garbage():
    body = b"{}"
    now = int(time.time())
    good = sign(SECRET, body, now).split(",")[1]
    assert verify(SECRET, body, f"t={now},v1={'0' * 64},{good}")
    for header in ("", "garbage", f"t={now}", "v1=abc", f"t=x,{good}", f"t={now},v0=abc"):
        assert not verify(SECRET, body, header)


# --- the contract ----------------------------------------------------------------------------


def test_the_registry_names_the_transport():
    cls = transport_class("webhook")
    assert cls is WebhookTransport
    assert (cls.kind, cls.consent_channel, cls.address_identity) == ("webhook", None, None)
    assert cls.idempotent_resend is True
    assert [f.name for f in cls.secret_fields] == ["signing_secret"]
    assert [f.name for f in cls.settings_fields] == ["url", "timeout_seconds"]
    (body,) = cls.template_fields
    assert (body.name, body.kind, body.template) == ("body", "json", True)


@pytest.mark.parametrize("url", ["", "ftp://x.cn/hook", "file:///etc/passwd", "https://", None])
def test_validate_settings_refuses_urls_that_are_not_http(url):
    with pytest.raises(ValidationError) as caught:
        WebhookTransport.validate_settings({"url": url})
    assert caught.value.field == "url"


def test_validate_settings_accepts_http_and_https():
    WebhookTransport.validate_settings({"url": "https://hooks.brand.cn/siyu"})
    WebhookTransport.validate_settings({"url": "http://10.0.0.5:8080/x", "timeout_seconds": 5})
    with pytest.raises(ValidationError) as caught:
        WebhookTransport.validate_settings({"url": "https://a.cn", "timeout_seconds": 0})
    assert caught.value.field == "timeout_seconds"


@pytest.mark.parametrize(
    "body, error",
    [
        ('{"a": 1,}', "not valid JSON: line 1"),
        ("[1, 2]", "expected a JSON object"),
        ("7", "object"),
    ],
)
def test_check_content_names_the_body_field(body, error):
    with pytest.raises(ValidationError) as caught:
        transport_for("https://a.cn").check_content({"body": body})
    assert caught.value.field == "body"
    assert error in caught.value.message


def test_check_content_accepts_an_object_or_no_body():
    transport = transport_for("https://a.cn")
    transport.check_content({"body": '{"name": "张三", "tags": [1]}'})
    transport.check_content({})


# --- sending ---------------------------------------------------------------------------------


def test_posts_a_signed_json_body_with_the_idempotency_key(receiver):
    transport = transport_for(receiver.url + "/hook")
    body = json.dumps({"event": "coupon", "name": "张三"}, ensure_ascii=False)
    (result,) = transport.send([message(1, body=body)])
    assert (result.key, result.outcome, result.vendor_id) == ("key-1", Outcome.SENT, "evt_1")
    (request,) = receiver.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "siyu-webhook/1"
    assert request.headers["idempotency-key"] == "key-1"
    assert verify(SECRET, request.body, request.headers["x-siyu-signature"])
    assert receiver.bodies == [{"event": "coupon", "name": "张三"}]
    assert "张三".encode() in request.body  # UTF-8, not \u escapes


def test_without_a_body_template_sends_the_default_payload(receiver):
    transport = transport_for(receiver.url)
    outgoing = message(2, unsubscribe_url="https://siyu.brand.cn/u/abc")
    (result,) = transport.send([outgoing])
    assert result.outcome == Outcome.SENT
    assert receiver.bodies == [
        {
            "key": "key-2",
            "contact_id": 102,
            "content": {"unsubscribe_url": "https://siyu.brand.cn/u/abc"},
        }
    ]


def test_a_batch_is_one_post_per_message_and_a_resend_is_deduped(receiver):
    transport = transport_for(receiver.url)
    results = transport.send([message(n) for n in (1, 2, 3)])
    assert [(r.key, r.outcome) for r in results] == [(f"key-{n}", Outcome.SENT) for n in (1, 2, 3)]
    assert receiver.keys == ["key-1", "key-2", "key-3"]
    (again,) = transport.send([message(2)])  # outcome unknown, so resent: same key
    assert again.outcome == Outcome.SENT and again.vendor_id == "evt_2"
    assert len(receiver.requests) == 4 and len(receiver.bodies) == 3


def test_a_2xx_without_json_is_sent_with_no_vendor_id(receiver):
    receiver.response_id = None
    (result,) = transport_for(receiver.url).send([message()])
    assert (result.outcome, result.vendor_id) == (Outcome.SENT, "")


def test_a_5xx_is_retried_and_the_rest_of_the_batch_waits(receiver):
    receiver.status = 500
    results = transport_for(receiver.url).send([message(n) for n in (1, 2, 3)])
    assert [(r.key, r.outcome, r.code) for r in results] == [
        (f"key-{n}", Outcome.RETRY, "http:500") for n in (1, 2, 3)
    ]
    assert len(receiver.requests) == 1  # a struggling receiver is not hammered


def test_a_429_is_retried_after_the_receivers_delay(receiver):
    receiver.status, receiver.retry_after = 429, "120"
    (result,) = transport_for(receiver.url).send([message()])
    assert (result.outcome, result.code, result.retry_after) == (Outcome.RETRY, "http:429", 120.0)


@pytest.mark.parametrize("status", [408, 425, 502, 503])
def test_transient_statuses_are_retried(receiver, status):
    receiver.status = status
    (result,) = transport_for(receiver.url).send([message()])
    assert (result.outcome, result.code) == (Outcome.RETRY, f"http:{status}")


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_other_4xx_fail_and_the_batch_goes_on(receiver, status):
    receiver.status = status
    results = transport_for(receiver.url).send([message(1), message(2)])
    assert [(r.outcome, r.code) for r in results] == [(Outcome.FAILED, f"http:{status}")] * 2
    assert "switched" in results[0].reason


def test_a_redirect_is_not_followed(receiver):
    receiver.redirect_to = receiver.url + "/elsewhere"
    (result,) = transport_for(receiver.url).send([message()])
    assert (result.outcome, result.code) == (Outcome.FAILED, "http:302")
    assert [r.path for r in receiver.requests] == ["/"]


def test_a_wrong_secret_is_refused_by_the_receiver(receiver):
    (result,) = transport_for(receiver.url, secret="not-the-secret").send([message()])  # noqa: S106
    assert (result.outcome, result.code) == (Outcome.FAILED, "http:401")
    assert receiver.rejected_signatures == 1 and receiver.bodies == []


def test_a_receiver_that_is_down_is_retried():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results = transport_for(f"http://127.0.0.1:{port}/hook").send([message(1), message(2)])
    assert [(r.outcome, r.code) for r in results] == [(Outcome.RETRY, "network")] * 2


def test_a_timeout_is_retried():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    transport = WebhookTransport(
        {"url": "https://hooks.brand.cn/x", "timeout_seconds": 1},
        {"signing_secret": SECRET},
        http=httpx.Client(transport=httpx.MockTransport(slow)),
    )
    (result,) = transport.send([message()])
    assert (result.outcome, result.code) == (Outcome.RETRY, "timeout")


def test_an_http_date_retry_after_is_read_as_seconds():
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})

    transport = WebhookTransport(
        {"url": "https://hooks.brand.cn/x"},
        {"signing_secret": SECRET},
        http=httpx.Client(transport=httpx.MockTransport(busy)),
    )
    (result,) = transport.send([message()])
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 0.0)  # a date in the past


def test_a_misconfigured_channel_fails_the_whole_call():
    with pytest.raises(VendorError) as caught:
        transport_for("ftp://a.cn/x").send([message()])
    assert caught.value.retryable is False and caught.value.code == "config"
    with pytest.raises(VendorError):
        transport_for("https://a.cn/x", secret="").send([message()])


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/"],
)
def test_internal_addresses_are_refused_unless_allowed(url, receiver, settings):
    settings.SIYU_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(VendorError) as caught:
        transport_for(url).send([message()])
    assert caught.value.code == "blocked_address" and not caught.value.retryable
    with pytest.raises(VendorError):
        transport_for(receiver.url + "/hook").send([message()])
    assert receiver.requests == []
    settings.SIYU_WEBHOOK_ALLOW_PRIVATE = True
    assert transport_for(receiver.url + "/hook").send([message()])[0].outcome == Outcome.SENT


def test_a_body_that_is_not_an_object_fails_that_message_only(receiver):
    results = transport_for(receiver.url).send([message(1, body="[1]"), message(2)])
    assert [(r.key, r.outcome) for r in results] == [
        ("key-1", Outcome.FAILED),
        ("key-2", Outcome.SENT),
    ]
