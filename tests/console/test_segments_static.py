"""Static segments in the console: from the contacts ticked on the contact list, from an
uploaded list of identities (matched and unmatched rows reported), more members from
another upload, a member removed; per role, a denied request changes nothing."""

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from siyu.contacts import actions as contact_actions
from siyu.core.audit import Actor
from siyu.core.models import AuditLog
from siyu.segments import actions
from siyu.segments.models import Segment, SegmentMember

HTMX = {"HTTP_HX_REQUEST": "true"}
SYSTEM = Actor.system("test")


@pytest.fixture
def people(cast, make_contact):
    wang = make_contact("王小明", phone="13812345678", email="wang@example.com")
    li = make_contact("李雷", phone="13900001111", user_id="u-li")
    han = make_contact("韩梅梅", owner=cast.agent)
    contact_actions.identity_add(
        workspace=cast.workspace,
        actor=SYSTEM,
        contact=han,
        kind="wechat_openid",
        value="o-han",
        app_id="wx-app",
    )
    stranger = make_contact("外人", phone="13700002222", workspace=cast.outsider_workspace)
    return {"wang": wang, "li": li, "han": han, "stranger": stranger}


def members(segment) -> set[int]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True))


def csv_file(text: str, encoding: str = "utf-8", name: str = "名单.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


# --- from the contact list ---------------------------------------------------------------------


def test_contact_list_offers_the_static_picker_to_managers(cast, console, people):
    actions.segment_create(
        workspace=cast.workspace, actor=SYSTEM, name="老名单", kind="static", contact_ids=[]
    )
    html = console("operator").get("/w/brand/contacts/").content.decode()
    assert 'id="segment-add"' in html and "老名单" in html and "新建静态分群" in html
    analyst = console("analyst").get("/w/brand/contacts/").content.decode()
    assert 'id="segment-add"' not in analyst


def test_selection_makes_a_new_static_segment(cast, console, people):
    ids = [people["wang"].pk, people["li"].pk, people["stranger"].pk]
    response = console("operator").post(
        "/w/brand/segments/from-selection/", {"ids": ids, "name": "活动名单"}, **HTMX
    )
    assert response.status_code == 200
    segment = Segment.objects.get(name="活动名单")
    assert segment.kind == "static" and segment.size == 2
    assert members(segment) == {people["wang"].pk, people["li"].pk}  # never another workspace's
    html = response.content.decode()
    assert "勾选的 2 位客户中有 2 位新加入“活动名单”。" in html
    assert f"/w/brand/segments/{segment.pk}/" in html
    assert 'id="segment-add"' in html  # the picker again, now offering the new segment
    assert AuditLog.objects.filter(action="segment.create").count() == 1


def test_selection_adds_to_an_existing_static_segment(cast, console, people):
    segment = actions.segment_create(
        workspace=cast.workspace,
        actor=SYSTEM,
        name="老名单",
        kind="static",
        contact_ids=[people["wang"].pk],
    )
    response = console("admin").post(
        "/w/brand/segments/from-selection/",
        {"ids": [people["wang"].pk, people["han"].pk], "segment_id": segment.pk},
        **HTMX,
    )
    assert response.status_code == 200
    assert "勾选的 2 位客户中有 1 位新加入“老名单”。" in response.content.decode()
    assert members(segment) == {people["wang"].pk, people["han"].pk}


def test_selection_errors_and_denials_change_nothing(cast, console, people):
    client = console("operator")
    nothing = client.post("/w/brand/segments/from-selection/", {"name": "空"}, **HTMX)
    assert nothing.status_code == 422 and "请至少勾选一位客户" in nothing.content.decode()
    unnamed = client.post("/w/brand/segments/from-selection/", {"ids": [people["wang"].pk]}, **HTMX)
    assert unnamed.status_code == 422
    dynamic = actions.segment_create(
        workspace=cast.workspace, actor=SYSTEM, name="动态", rule={"type": "and", "rules": []}
    )
    into_dynamic = client.post(
        "/w/brand/segments/from-selection/",
        {"ids": [people["wang"].pk], "segment_id": dynamic.pk},
        **HTMX,
    )
    assert into_dynamic.status_code == 404
    denied = console("analyst").post(
        "/w/brand/segments/from-selection/", {"ids": [people["wang"].pk], "name": "x"}, **HTMX
    )
    assert denied.status_code == 403
    assert list(Segment.objects.values_list("name", flat=True)) == ["动态"]
    # without htmx: back to the list with the message
    plain = client.post("/w/brand/segments/from-selection/", {"name": "x"}, follow=True)
    assert plain.redirect_chain[-1][0] == "/w/brand/contacts/"
    assert "请至少勾选一位客户" in plain.content.decode()


# --- from an uploaded list ----------------------------------------------------------------------


def test_static_new_page_for_managers_only(cast, console):
    page = console("operator").get("/w/brand/segments/static/new/")
    assert page.status_code == 200 and "上传名单创建静态分群" in page.content.decode()
    assert console("analyst").get("/w/brand/segments/static/new/").status_code == 403
    denied = console("agent").post(
        "/w/brand/segments/static/new/", {"name": "x", "file": csv_file("手机号\n13812345678\n")}
    )
    assert denied.status_code == 403
    assert not Segment.objects.exists()


def test_upload_of_phones_reports_matched_and_unmatched_rows(cast, console, people):
    text = "手机号\n138 1234 5678\n+8613900001111\n13700002222\n12345\n13812345678\n"
    response = console("operator").post(
        "/w/brand/segments/static/new/",
        {"name": "门店名单", "file": csv_file(text, "gb18030")},  # Excel on Chinese Windows
    )
    assert response.status_code == 200
    segment = Segment.objects.get(name="门店名单")
    assert segment.kind == "static" and segment.size == 2
    assert members(segment) == {people["wang"].pk, people["li"].pk}
    report = response.context["report"]
    assert (report.rows, report.matched_rows, report.unmatched_count) == (5, 3, 2)
    # 13700002222 belongs to a contact of another workspace: not matched here
    assert [(u.row, u.value) for u in report.unmatched] == [(4, "13700002222"), (5, "12345")]
    html = response.content.decode()
    assert "读取 5 行" in html and "3 行按手机号匹配成功" in html and "2 行未匹配" in html
    assert "没有客户拥有该身份" in html and "不是有效的手机号" in html
    assert f"/w/brand/segments/{segment.pk}/" in html


@pytest.mark.parametrize(
    ("header", "value", "who"),
    [
        ("邮箱", "WANG@example.com", "wang"),
        ("user_id", "u-li", "li"),
        ("openid", "o-han", "han"),
    ],
)
def test_upload_matches_other_identity_kinds(cast, console, people, header, value, who):
    response = console("owner").post(
        "/w/brand/segments/static/new/",
        {"name": f"按{header}", "file": csv_file(f"{header}\n{value}\nnobody\n")},
    )
    assert response.status_code == 200
    assert members(Segment.objects.get(name=f"按{header}")) == {people[who].pk}
    assert response.context["report"].unmatched_count == 1


def test_upload_errors_keep_the_form(cast, console, people):
    client = console("operator")
    no_column = client.post(
        "/w/brand/segments/static/new/", {"name": "坏", "file": csv_file("姓名\n王小明\n")}
    )
    assert no_column.status_code == 422
    assert "找不到身份列" in no_column.content.decode()
    no_file = client.post("/w/brand/segments/static/new/", {"name": "坏"})
    assert no_file.status_code == 422 and "请选择要上传的文件" in no_file.content.decode()
    no_name = client.post("/w/brand/segments/static/new/", {"file": csv_file("手机号\n1\n")})
    assert no_name.status_code == 422 and "请填写分群名称" in no_name.content.decode()
    assert not Segment.objects.exists()


def test_upload_adds_to_an_existing_segment_and_a_member_is_removed(cast, console, people):
    segment = actions.segment_create(
        workspace=cast.workspace,
        actor=SYSTEM,
        name="名单",
        kind="static",
        contact_ids=[people["wang"].pk],
    )
    book = openpyxl.Workbook()
    book.active.append(["email"])
    book.active.append(["wang@example.com"])
    book.active.append(["nobody@example.com"])
    buffer = io.BytesIO()
    book.save(buffer)
    upload = SimpleUploadedFile("名单.xlsx", buffer.getvalue())
    client = console("operator")
    response = client.post(f"/w/brand/segments/{segment.pk}/upload/", {"file": upload})
    assert response.status_code == 200
    assert response.context["added"] == 0 and response.context["report"].unmatched_count == 1
    phones = csv_file("phone\n13900001111\n")
    client.post(f"/w/brand/segments/{segment.pk}/upload/", {"file": phones})
    assert members(segment) == {people["wang"].pk, people["li"].pk}
    page = client.get(f"/w/brand/segments/{segment.pk}/").content.decode()
    assert "从名单添加" in page and "移除" in page

    denied = console("analyst").post(
        f"/w/brand/segments/{segment.pk}/members/remove/", {"contact_id": people["li"].pk}
    )
    assert denied.status_code == 403 and members(segment) == {people["wang"].pk, people["li"].pk}
    removed = client.post(
        f"/w/brand/segments/{segment.pk}/members/remove/", {"contact_id": people["li"].pk}
    )
    assert removed.status_code == 302
    assert members(segment) == {people["wang"].pk}
    bad = client.post(f"/w/brand/segments/{segment.pk}/upload/", {"file": csv_file("x\n1\n")})
    assert bad.status_code == 422 and "找不到身份列" in bad.content.decode()


def test_upload_to_a_dynamic_segment_is_not_found(cast, console, people):
    dynamic = actions.segment_create(
        workspace=cast.workspace, actor=SYSTEM, name="动态", rule={"type": "and", "rules": []}
    )
    response = console("owner").post(
        f"/w/brand/segments/{dynamic.pk}/upload/", {"file": csv_file("手机号\n13812345678\n")}
    )
    assert response.status_code == 404
