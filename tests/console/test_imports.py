"""The import wizard in the console: upload, match the columns with a preview, start (once,
however often it is clicked), follow the job and download the error report; the list of
imports; and roles that may not import change nothing."""

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from siyu.accounts import actions as account_actions
from siyu.contacts.models import Contact
from siyu.core.models import AuditLog, Job
from tests.conftest import PASSWORD
from tests.contacts.importing import (  # noqa: F401 - fresh_imports is an autouse fixture
    csv_bytes,
    fresh_imports,
    uploads_left,
    xlsx_bytes,
)
from tests.helpers import db_snapshot, snapshot_diff

HTMX = {"HTTP_HX_REQUEST": "true"}
ROWS = [
    ["客户姓名", "联系方式", "备注", "城市"],
    ["王小明", "13812345678", "老客", "上海"],
    ["李雷", "12345", "", "北京"],
]


def upload(client, content: bytes, name: str = "客户.csv", kind: str = "contacts"):
    return client.post(
        "/w/brand/imports/new/", {"kind": kind, "file": SimpleUploadedFile(name, content)}
    )


def test_the_wizard_end_to_end(cast, console, django_capture_on_commit_callbacks):
    client = console("operator")
    page = client.get("/w/brand/imports/new/").content.decode()
    assert "上传文件" in page and "GBK" in page and 'enctype="multipart/form-data"' in page
    # step 1: upload a GBK file
    response = upload(client, csv_bytes(ROWS, "gbk"))
    assert response.status_code == 302 and response.url.startswith("/w/brand/imports/new/")
    mapping_url = response.url
    # step 2: the columns are recognised, the first rows previewed and checked
    page = client.get(mapping_url).content.decode()
    assert "GBK / GB18030" in page and "客户.csv" in page
    assert re.search(r'name="col-0".*?<option value="name" selected', page, re.S)
    assert re.search(r'name="col-1".*?<option value="phone" selected', page, re.S)
    assert "不导入" in page and "王小明" in page
    assert "不是有效的手机号：12345" in page  # row 3 checked on its own, before importing
    # change a drop-down: the preview is redrawn (htmx), nothing is started
    preview = client.post(
        mapping_url,
        {"col-0": "name", "col-1": "", "col-2": "", "col-3": "city"},
        HTTP_HX_TARGET="import-preview",
        **HTMX,
    )
    text = preview.content.decode()
    assert preview.status_code == 200 and text.startswith('<div id="import-preview">')
    assert "请指定手机号、邮箱" in text and "disabled" in text
    assert not Job.objects.exists()
    # starting without an identity column is refused with the reason
    refused = client.post(mapping_url, {"col-0": "name", "col-1": "", "action": "start"})
    assert refused.status_code == 422 and "请指定手机号" in refused.content.decode()
    assert not Job.objects.exists()
    # step 3: start; the job runs and the page shows the result
    form = {"col-0": "name", "col-1": "phone", "col-2": "", "col-3": "city", "action": "start"}
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(mapping_url, form)
    job = Job.objects.get()
    assert started.status_code == 302 and started.url == f"/w/brand/imports/{job.pk}/"
    job.refresh_from_db()
    assert job.status == "done" and job.params["lang"] == "zh-hans"
    assert (job.result["created"], job.result["failed"]) == (1, 1)
    audit = AuditLog.objects.get(action="contacts.import")
    assert audit.object_id == str(job.pk) and audit.actor == cast.operator.staff
    assert audit.after["mapping"] == {"客户姓名": "name", "联系方式": "phone", "城市": "city"}
    # a second click on "start" (or a reload) leads to the same import; nothing runs twice
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(mapping_url, form)
    assert again.status_code == 302 and again.url == started.url
    assert client.get(mapping_url).url == started.url
    assert Job.objects.count() == 1 and Contact.objects.count() == 1
    status = client.get(started.url).content.decode()
    assert "新建" in status and "行失败" in status and "下载错误报告" in status
    assert "不是有效的手机号：1***5" in status and "12345" not in status  # masked in the result
    partial = client.get(started.url, HTTP_HX_TARGET=f"import-{job.pk}", **HTMX)
    assert partial.content.decode().startswith(f'<div class="job" id="import-{job.pk}"')
    assert "every 1s" not in partial.content.decode()
    report = client.get(f"/w/brand/imports/{job.pk}/report/")
    assert report.status_code == 200 and "filename*=utf-8''" in report["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows == [
        ROWS[0] + ["行号", "错误原因"],
        ROWS[2] + ["3", "联系方式：不是有效的手机号：12345"],
    ]
    assert AuditLog.objects.filter(action="import.report_download").count() == 1
    # the list of imports
    listing = client.get("/w/brand/imports/").content.decode()
    assert f'id="import-row-{job.pk}"' in listing and "客户.csv" in listing


