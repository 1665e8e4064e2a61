"""Contact export from the list: CSV / Excel of the current filter as a job, PII masked unless
an owner/admin asks for it, per-role access to the file, and audit rows for both steps."""

import io
from urllib.parse import quote

import openpyxl
import pytest

from siyu.contacts import actions as contact_actions
from siyu.core.audit import Actor
from siyu.core.models import AuditLog, Job

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def pool(cast, make_contact):
    system = Actor.system("test")
    ws = cast.workspace
    contact_actions.attribute_define(
        workspace=ws, actor=system, key="shoe_size", label="鞋码", type="number"
    )
    group = contact_actions.tag_group_create(workspace=ws, actor=system, name="会员等级")
    vip = contact_actions.tag_create(workspace=ws, actor=system, group=group, name="VIP")
    wang = make_contact("王小明", phone="13812345678", email="wang@example.com")
    contact_actions.contact_update(
        workspace=ws, actor=system, contact=wang, attributes={"shoe_size": 42}
    )
    contact_actions.contacts_tag(workspace=ws, actor=system, contact_ids=[wang.pk], add=[vip.pk])
    li = make_contact("李雷", phone="13900001111")
    make_contact("外人", phone="13700002222", workspace=cast.outsider_workspace)
    return {"wang": wang, "li": li, "vip": vip}


def export(client, capture, **data) -> Job:
    before = set(Job.objects.values_list("pk", flat=True))
    with capture(execute=True):
        response = client.post("/w/brand/contacts/export/", {"format": "csv", **data}, **HTMX)
    assert response.status_code == 200, response.content
    job = Job.objects.exclude(pk__in=before).get()
    job.refresh_from_db()
    assert job.kind == "contacts.export" and job.status == Job.Status.DONE, job.error
    assert f'id="export-{job.pk}"' in response.content.decode()
    return job


def download(client, job):
    return client.get(f"/w/brand/exports/{job.pk}/download/")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def csv_text(response) -> str:
    raw = body(response)
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
    return raw.decode("utf-8-sig")


def test_csv_export_masks_pii_and_has_chinese_headers(
    cast, console, pool, django_capture_on_commit_callbacks
):
    client = console("operator")
    job = export(client, django_capture_on_commit_callbacks, with_pii="1")  # not allowed
    assert job.total == 2 and job.result["rows"] == 2 and job.params["with_pii"] is False
    response = download(client, job)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    disposition = response["Content-Disposition"]
    assert "attachment" in disposition and "filename*=utf-8''" in disposition
    assert quote("客户导出-") in disposition and disposition.endswith(".csv")
    text = csv_text(response)
    lines = text.splitlines()
    assert lines[0].split(",")[:9] == [
        "姓名", "性别", "生日", "省份", "城市", "来源", "归属顾问", "手机号", "邮箱"
    ]  # fmt: skip
    assert lines[0].endswith("标签,首次出现,最近活跃,创建时间,鞋码")
    assert "王小明" in text and "138****5678" in text and "w***@example.com" in text
    assert "13812345678" not in text and "wang@example.com" not in text
    assert "VIP" in text and ",42" in text
    assert "外人" not in text
    assert len(lines) == 3


