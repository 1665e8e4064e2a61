"""The console's data sources page (数据源): write keys, snippets, ingestion status and the
live event stream."""

import base64
import json
import re

import pytest
from django.test import Client

from siyu.core.models import AuditLog
from siyu.tracking import actions as tracking_actions
from siyu.tracking.models import Event, QueuedEvent, ResolvedEvent, WriteKey
from tests.helpers import pending_event, processed_event

PAGE = "/w/brand/data-sources/"
EVENTS = "/w/brand/data-sources/events/"
CREATE = "/w/brand/data-sources/keys/new/"


def text(response) -> str:
    return response.content.decode()


def collector(raw: str) -> Client:
    token = base64.b64encode(f"{raw}:".encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {token}")


def track(raw: str, body: dict):
    return collector(raw).post("/v1/track", json.dumps(body), content_type="application/json")


def snapshot() -> dict:
    return {
        "keys": list(WriteKey.objects.order_by("pk").values()),
        "events": list(Event.objects.order_by("pk").values("id")),
        "resolved": list(ResolvedEvent.objects.order_by("pk").values()),
        "queued": list(QueuedEvent.objects.order_by("workspace_id", "event_id").values()),
        "audit": list(AuditLog.objects.order_by("pk").values("id")),
    }


def new_key(client: Client, name: str = "官网") -> str:
    body = text(client.post(CREATE, {"name": name}))
    return re.search(r'<code id="new-key">(wk_[\w-]+)</code>', body).group(1)


def test_page_renders_for_the_owner_with_empty_states(cast, console):
    response = console("owner").get(PAGE)
    assert response.status_code == 200
    body = text(response)
    assert '<html lang="zh-hans">' in body
    for words in [
        "数据源",
        "写入密钥",
        "接入代码",
        "实时事件",
        "还没有写入密钥",
        "尚未收到任何事件",
    ]:
        assert words in body, words
    # the nav links the page, the live stream polls its partial every 3 s
    assert 'href="/w/brand/data-sources/"' in body
    assert 'hx-get="/w/brand/data-sources/events/"' in body and 'hx-trigger="every 3s"' in body
    # snippets point at this server, with the key placeholder
    assert "apiHost: `${SIYU}/v1`, protocol: 'http'" in body
    assert "const SIYU = 'testserver'" in body
    assert 'analytics.host = "http://testserver"' in body
    assert "url: `${SIYU}/v1/track`" in body and "const SIYU = 'http://testserver'" in body
    assert "wk_..." in body


def test_create_shows_the_key_once_then_only_its_prefix(cast, console):
    client = console("owner")
    response = client.post(CREATE, {"name": "官网"})
    assert response.status_code == 200
    assert "no-store" in response.headers.get("Cache-Control", "")
    body = text(response)
    assert 'class="secret-once"' in body
    raw = re.search(r'<code id="new-key">(wk_[\w-]+)</code>', body).group(1)
    assert body.count(raw) == 1
    key = WriteKey.objects.get(workspace=cast.workspace, name="官网")
    assert key.created_by == cast.owner.staff and raw.startswith(key.prefix)
    assert raw not in str(list(WriteKey.objects.values()))

    later = text(client.get(PAGE))
    assert raw not in later and "secret-once" not in later
    assert f"{key.prefix}…" in later and "官网" in later
    assert f"'{key.prefix}...'" in later  # the snippets carry the prefix placeholder
    assert raw not in text(client.get("/w/brand/audit/"))


def test_blank_name_is_refused_and_creates_nothing(cast, console):
    before = snapshot()
    response = console("owner").post(CREATE, {"name": "  "})
    assert response.status_code == 422
    assert "名称：" in text(response) and "secret-once" not in text(response)
    assert snapshot() == before


def test_revoke_confirms_then_the_key_gets_401(cast, console):
    client = console("admin")
    raw = new_key(client, "小程序")
    assert track(raw, {"userId": "u1", "event": "Signed Up"}).status_code == 200
    key = WriteKey.objects.get(workspace=cast.workspace, name="小程序")
    path = f"/w/brand/data-sources/keys/{key.pk}/revoke/"
    confirm = client.get(path)
    assert confirm.status_code == 200 and "小程序" in text(confirm)
    assert track(raw, {"userId": "u1", "event": "Again"}).status_code == 200  # GET acts not
    assert client.post(path).status_code == 302
    assert track(raw, {"userId": "u1", "event": "Refused"}).status_code == 401
    assert "已吊销" in text(client.get(PAGE))


@pytest.mark.parametrize("role", ["operator", "analyst", "agent"])
def test_other_roles_get_403_and_their_writes_change_nothing(cast, console, role):
    key, _raw = tracking_actions.writekey_create(
        workspace=cast.workspace, actor=cast.owner.actor, name="官网"
    )
    client = console(role)
    assert client.get(PAGE).status_code == 403
    revoke = f"/w/brand/data-sources/keys/{key.pk}/revoke/"
    assert client.get(revoke).status_code == 403
    before = snapshot()
    assert client.post(CREATE, {"name": "偷建"}).status_code == 403
    assert client.post(revoke).status_code == 403
    assert snapshot() == before
    assert 'href="/w/brand/data-sources/"' not in text(client.get("/w/brand/tags/"))


def test_outsiders_get_404_and_change_nothing(cast, console):
    key, _raw = tracking_actions.writekey_create(
        workspace=cast.workspace, actor=cast.owner.actor, name="官网"
    )
    client = console("outsider")
    before = snapshot()
    assert client.get(PAGE).status_code == 404
    assert client.get(EVENTS).status_code == 404
    assert client.post(CREATE, {"name": "x"}).status_code == 404
    assert client.post(f"/w/brand/data-sources/keys/{key.pk}/revoke/").status_code == 404
    assert snapshot() == before
    anonymous = Client().get(PAGE)
    assert anonymous.status_code == 302 and "/login/" in anonymous.headers["Location"]


def test_a_key_of_another_workspace_is_not_found(cast, console):
    key, _raw = tracking_actions.writekey_create(
        workspace=cast.outsider_workspace, actor=cast.outsider.actor, name="别家"
    )
    before = snapshot()
    path = f"/w/brand/data-sources/keys/{key.pk}/revoke/"
    assert console("owner").post(path).status_code == 404
    assert snapshot() == before


def test_events_partial_lists_a_tracked_event_without_clear_pii(cast, console):
    client = console("owner")
    raw = new_key(client)
    body = {
        "userId": "member-7",
        "event": "Order Completed",
        "properties": {"order_id": "A-1", "email": "fang@example.cn"},
        "context": {"traits": {"phone": "13800138000", "name": "王芳"}},
        "messageId": "m-1",
    }
    assert track(raw, body).status_code == 200
    response = client.get(EVENTS, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = text(response)
    assert "<html" not in html and 'hx-trigger="every 3s"' in html
    assert "Order Completed" in html and "member-7" in html
    assert "order_id" in html and "email" in html  # keys only
    assert "13800138000" not in html and "fang@example.cn" not in html and "A-1" not in html
    assert "王芳" not in html

    page = text(client.get(PAGE))
    assert "13800138000" not in page and "fang@example.cn" not in page
    assert "尚未收到任何事件" not in page


def test_pending_events_show_in_the_status_and_a_contact_is_linked(cast, console, make_contact):
    client = console("owner")
    tracking_actions.writekey_create(workspace=cast.workspace, actor=cast.owner.actor, name="k")
    contact = make_contact("李雷")
    now = "2026-01-01T00:00:00Z"
    fields = {"type": "track", "event": "Viewed", "timestamp": now, "received_at": now}
    pending_event(cast.workspace, error="phone: invalid", message_id="m-0", user_id="u0", **fields)
    processed_event(cast.workspace, contact, message_id="m-1", user_id="u1", **fields)
    page = text(client.get(PAGE))
    assert "1 个事件等待匹配客户" in page and "待处理" in page and "已处理" in page
    assert f'href="/w/brand/contacts/{contact.pk}/"' in page and "李雷" in page
    assert 'title="phone: invalid"' in page  # why the pending one is still waiting
    # times in the workspace's zone (Asia/Shanghai by default)
    assert "2026-01-01 08:00:00" in page


def test_analyst_may_read_the_event_stream(cast, console):
    assert console("analyst").get(EVENTS).status_code == 200


def test_agents_see_only_the_events_of_their_own_contacts(cast, console, make_contact):
    mine = make_contact("李雷", owner=cast.agent)
    theirs = make_contact("韩梅梅")
    now = "2026-01-01T00:00:00Z"
    fields = {"type": "track", "timestamp": now, "received_at": now}
    processed_event(cast.workspace, mine, message_id="m-mine", event="Mine", **fields)
    processed_event(cast.workspace, theirs, message_id="m-theirs", event="Theirs", **fields)
    processed_event(cast.workspace, None, message_id="m-nobody", event="Nobody", **fields)
    pending_event(cast.workspace, message_id="m-pending", event="Waiting", **fields)
    html = text(console("agent").get(EVENTS))
    assert "Mine" in html and "李雷" in html
    for other in ("Theirs", "韩梅梅", "Nobody", "Waiting"):
        assert other not in html, other
    everything = text(console("owner").get(EVENTS))
    assert all(name in everything for name in ("Mine", "Theirs", "Nobody", "Waiting"))