def test_a_click_racing_another_still_in_flight_lands_on_the_list(cast, console, monkeypatch):
    """Two clicks on "start" at once: the second finds the upload claimed before the first
    has committed its job. It was a 404 page (the browser shows the last response)."""
    from siyu.contacts.imports import jobs
    from siyu.contacts.imports.uploads import upload_claim

    client = console("operator")
    mapping_url = upload(client, csv_bytes(ROWS)).url

    def the_other_click_claimed_it_first(stored):
        assert upload_claim(stored)  # the first click, its job not committed yet
        return upload_claim(stored)

    monkeypatch.setattr(jobs, "upload_claim", the_other_click_claimed_it_first)
    response = client.post(mapping_url, {"col-0": "name", "col-1": "phone", "action": "start"})
    assert response.status_code == 302 and response.url == "/w/brand/imports/"
    assert not Job.objects.exists()


def test_orders_wizard_and_xlsx(cast, console, make_contact, django_capture_on_commit_callbacks):
    make_contact("王", phone="13812345678")
    client = console("admin")
    rows = [
        ["订单号", "手机号", "实付金额", "下单时间"],
        ["X-1", "13812345678", 99, "2026-03-01 10:00"],
    ]
    response = upload(client, xlsx_bytes(rows), "订单.xlsx", kind="orders")
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert "Excel (.xlsx)" in page and "实付金额（元）" in page
    form = {"col-0": "external_id", "col-1": "phone", "col-2": "total", "col-3": "placed_at"}
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(response.url, {**form, "action": "start"})
    job = Job.objects.get()
    assert started.status_code == 302 and job.kind == "orders.import"
    job.refresh_from_db()
    assert job.result["created"] == 1 and job.result["failed"] == 0
    assert "1 / 1" in client.get(started.url).content.decode()


def test_unreadable_files_are_refused_on_the_upload_page(cast, console):
    client = console("operator")
    response = upload(client, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, "old.xls")
    assert response.status_code == 422 and "无法读取旧版 Excel 文件" in response.content.decode()
    missing = client.post("/w/brand/imports/new/", {"kind": "contacts"})
    assert missing.status_code == 422 and "请选择要导入的文件" in missing.content.decode()
    assert uploads_left() == []


def test_templates_download_with_chinese_headers(cast, console):
    response = console("operator").get("/w/brand/imports/template/orders.csv")
    assert response.status_code == 200
    assert response.content.decode("utf-8-sig").startswith("订单号,手机号,客户姓名,实付金额")
    assert console("operator").get("/w/brand/imports/template/other.csv").status_code == 404


@pytest.mark.parametrize("role", ["analyst", "agent"])
def test_roles_that_may_not_import_are_refused_and_nothing_changes(cast, console, role):
    client = console(role)
    before = db_snapshot()
    assert client.get("/w/brand/imports/").status_code == 403
    assert client.get("/w/brand/imports/new/").status_code == 403
    assert upload(client, csv_bytes(ROWS)).status_code == 403
    assert snapshot_diff(before, db_snapshot()) == [] and uploads_left() == []
    assert "/imports/" not in client.get("/w/brand/contacts/").content.decode()


def test_uploads_and_imports_belong_to_who_made_them(
    cast, console, django_capture_on_commit_callbacks
):
    operator = console("operator")
    mapping_url = upload(operator, csv_bytes(ROWS)).url
    # another member cannot open someone else's upload; an outsider not even the workspace
    assert console("admin").get(mapping_url).status_code == 404
    assert console("outsider").get(mapping_url).status_code == 404
    form = {"col-0": "name", "col-1": "phone", "action": "start"}
    assert console("admin").post(mapping_url, form).status_code == 404
    assert not Job.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        job_url = operator.post(mapping_url, form).url
    job = Job.objects.get()
    assert console("admin").get(job_url).status_code == 200  # admins follow every import
    other_operator = Client()
    member = account_actions.staff_add(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        email="op2@brand.test",
        role="operator",
        name="op2",
        password=PASSWORD,
    )
    other_operator.force_login(member.staff)
    assert other_operator.get(job_url).status_code == 404
    assert other_operator.get(f"/w/brand/imports/{job.pk}/report/").status_code == 404
    assert f"import-row-{job.pk}" not in other_operator.get("/w/brand/imports/").content.decode()
    outsider = console("outsider")
    assert outsider.get(job_url).status_code == 404
    assert outsider.get(f"/w/other/imports/{job.pk}/").status_code == 404


def test_navigation_and_contact_list_link_to_imports(cast, console):
    page = console("operator").get("/w/brand/contacts/").content.decode()
    assert 'href="/w/brand/imports/"' in page and 'href="/w/brand/imports/new/"' in page
    assert 'href="/w/brand/imports/"' not in console("analyst").get("/w/brand/").content.decode()


def test_uploading_needs_csrf(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.operator.staff)
    assert upload(client, csv_bytes(ROWS)).status_code == 403
    assert uploads_left() == []


def test_the_wizard_speaks_english_on_request(cast, console):
    client = console("operator")
    client.cookies["django_language"] = "en"
    mapping_url = upload(client, csv_bytes(ROWS)).url
    page = client.get(mapping_url).content.decode()
    assert "Match the columns" in page and "4 columns" in page and "Do not import" in page
    assert "12345" in page and "not a valid phone number" in page.lower()
