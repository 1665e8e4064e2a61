"""The customer-pool pages: list, search, filters, paging, detail, inline edits, reveal,
bulk tagging and the job progress view, checked per role."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.contacts import actions as contact_actions
from siyu.contacts.models import Consent, Contact, ContactTag, Identity, TimelineEntry
from siyu.core.audit import Actor
from siyu.core.models import AuditLog, Job

HTMX = {"HTTP_HX_REQUEST": "true"}


def htmx(target: str) -> dict:
    return {**HTMX, "HTTP_HX_TARGET": target}


@pytest.fixture
def tags(cast):
    """Two tag groups: 会员等级 (VIP, 普通) and 兴趣 (咖啡)."""
    system = Actor.system("test")
    ws = cast.workspace
    level = contact_actions.tag_group_create(workspace=ws, actor=system, name="会员等级")
    interest = contact_actions.tag_group_create(workspace=ws, actor=system, name="兴趣")
    return {
        "vip": contact_actions.tag_create(workspace=ws, actor=system, group=level, name="VIP"),
        "normal": contact_actions.tag_create(workspace=ws, actor=system, group=level, name="普通"),
        "coffee": contact_actions.tag_create(
            workspace=ws, actor=system, group=interest, name="咖啡"
        ),
    }


def tag_names(contact: Contact) -> set[str]:
    return set(ContactTag.objects.filter(contact=contact).values_list("tag__name", flat=True))


def url(path: str = "") -> str:
    return f"/w/brand/contacts/{path}"


# --- list --------------------------------------------------------------------------------


def test_list_shows_masked_phones_never_clear_text(cast, console, make_contact):
    make_contact("王小明", phone="13812345678", source="douyin")
    page = console("owner").get(url())
    assert page.status_code == 200
    html = page.content.decode()
    assert "王小明" in html and "138****5678" in html and "抖音" in html
    assert "13812345678" not in html and "+8613812345678" not in html


def test_search_by_phone_in_any_format_and_by_name_prefix(cast, console, make_contact):
    wang = make_contact("王小明", phone="13812345678")
    make_contact("李雷", phone="13900001111")
    client = console("operator")
    by_phone = client.get(url(), {"q": "138 1234 5678"}).context["rows"]
    assert [r["contact"].pk for r in by_phone] == [wang.pk]
    by_name = client.get(url(), {"q": "王"}).context["rows"]
    assert [r["contact"].pk for r in by_name] == [wang.pk]


def test_filters_by_tag_source_owner_and_unassigned(cast, console, make_contact, tags):
    a = make_contact("Bob", source="douyin", owner=cast.agent)
    b = make_contact("Amy", source="xiaohongshu")
    contact_actions.contacts_tag(
        workspace=cast.workspace, actor=Actor.system(), contact_ids=[b.pk], add=[tags["vip"].pk]
    )
    client = console("owner")

    def ids(**params):
        return [r["contact"].pk for r in client.get(url(), params).context["rows"]]

    assert ids(tag=tags["vip"].pk) == [b.pk]
    assert ids(source="douyin") == [a.pk]
    assert ids(owner=cast.agent.staff.pk) == [a.pk]
    assert ids(owner=0) == [b.pk]
    assert ids(sort="name") == [b.pk, a.pk]
    assert ids(sort="created") == [a.pk, b.pk]
    assert ids() == [b.pk, a.pk]  # newest first


def test_filter_form_lists_grouped_tags_sources_and_staff(cast, console, tags, make_contact):
    make_contact("甲")
    html = console("owner").get(url()).content.decode()
    assert '<optgroup label="会员等级">' in html and "咖啡" in html
    assert "小红书" in html  # source labels
    assert "未分配" in html and "agent" in html  # owner filter with "unassigned"


def test_htmx_filter_answers_with_the_table_only(cast, console, make_contact):
    make_contact("甲", source="douyin")
    response = console("owner").get(url(), {"source": "douyin"}, **htmx("contact-results"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "甲" in html
    assert "HX-Request" in response.headers["Vary"]


def test_keyset_paging_carries_a_cursor_and_never_counts(cast, console, make_contact):
    for i in range(53):
        make_contact(f"客户{i:02d}")
    client = console("owner")
    with CaptureQueriesContext(connection) as queries:
        first = client.get(url())
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "OFFSET" not in sql and "COUNT(" not in sql
    assert len(first.context["rows"]) == 50
    html = first.content.decode()
    next_href = re.search(r'href="(/w/brand/contacts/\?cursor=[^"]+)"', html).group(1)
    second = client.get(next_href.replace("&amp;", "&"))
    names = [r["contact"].name for r in second.context["rows"]]
    assert names == ["客户02", "客户01", "客户00"]
    assert "第一页" in second.content.decode()
    # the count loads separately, lazily
    assert 'hx-trigger="load"' in html
    count = client.get(url("count/"))
    assert "53" in count.content.decode()


def test_a_broken_cursor_shows_the_first_page(cast, console, make_contact):
    make_contact("甲")
    page = console("owner").get(url(), {"cursor": "garbage!"})
    assert page.status_code == 200
    assert [r["contact"].name for r in page.context["rows"]] == ["甲"]
    assert page.context["list_error"] is not None


def test_empty_states_differ(cast, console, make_contact):
    client = console("owner")
    assert "还没有客户" in client.get(url()).content.decode()
    make_contact("甲")
    assert "没有符合筛选条件的客户" in client.get(url(), {"q": "zzz"}).content.decode()


def test_last_seen_is_shown_in_the_workspace_time_zone(cast, console, make_contact):
    c = make_contact("甲")
    Contact.objects.filter(pk=c.pk).update(
        last_seen_at=datetime.datetime(2026, 1, 1, 16, 30, tzinfo=datetime.UTC)
    )
    assert "2026-01-02 00:30" in console("owner").get(url()).content.decode()


def test_agent_lists_only_own_contacts(cast, console, make_contact):
    mine = make_contact("我的客户", owner=cast.agent)
    make_contact("别人的客户", owner=cast.operator)
    page = console("agent").get(url())
    assert [r["contact"].pk for r in page.context["rows"]] == [mine.pk]
    assert "1" in console("agent").get(url("count/")).content.decode()


# --- new contact -------------------------------------------------------------------------


def test_new_contact_is_created_with_phone_and_tags(cast, console, tags):
    client = console("operator")
    assert client.get(url("new/")).status_code == 200
    response = client.post(
        url("new/"),
        {
            "name": "新客户",
            "gender": "female",
            "phone": "139 1234 5678",
            "source": "douyin",
            "tags": [tags["vip"].pk],
        },
    )
    contact = Contact.objects.get(workspace=cast.workspace, name="新客户")
    assert response.status_code == 302 and response.url == url(f"{contact.pk}/")
    assert tag_names(contact) == {"VIP"}
    assert Identity.objects.get(contact=contact).masked == "139****5678"


def test_duplicate_phone_links_to_the_existing_contact(cast, console, make_contact):
    existing = make_contact("老客户", phone="13912345678")
    response = console("owner").post(url("new/"), {"name": "重复", "phone": "13912345678"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "已属于另一位客户" in html and url(f"{existing.pk}/") in html
    assert not Contact.objects.filter(name="重复").exists()


def test_analyst_cannot_create_contacts(cast, console):
    client = console("analyst")
    assert client.get(url("new/")).status_code == 403
    assert client.post(url("new/"), {"name": "x"}).status_code == 403
    assert not Contact.objects.filter(name="x").exists()
    assert url("new/") not in client.get(url()).content.decode()  # no button either


# --- detail ------------------------------------------------------------------------------


def test_detail_shows_profile_identities_tags_consent_and_timeline(
    cast, console, make_contact, tags
):
    c = make_contact("王小明", phone="13812345678", email="wang@example.com", owner=cast.agent)
    html = console("owner").get(url(f"{c.pk}/")).content.decode()
    assert "王小明" in html and "138****5678" in html and "w***@example.com" in html
    assert "13812345678" not in html and "wang@example.com" not in html
    assert "agent" in html  # the advisor
    assert "短信" in html and "企业微信" in html  # consent channels
    assert "创建客户" in html  # timeline row for "created"
    assert "显示" in html  # the owner may reveal


def test_inline_tag_add_refreshes_the_timeline(cast, console, make_contact, tags):
    c = make_contact("甲")
    client = console("operator")
    response = client.post(url(f"{c.pk}/tags/"), {"add": tags["vip"].pk}, **htmx("contact-tags"))
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "timeline-changed"
    assert "VIP" in response.content.decode()
    assert tag_names(c) == {"VIP"}
    timeline = client.get(url(f"{c.pk}/timeline/"), **htmx("timeline")).content.decode()
    assert "添加标签：VIP" in timeline
    removed = client.post(url(f"{c.pk}/tags/"), {"remove": tags["vip"].pk}, **htmx("contact-tags"))
    assert removed.status_code == 200 and tag_names(c) == set()


def test_inline_tag_without_a_choice_shows_an_inline_error(cast, console, make_contact):
    c = make_contact("甲")
    response = console("owner").post(url(f"{c.pk}/tags/"), {"add": ""}, **htmx("contact-tags"))
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#tags-error"


def test_plain_form_posts_redirect_back(cast, console, make_contact, tags):
    c = make_contact("甲")
    response = console("owner").post(url(f"{c.pk}/tags/"), {"add": tags["coffee"].pk})
    assert response.status_code == 302 and response.url == url(f"{c.pk}/")
    assert tag_names(c) == {"咖啡"}


def test_reveal_is_audited_and_only_for_roles_with_pii_reveal(cast, console, make_contact):
    c = make_contact("甲", phone="13812345678")
    identity = Identity.objects.get(contact=c)
    reveal = url(f"{c.pk}/identities/{identity.pk}/reveal/")
    for role in ("operator", "analyst"):
        assert reveal not in console(role).get(url(f"{c.pk}/")).content.decode()  # no button
        assert console(role).post(reveal, **HTMX).status_code == 403
    assert console("agent").post(reveal, **HTMX).status_code == 403  # checked before any lookup
    assert not AuditLog.objects.filter(action="pii.reveal").exists()
    response = console("owner").post(reveal, **htmx(f"identity-{identity.pk}-value"))
    assert response.status_code == 200
    assert "+8613812345678" in response.content.decode()
    assert response.headers["HX-Trigger"] == "timeline-changed"
    log = AuditLog.objects.get(action="pii.reveal")
    assert log.actor == cast.owner.staff and log.object_id == str(c.pk)
    assert console("owner").get(reveal).status_code == 405  # never on a GET


def test_edit_profile_and_custom_attributes(cast, console, make_contact):
    contact_actions.attribute_define(
        workspace=cast.workspace,
        actor=Actor.system(),
        key="cup",
        label="杯型",
        type="choice",
        choices=["中杯", "大杯"],
    )
    c = make_contact("甲")
    client = console("operator")
    assert "杯型" in client.get(url(f"{c.pk}/")).content.decode()
    response = client.post(
        url(f"{c.pk}/edit/"),
        {"name": "甲改", "gender": "male", "city": "上海", "source": "wecom", "attr_cup": "大杯"},
    )
    assert response.status_code == 302
    c.refresh_from_db()
    assert (c.name, c.gender, c.city, c.source) == ("甲改", "male", "上海", "wecom")
    assert c.attributes == {"cup": "大杯"}
    bad = client.post(url(f"{c.pk}/edit/"), {"name": "甲", "birthday": "2999-01-01"})
    assert bad.status_code == 422 and "birthday" in bad.content.decode()
    c.refresh_from_db()
    assert c.name == "甲改"


def test_change_owner_consent_and_identities(cast, console, make_contact):
    c = make_contact("甲")
    client = console("operator")
    assert client.post(url(f"{c.pk}/owner/"), {"owner": cast.agent.staff.pk}).status_code == 302
    c.refresh_from_db()
    assert c.owner_id == cast.agent.staff.pk
    granted = client.post(
        url(f"{c.pk}/consent/"), {"channel": "sms", "status": "granted"}, **htmx("contact-consent")
    )
    assert granted.status_code == 200 and "已同意" in granted.content.decode()
    client.post(url(f"{c.pk}/consent/"), {"channel": "sms", "status": "withdrawn"})
    assert Consent.objects.get(contact=c, channel="sms").status == "withdrawn"
    added = client.post(
        url(f"{c.pk}/identities/"),
        {"kind": "email", "value": "Jia@Example.com"},
        **htmx("contact-identities"),
    )
    assert added.status_code == 200 and "j***@example.com" in added.content.decode()
    identity = Identity.objects.get(contact=c, kind="email")
    client.post(url(f"{c.pk}/identities/{identity.pk}/remove/"))
    assert not Identity.objects.filter(contact=c).exists()
    bad = client.post(url(f"{c.pk}/identities/"), {"kind": "phone", "value": "12"}, **HTMX)
    assert bad.status_code == 422 and bad.headers["HX-Retarget"] == "#identity-error"


def test_merge_finds_by_phone_and_folds_the_other_in(cast, console, make_contact):
    keep = make_contact("留下", phone="13812345678")
    dup = make_contact("重复", phone="13900001111", source="douyin")
    client = console("operator")
    found = client.get(url(f"{keep.pk}/merge/"), {"merge_q": "13900001111"}, **HTMX)
    assert "重复" in found.content.decode()
    refused = client.post(url(f"{keep.pk}/merge/confirm/"), {"other_id": dup.pk})
    assert refused.status_code == 422 and Contact.objects.filter(pk=dup.pk).exists()
    done = client.post(url(f"{keep.pk}/merge/confirm/"), {"other_id": dup.pk, "confirm": "1"})
    assert done.status_code == 302
    assert not Contact.objects.filter(pk=dup.pk).exists()
    assert Identity.objects.filter(contact=keep).count() == 2


def test_delete_needs_confirmation_and_the_permission(cast, console, make_contact):
    c = make_contact("甲")
    assert console("operator").post(url(f"{c.pk}/delete/"), {"confirm": "1"}).status_code == 403
    assert console("owner").post(url(f"{c.pk}/delete/")).status_code == 422
    assert Contact.objects.filter(pk=c.pk).exists()
    response = console("owner").post(url(f"{c.pk}/delete/"), {"confirm": "1"})
    assert response.status_code == 302 and not Contact.objects.filter(pk=c.pk).exists()


# --- roles -------------------------------------------------------------------------------


def test_agent_gets_404_on_contacts_they_do_not_own(cast, console, make_contact, tags):
    mine = make_contact("我的", owner=cast.agent)
    other = make_contact("别人的", owner=cast.operator)
    client = console("agent")
    assert client.get(url(f"{mine.pk}/")).status_code == 200
    assert client.get(url(f"{other.pk}/")).status_code == 404
    assert client.post(url(f"{other.pk}/tags/"), {"add": tags["vip"].pk}).status_code == 404
    assert tag_names(other) == set()
    # their own contact they may tag, but not reassign
    client.post(url(f"{mine.pk}/tags/"), {"add": tags["vip"].pk})
    assert tag_names(mine) == {"VIP"}
    assert client.post(url(f"{mine.pk}/owner/"), {"owner": ""}).status_code == 403


def test_analyst_sees_no_buttons_and_cannot_post_changes(cast, console, make_contact, tags):
    c = make_contact("甲", phone="13812345678")
    client = console("analyst")
    html = client.get(url(f"{c.pk}/")).content.decode()
    assert "添加标签" not in html and "编辑资料" not in html and "删除" not in html
    identity = Identity.objects.get(contact=c)
    before = (TimelineEntry.objects.count(), AuditLog.objects.count())
    posts = {
        "tags/": {"add": tags["vip"].pk},
        "edit/": {"name": "改了"},
        "owner/": {"owner": cast.agent.staff.pk},
        "consent/": {"channel": "sms", "status": "granted"},
        "identities/": {"kind": "email", "value": "a@b.cn"},
        f"identities/{identity.pk}/remove/": {},
        f"identities/{identity.pk}/reveal/": {},
        "merge/confirm/": {"other_id": c.pk, "confirm": "1"},
        "delete/": {"confirm": "1"},
    }
    for path, data in posts.items():
        assert client.post(url(f"{c.pk}/{path}"), data).status_code == 403, path
    assert (
        client.post(url("bulk-tag/"), {"ids": [c.pk], "bulk_tag": tags["vip"].pk}).status_code
        == 403
    )
    c.refresh_from_db()
    assert c.name == "甲" and c.owner_id is None and tag_names(c) == set()
    assert Identity.objects.filter(contact=c).count() == 1 and not Consent.objects.exists()
    assert (TimelineEntry.objects.count(), AuditLog.objects.count()) == before


def test_outsider_gets_404_everywhere(cast, console, make_contact):
    c = make_contact("甲")
    client = console("outsider")
    assert client.get(url()).status_code == 404
    assert client.get(url(f"{c.pk}/")).status_code == 404
    assert client.post(url(f"{c.pk}/tags/"), {"add": 1}).status_code == 404
    # and their own workspace's detail URL with our id is not found either
    assert client.get(f"/w/other/contacts/{c.pk}/").status_code == 404


# --- bulk tagging and jobs ---------------------------------------------------------------


def test_bulk_tag_selected_contacts(cast, console, make_contact, tags):
    a, b, c = make_contact("甲"), make_contact("乙"), make_contact("丙")
    foreign = make_contact("外", workspace=cast.outsider_workspace)
    client = console("operator")
    response = client.post(
        url("bulk-tag/"),
        {
            "ids": [a.pk, b.pk, foreign.pk],
            "bulk_tag": tags["vip"].pk,
            "op": "add",
            "scope": "selected",
        },
        **htmx("contact-results"),
    )
    assert response.status_code == 200
    assert "2" in response.context["notice"]
    assert tag_names(a) == tag_names(b) == {"VIP"} and tag_names(c) == set()
    assert tag_names(foreign) == set()
    client.post(
        url("bulk-tag/"),
        {"ids": [a.pk], "bulk_tag": tags["vip"].pk, "op": "remove", "scope": "selected"},
    )
    assert tag_names(a) == set()
    nothing = client.post(url("bulk-tag/"), {"bulk_tag": tags["vip"].pk}, **HTMX)
    assert nothing.status_code == 422 and nothing.headers["HX-Retarget"] == "#bulk-error"


def test_bulk_tag_all_matching_runs_a_job_with_progress(
    cast, console, make_contact, tags, django_capture_on_commit_callbacks
):
    douyin = [make_contact(f"抖{i}", source="douyin") for i in range(3)]
    other = make_contact("别处", source="taobao")
    client = console("operator")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url("bulk-tag/"),
            {"source": "douyin", "bulk_tag": tags["coffee"].pk, "op": "add", "scope": "all"},
            **htmx("contact-results"),
        )
    assert response.status_code == 200
    job = Job.objects.get(workspace=cast.workspace)
    assert f'id="job-{job.pk}"' in response.content.decode()
    assert job.params["filter"]["source"] == "douyin"
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.result["added"] == 3
    assert all(tag_names(c) == {"咖啡"} for c in douyin) and tag_names(other) == set()
    progress = client.get(f"/w/brand/jobs/{job.pk}/", **htmx(f"job-{job.pk}"))
    html = progress.content.decode()
    assert progress.status_code == 200 and "已完成" in html and "every 1s" not in html
    assert "<html" not in html
    assert client.get(f"/w/brand/jobs/{job.pk}/").status_code == 200  # a full page too
    # the owner sees every job; another non-admin staff member and outsiders do not
    assert console("owner").get(f"/w/brand/jobs/{job.pk}/").status_code == 200
    assert console("analyst").get(f"/w/brand/jobs/{job.pk}/").status_code == 404
    assert console("outsider").get(f"/w/brand/jobs/{job.pk}/").status_code == 404


def test_a_queued_job_polls(cast, console, tags, make_contact):
    make_contact("甲")
    client = console("owner")
    response = client.post(
        url("bulk-tag/"), {"bulk_tag": tags["vip"].pk, "op": "add", "scope": "all"}, **HTMX
    )
    # inside the test transaction the job is not run: it stays queued and the bar polls
    job = Job.objects.get()
    assert job.status == Job.Status.QUEUED
    assert 'hx-trigger="every 1s"' in response.content.decode()
    plain = client.post(url("bulk-tag/"), {"bulk_tag": tags["vip"].pk, "scope": "all"})
    assert plain.status_code == 302 and plain.url.startswith("/w/brand/jobs/")


def test_english_console(cast, console, make_contact):
    make_contact("甲")
    client = console("owner")
    client.post("/i18n/setlang/", {"language": "en", "next": url()})
    html = client.get(url()).content.decode()
    assert "Last seen" in html and "New contact" in html