def test_xlsx_export_is_readable(cast, console, pool, django_capture_on_commit_callbacks):
    client = console("analyst")  # analysts may export
    job = export(client, django_capture_on_commit_callbacks, format="xlsx")
    response = download(client, job)
    assert response.status_code == 200 and "spreadsheetml" in response["Content-Type"]
    sheet = openpyxl.load_workbook(io.BytesIO(body(response))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "姓名" and rows[0][-1] == "鞋码"
    by_name = {r[0]: r for r in rows[1:]}
    assert set(by_name) == {"王小明", "李雷"}
    assert by_name["王小明"][7] == "138****5678" and by_name["王小明"][-1] == 42


def test_export_respects_the_filter(cast, console, pool, django_capture_on_commit_callbacks):
    client = console("owner")
    job = export(client, django_capture_on_commit_callbacks, tag=pool["vip"].pk)
    assert job.params["filter"]["tag_id"] == pool["vip"].pk
    text = csv_text(download(client, job))
    assert "王小明" in text and "李雷" not in text


def test_owner_may_export_clear_pii_and_audit_says_so(
    cast, console, pool, django_capture_on_commit_callbacks
):
    client = console("owner")
    job = export(client, django_capture_on_commit_callbacks, with_pii="1", q="13812345678")
    text = csv_text(download(client, job))
    assert "+8613812345678" in text or "13812345678" in text
    assert "wang@example.com" in text and "李雷" not in text
    created = AuditLog.objects.get(action="contacts.export")
    assert created.after["with_pii"] is True and created.after["format"] == "csv"
    assert created.object_id == str(job.pk) and created.actor == cast.owner.staff
    # the searched phone is in the audit log only masked; the job keeps it encrypted
    assert "13812345678" not in str(created.after) and "5678" in created.after["filter"]["q"]
    assert "13812345678" not in str(job.params)
    downloaded = AuditLog.objects.get(action="export.download")
    assert downloaded.after == {"format": "csv", "rows": 1, "with_pii": True}
    assert downloaded.object_id == str(job.pk)


def test_access_to_exports(cast, console, pool, django_capture_on_commit_callbacks):
    job = export(console("operator"), django_capture_on_commit_callbacks)
    # agents cannot export at all; outsiders do not see the workspace
    agent = console("agent")
    assert agent.post("/w/brand/contacts/export/", {"format": "csv"}).status_code == 403
    assert download(agent, job).status_code == 403
    outsider = console("outsider").post("/w/brand/contacts/export/", {"format": "csv"})
    assert outsider.status_code == 404
    assert download(console("outsider"), job).status_code == 404
    assert console("outsider").get(f"/w/other/exports/{job.pk}/download/").status_code == 404
    # another non-admin staff member cannot fetch the operator's file; the owner can
    assert download(console("analyst"), job).status_code == 404
    assert console("analyst").get(f"/w/brand/exports/{job.pk}/").status_code == 404
    assert download(console("admin"), job).status_code == 200
    assert AuditLog.objects.filter(action="export.download").count() == 1
    # a bad format is refused and nothing is queued
    n = Job.objects.count()
    bad = console("owner").post("/w/brand/contacts/export/", {"format": "pdf"}, **HTMX)
    assert bad.status_code == 422 and Job.objects.count() == n


def test_unfinished_export_polls_and_cannot_be_downloaded(cast, console, pool):
    client = console("owner")
    response = client.post("/w/brand/contacts/export/", {"format": "csv"}, **HTMX)
    job = Job.objects.get(kind="contacts.export")
    assert job.status == Job.Status.QUEUED and 'hx-trigger="every 1s"' in response.content.decode()
    assert download(client, job).status_code == 404
    assert not AuditLog.objects.filter(action="export.download").exists()
    plain = client.post("/w/brand/contacts/export/", {"format": "csv"})
    assert plain.status_code == 302 and plain.url.startswith("/w/brand/exports/")
    assert client.get(plain.url).status_code == 200


def test_list_shows_export_button_per_role(cast, console, pool):
    html = console("owner").get("/w/brand/contacts/").content.decode()
    assert "导出" in html and "包含完整手机号/邮箱" in html
    operator = console("operator").get("/w/brand/contacts/").content.decode()
    assert "导出" in operator and "包含完整手机号/邮箱" not in operator
    assert "/contacts/export/" not in console("agent").get("/w/brand/contacts/").content.decode()


def test_export_a_segments_members(pool, console, cast, django_capture_on_commit_callbacks):
    from siyu.segments import actions as segment_actions

    segment = segment_actions.segment_create(
        workspace=cast.workspace,
        actor=Actor.system("test"),
        name="名单",
        kind="static",
        contact_ids=[pool["li"].pk],
    )
    client = console("operator")
    page = client.get(f"/w/brand/segments/{segment.pk}/")
    assert f'name="segment" value="{segment.pk}"' in page.content.decode()
    job = export(client, django_capture_on_commit_callbacks, segment=str(segment.pk))
    text = csv_text(download(client, job))
    assert "李雷" in text and "王小明" not in text
    audit = AuditLog.objects.filter(action="contacts.export").latest("id")
    assert audit.after["filter"]["segment_id"] == segment.pk
