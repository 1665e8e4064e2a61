"""Importing contacts: reading CSV in every encoding and XLSX, the automatic mapping of
Chinese and English headers, good rows in and bad rows reported with their row number and
reason, a second import of the same file changing nothing, a crashed job re-run without
doubles, the export read back, and the API with its permissions."""

import datetime
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.test import override_settings

from siyu.contacts import actions
from siyu.contacts.export import contacts_export_start, export_path
from siyu.contacts.imports import contacts as contact_import
from siyu.contacts.imports import jobs as import_jobs
from siyu.contacts.imports.mapping import CONTACTS, ORDERS, auto_map, fold
from siyu.contacts.imports.reading import ImportFileError, open_table
from siyu.contacts.models import Contact, ContactTag, Identity, Tag, TimelineEntry
from siyu.contacts.queries import ContactFilter
from siyu.core.jobs import job_run
from siyu.core.models import AuditLog, Job
from tests.contacts.importing import (  # noqa: F401 - fresh_imports is an autouse fixture
    csv_bytes,
    fresh_imports,
    post_import,
    report_rows,
    run_import,
    uploads_left,
    xlsx_bytes,
)
from tests.helpers import all_tables_text, db_snapshot, error_of, snapshot_diff

ROWS = [
    ["姓名", "手机号", "邮箱", "性别", "生日", "城市", "标签", "鞋码"],
    ["王小明", "138 1234 5678", "wang@example.com", "男", "1990/1/2", "上海", "VIP、新客", "42"],
    ["李雷", "13900001111", "", "女", "", "北京", "VIP", ""],
    ["坏手机", "123", "", "", "", "", "", ""],
    ["", "", "", "", "", "", "", ""],  # an empty row is skipped but keeps its number
    ["坏生日", "13700002222", "", "", "明天", "", "", ""],
    ["没身份", "", "", "", "", "杭州", "", ""],
    ["坏鞋码", "13600003333", "", "", "", "", "", "大号"],
]


@pytest.fixture
def schema(cast, system_actor):
    actions.attribute_define(
        workspace=cast.workspace, actor=system_actor, key="shoe_size", label="鞋码", type="number"
    )


# --- reading -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, delimiter",
    [
        ("utf-8", ","),
        ("utf-8-sig", ","),
        ("gbk", ","),
        ("gb18030", ";"),
        ("utf-16", "\t"),  # Excel's "Unicode text"
    ],
)
def test_csv_in_every_encoding_reads_the_same(tmp_path, encoding, delimiter):
    path = tmp_path / "f.csv"
    path.write_bytes(csv_bytes(ROWS[:3], encoding, delimiter))
    table = open_table(path)
    assert table.fmt == "csv" and table.delimiter == delimiter
    assert table.header == ROWS[0]
    rows = list(table.rows())
    assert [n for n, _ in rows] == [2, 3]
    assert rows[0][1][0] == "王小明" and rows[1][1][6] == "VIP"


def test_xlsx_cells_become_text(tmp_path):
    path = tmp_path / "f.xlsx"
    path.write_bytes(
        xlsx_bytes(
            [
                ["姓名", "手机号", "生日", "下单时间", "金额", "是否会员"],
                [
                    "王",
                    13812345678,
                    datetime.date(1990, 1, 2),
                    datetime.datetime(2026, 1, 31, 14, 5),
                    199.9,
                    True,
                ],
                [None, None, None, None, None, None],
                ["李", "13900001111", None, None, 20, False],
            ]
        )
    )
    table = open_table(path)
    assert table.fmt == "xlsx" and table.header[0] == "姓名"
    rows = list(table.rows())
    assert rows[0] == (
        2,
        ["王", "13812345678", "1990-01-02", "2026-01-31 14:05:00", "199.9", "true"],
    )
    assert rows[1] == (4, ["李", "13900001111", "", "", "20", "false"])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
        (b"PK\x03\x04 not really a zip", "Excel"),
        (b"\x00\x01\x02binary", "not a text"),
        (b"\n\nname\n", "header"),
        ("姓名\n张三\n".encode() + b"\xff\xfe\xfa", "neither UTF-8 nor GBK (line 3 "),
        # a UTF-8 file with one Windows-1252 byte far down: the line is named
        (("姓名,城市\n" + "张三,上海\n" * 300_000).encode() + b"Caf\xe9\n", "(line 300002 "),
    ],
)
def test_unreadable_files_say_why(tmp_path, content, message):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as exc:
        open_table(path).count()
    assert message in exc.value.message and exc.value.details == {"field": "file"}


def _repacked(content: bytes, add: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An xlsx with parts added or replaced, every part stored with `method`."""
    source = zipfile.ZipFile(io.BytesIO(content))
    parts = {name: source.read(name) for name in source.namelist()}
    parts.update(add)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data, compress_type=method)
    return out.getvalue()


def _with_shared_strings(content: bytes, strings: int) -> bytes:
    manifest = zipfile.ZipFile(io.BytesIO(content)).read("[Content_Types].xml")
    manifest = manifest.replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    sst = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + b"".join(b"<si><t>%d</t></si>" % (i % 100) for i in range(strings))
        + b"</sst>"
    )
    return _repacked(content, {"[Content_Types].xml": manifest, "xl/sharedStrings.xml": sst})


@override_settings(SIYU_IMPORT_MAX_BYTES=100_000)
def test_xlsx_parts_read_whole_are_capped_so_a_zip_bomb_is_refused(tmp_path, monkeypatch):
    """openpyxl loads the shared strings (and styles, workbook, ...) whole into memory even in
    read-only mode: a few kilobytes that unpack to megabytes of tiny strings took minutes
    and gigabytes. The sheet itself is streamed and only counts towards the total."""
    from siyu.contacts.imports import reading

    content = xlsx_bytes([["手机", "姓名"], ["13812345678", "王"]])
    path = tmp_path / "f.xlsx"
    path.write_bytes(_with_shared_strings(content, 200))  # a normal shared strings part
    assert list(open_table(path).rows()) == [(2, ["13812345678", "王"])]
    bomb = _with_shared_strings(content, 40_000)  # ~600 kB unpacked, under 20x the cap
    assert len(bomb) < 100_000
    path.write_bytes(bomb)
    with pytest.raises(ImportFileError) as exc:
        open_table(path)
    assert "too large once unpacked" in exc.value.message
    # any other part openpyxl reads whole (here the styles) has its own cap
    monkeypatch.setattr(reading, "_XLSX_PART_CAP", 50_000)
    styles = zipfile.ZipFile(io.BytesIO(content)).read("xl/styles.xml")
    path.write_bytes(
        _repacked(content, {"xl/styles.xml": styles + b"<!--" + b"x" * 60_000 + b"-->"})
    )
    with pytest.raises(ImportFileError, match="too large once unpacked"):
        open_table(path)
    # compression methods no spreadsheet writes (bzip2 inflates without a bound per read)
    path.write_bytes(_repacked(content, {}, method=zipfile.ZIP_BZIP2))
    with pytest.raises(ImportFileError, match="not a readable Excel"):
        open_table(path)


def test_a_cell_far_to_the_right_does_not_widen_every_row(tmp_path, monkeypatch):
    """A stray value in column XFD made every row 16,384 cells long, each turned into text."""
    from siyu.contacts.imports import reading

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["手机", "姓名"])
    for row in range(2, 12):
        sheet.cell(row=row, column=1, value=f"1381234{row:04d}")
        sheet.cell(row=row, column=16384, value="x")
    out = io.BytesIO()
    book.save(out)
    path = tmp_path / "f.xlsx"
    path.write_bytes(out.getvalue())
    calls = []
    real = reading.cell_text
    monkeypatch.setattr(reading, "cell_text", lambda v: calls.append(v) or real(v))
    table = open_table(path)
    assert table.header == ["手机", "姓名"]
    rows = list(table.rows())
    assert [n for n, _ in rows] == list(range(2, 12)) and rows[0][1] == ["13812340002", ""]
    assert len(calls) < 100  # 2 a row; it was 16,384 a row
    sheet.cell(row=1, column=16384, value="备注")  # a header that wide is refused
    out = io.BytesIO()
    book.save(out)
    path.write_bytes(out.getvalue())
    with pytest.raises(ImportFileError, match="more than 500 columns"):
        open_table(path)


# --- mapping -------------------------------------------------------------------------------------


def test_headers_map_in_chinese_english_and_the_exports_own(cast, schema):
    from siyu.contacts.models import AttributeDefinition

    attrs = list(AttributeDefinition.objects.filter(workspace=cast.workspace))
    headers = [
        "手机号码（必填）",
        "E-mail",
        "User_ID",
        "客户姓名",
        "Tags",
        "归属顾问",
        "鞋码",
        "shoe_size",
        "首次出现",
        "备注",
        "电话",
        "unionid",
        "external_userid",
        "行号",
    ]
    assert auto_map(CONTACTS, headers, attrs) == [
        "phone",
        "email",
        "user_id",
        "name",
        "tags",
        "owner",
        "attr:shoe_size",
        "",
        "",
        "",
        "",
        "unionid",
        "external_userid",
        "",
    ]
    orders = [
        "订单编号",
        "买家手机号",
        "实付金额(元)",
        "付款时间",
        "商品名称",
        "数量",
        "单价",
        "店铺",
    ]
    assert auto_map(ORDERS, orders, []) == [
        "external_id",
        "phone",
        "total",
        "placed_at",
        "item_name",
        "quantity",
        "price",
        "channel",
    ]
    assert fold(" Phone Number ") == "phonenumber"
    assert fold("\ufeff手机号\u200b") == "手机号"  # a second BOM, a zero-width space


# --- importing contacts -----------------------------------------------------------------------


def test_good_rows_are_imported_and_bad_rows_reported(
    cast, schema, api, django_capture_on_commit_callbacks
):
    client = api("operator")
    job = run_import(
        client, django_capture_on_commit_callbacks, "contacts", csv_bytes(ROWS, "gbk"), "客户.csv"
    )
    result = job.result
    assert result["encoding"] == "gb18030"
    assert (result["rows"], result["created"], result["failed"]) == (6, 2, 4)
    assert job.total == 6 and job.done == 6
    wang = Contact.objects.get(name="王小明")
    assert wang.source == "import" and wang.gender == "male" and wang.city == "上海"
    assert wang.birthday == datetime.date(1990, 1, 2) and wang.attributes == {"shoe_size": 42}
    assert sorted(wang.identities.values_list("kind", "masked")) == [
        ("email", "w***@example.com"),
        ("phone", "138****5678"),
    ]
    assert sorted(ContactTag.objects.filter(contact=wang).values_list("tag__name", flat=True)) == [
        "VIP",
        "新客",
    ]
    assert set(Tag.objects.values_list("group__name", flat=True)) == {"导入标签"}
    assert not Contact.objects.filter(name__startswith="坏").exists()
    # the errors name the row (header = row 1; the empty row 5 keeps its number) and column
    errors = {e["row"]: e for e in result["errors"]}
    assert sorted(errors) == [4, 6, 7, 8]
    assert errors[4]["column"] == "手机号" and "not a valid phone number" in errors[4]["message"]
    # the job's result (in the database, shown to admins too) masks the phone; the report,
    # which holds the row as it was sent anyway, quotes it
    assert errors[4]["reason"] == "不是有效的手机号：***"
    assert errors[6]["column"] == "生日" and "明天" in errors[6]["message"]
    assert errors[7]["column"] == "" and "no phone, email" in errors[7]["message"]
    assert errors[8]["column"] == "鞋码"
    rows = report_rows(client, job)
    assert rows[0] == ROWS[0] + ["行号", "错误原因"]
    assert [r[-2] for r in rows[1:]] == ["4", "6", "7", "8"]
    assert rows[1][:2] == ["坏手机", "123"] and rows[1][-1] == "手机号：不是有效的手机号：123"
    assert "import.report_download" in AuditLog.objects.values_list("action", flat=True)
    # the uploaded file (phones in clear) is gone once imported
    assert uploads_left() == [f"{job.params['upload']}.started"]


def test_the_same_file_again_changes_nothing(cast, schema, api, django_capture_on_commit_callbacks):
    client = api("operator")
    content = xlsx_bytes(ROWS)
    run_import(client, django_capture_on_commit_callbacks, "contacts", content, "a.xlsx")
    before = db_snapshot()
    audit_before = AuditLog.objects.count()
    job = run_import(client, django_capture_on_commit_callbacks, "contacts", content, "a.xlsx")
    after = db_snapshot()
    assert snapshot_diff(before, after) == ["core.AuditLog", "core.Job"]
    # only the import itself is audited: no contact, timeline or tag row was written
    new = AuditLog.objects.filter(pk__gt=before["core.AuditLog"][-1]["id"])
    assert list(new.values_list("action", flat=True)) == ["contacts.import"]
    assert AuditLog.objects.count() == audit_before + 1
    assert (job.result["created"], job.result["updated"], job.result["unchanged"]) == (0, 0, 2)
    assert job.result["failed"] == 4


def test_rows_update_only_what_differs_and_blanks_never_clear(
    cast, schema, api, make_contact, django_capture_on_commit_callbacks
):
    old = make_contact("老王", phone="13812345678", source="douyin")
    actions.contact_update(
        workspace=cast.workspace, actor=cast.owner.actor, contact=old, profile={"city": "深圳"}
    )
    timeline = TimelineEntry.objects.filter(contact=old).count()
    rows = [
        ["手机号", "姓名", "城市", "邮箱", "来源", "标签", "归属顾问"],
        [
            "+86 138-1234-5678",
            "王小明",
            "",
            "wang@example.com",
            "小红书",
            "VIP",
            "operator@brand.test",
        ],
        ["13812345678", "", "", "", "", "VIP", ""],  # the same contact again: nothing to do
    ]
    job = run_import(api("admin"), django_capture_on_commit_callbacks, "contacts", csv_bytes(rows))
    assert (job.result["created"], job.result["updated"], job.result["unchanged"]) == (0, 1, 1)
    old.refresh_from_db()
    assert old.name == "王小明" and old.city == "深圳"  # the blank city did not clear it
    assert old.source == "douyin"  # where a contact was first met is not rewritten
    assert old.owner_id == cast.operator.staff.pk
    assert set(old.identities.values_list("kind", flat=True)) == {"phone", "email"}
    kinds = list(
        TimelineEntry.objects.filter(contact=old).order_by("id").values_list("kind", flat=True)
    )[timeline:]
    assert kinds == ["updated", "identity_added", "tag_added", "owner_changed"]


def test_numbers_spreadsheets_mangled_import_right_or_fail_saying_why(
    cast, api, system_actor, django_capture_on_commit_callbacks
):
    """A phone from a number column comes as 13800138000.0 (pandas, WPS) or, in an xlsx, as
    a float; Excel writes long numbers it shortened as 1.38001E+10 into a CSV. Whole digits
    are imported; shortened ones (the last digits are lost) fail instead of becoming someone
    else's phone or user ID. Excel's CSV date-times at midnight are dates."""
    capture = django_capture_on_commit_callbacks
    client = api("admin")
    actions.attribute_define(
        workspace=cast.workspace, actor=system_actor, key="joined", label="入会日期", type="date"
    )
    rows = [
        ["手机", "用户ID", "姓名", "生日", "入会日期"],
        ["13800138000.0", "", "浮点", "1990/1/2 0:00", "2024/3/5"],
        ["1.3800138001E+10", "", "科学计数完整", "1990-01-03 00:00:00", "45356"],
        ["1.38001E+10", "", "科学计数截断", "", ""],
        ["13800138002", "1.23457E+17", "会员号截断", "", ""],
        ["13800138003", "123456789012345678", "会员号完整", "", "2024-03-05"],
    ]
    job = run_import(client, capture, "contacts", csv_bytes(rows))
    assert (job.result["created"], job.result["failed"]) == (3, 2), job.result
    phones = dict(Identity.objects.filter(kind="phone").values_list("contact__name", "masked"))
    assert phones == {
        "浮点": "138****8000",
        "科学计数完整": "138****8001",
        "会员号完整": "138****8003",
    }
    birthdays = dict(Contact.objects.values_list("name", "birthday"))
    assert birthdays["浮点"] == datetime.date(1990, 1, 2)
    assert birthdays["科学计数完整"] == datetime.date(1990, 1, 3)
    assert Identity.objects.get(kind="user_id").contact.name == "会员号完整"
    joined = dict(Contact.objects.values_list("name", "attributes"))
    assert (
        joined["浮点"] == joined["科学计数完整"] == joined["会员号完整"] == {"joined": "2024-03-05"}
    )
    errors = {e["row"]: e for e in job.result["errors"]}
    assert errors[4]["column"] == "手机" and "scientific notation" in errors[4]["message"]
    assert "1.38001E+10" not in errors[4]["message"]  # a phone: masked in the job's result
    assert errors[5]["column"] == "用户ID" and "1.23457E+17" in errors[5]["message"]
    # an xlsx number cell holding a phone, written as a float
    xlsx = xlsx_bytes([["手机", "姓名"], [13800138004.0, "表格"], [13800138000, "浮点"]])
    job = run_import(client, capture, "contacts", xlsx, "f.xlsx")
    assert (job.result["created"], job.result["unchanged"], job.result["failed"]) == (1, 1, 0)
    assert Identity.objects.get(contact__name="表格").masked == "138****8004"


def test_phones_and_emails_of_failed_rows_stay_out_of_the_database(
    cast, api, django_capture_on_commit_callbacks
):
    """The job's result is kept in the database and shown to owners and admins without a
    reveal: invalid phones and emails are masked there; the report (audited) has the row as
    it was sent."""
    rows = [
        ["手机", "邮箱", "姓名"],
        ["1380013800", "", "少一位"],
        ["", "wang@@example.com", "坏邮箱"],
        ["139-0013-80000", "", "多一位"],
    ]
    client = api("operator")
    job = run_import(client, django_capture_on_commit_callbacks, "contacts", csv_bytes(rows))
    assert job.result["failed"] == 3
    text = all_tables_text()
    for clear in ("1380013800", "wang@@example.com", "139-0013-80000"):
        assert clear not in text
    errors = {e["row"]: e for e in job.result["errors"]}
    assert errors[2]["message"] == "not a valid phone number: 13******00"
    assert errors[3]["reason"] == "不是有效的邮箱地址：w***@@example.com"
    got = client.get(f"/api/v1/imports/{job.pk}").json()
    assert "1380013800" not in str(got["errors"])
    report = report_rows(client, job)
    assert report[1][:2] == ["1380013800", ""] and report[1][-1].endswith("1380013800")


def test_a_nul_character_fails_its_row_not_the_whole_import(
    cast, api, django_capture_on_commit_callbacks
):
    """A UTF-16 file can hold U+0000: PostgreSQL refuses it, which failed the whole job (the
    good rows of the batch with it) with a database error; SQLite stored it."""
    rows = [
        ["手机", "姓名", "城市"],
        ["13800138001", "好", "上海"],
        ["13800138002", "坏\x00名", "北京"],
    ]
    content = csv_bytes(rows, "utf-16", "\t")
    job = run_import(api("admin"), django_capture_on_commit_callbacks, "contacts", content)
    assert (job.result["created"], job.result["failed"]) == (1, 1), job.result
    assert job.result["errors"][0]["column"] == "姓名"
    assert list(Contact.objects.values_list("name", flat=True)) == ["好"]
    orders = [
        ["订单号", "手机号", "实付金额"],
        ["N-1", "13800138001", "1"],
        ["N-2", "138", "1\x00"],
    ]
    content = csv_bytes(orders, "utf-16", "\t")
    job = run_import(api("admin"), django_capture_on_commit_callbacks, "orders", content)
    assert (job.result["created"], job.result["failed"]) == (1, 1), job.result
    assert job.result["errors"][0]["column"] == "实付金额"


def test_the_report_cannot_run_formulas_and_imports_back(
    cast, api, django_capture_on_commit_callbacks
):
    """Cells starting with = + - @ are written with a leading quote (Excel shows them as
    text); importing the corrected report takes the quote off again."""
    capture = django_capture_on_commit_callbacks
    client = api("admin")
    rows = [
        ["手机", "姓名", "=城市"],
        ["123", '=HYPERLINK("http://evil.example","点我")', "@SUM(1+1)"],
        ["+86 139 0000 1111", "-2+3", "\t=1"],
    ]
    job = run_import(client, capture, "contacts", csv_bytes(rows))
    assert job.result["failed"] == 1
    report = report_rows(client, job)
    assert report[0] == ["手机", "姓名", "'=城市", "行号", "错误原因"]
    assert report[1][:3] == ["123", '\'=HYPERLINK("http://evil.example","点我")', "'@SUM(1+1)"]
    assert report[1][4].startswith("手机：")
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in report for cell in row)
    lee = Contact.objects.get()
    assert lee.name == "-2+3"  # a CSV cell is text: nothing was quoted on the way in
    # the corrected report goes back in as it is: the quotes come off
    fixed = [report[0]] + [["13700002222", *report[1][1:]]]
    job = run_import(client, capture, "contacts", csv_bytes(fixed), "report.csv")
    assert (job.result["created"], job.result["failed"]) == (1, 0), job.result
    assert Contact.objects.filter(name='=HYPERLINK("http://evil.example","点我")').exists()


def test_a_row_whose_identities_belong_to_two_contacts_fails_whole(
    cast, api, make_contact, django_capture_on_commit_callbacks
):
    a = make_contact("甲", phone="13812345678")
    b = make_contact("乙", email="yi@example.com")
    rows = [["手机", "邮箱", "姓名"], ["13812345678", "yi@example.com", "改名"]]
    client = api("admin")
    before = db_snapshot()
    job = run_import(client, django_capture_on_commit_callbacks, "contacts", csv_bytes(rows))
    assert job.result["failed"] == 1
    assert f"#{a.pk}, #{b.pk}" in job.result["errors"][0]["message"]
    diff = snapshot_diff(before, db_snapshot())
    assert diff == ["core.AuditLog", "core.Job"]


def test_an_ambiguous_owner_or_tag_fails_the_row_and_writes_nothing(
    cast, api, system_actor, django_capture_on_commit_callbacks
):
    ws = cast.workspace
    for name in ("会员", "活动"):
        group = actions.tag_group_create(workspace=ws, actor=system_actor, name=name)
        actions.tag_create(workspace=ws, actor=system_actor, group=group, name="双十一")
    rows = [
        ["手机", "标签", "归属顾问"],
        ["13812345678", "新标签、双十一", ""],
        ["13900001111", "活动:双十一、另一个新标签", "不存在的人"],
        ["13700002222", "活动：双十一", "operator"],
    ]
    job = run_import(api("admin"), django_capture_on_commit_callbacks, "contacts", csv_bytes(rows))
    errors = {e["row"]: e for e in job.result["errors"]}
    assert sorted(errors) == [2, 3]
    assert "several groups" in errors[2]["message"] and errors[2]["column"] == "标签"
    assert errors[3]["column"] == "归属顾问"
    # the failed rows' new tags were rolled back with them
    assert not Tag.objects.filter(name__in=["新标签", "另一个新标签"]).exists()
    contact = Contact.objects.get()
    assert contact.owner_id == cast.operator.staff.pk
    assert list(contact.contact_tags.values_list("tag__group__name", flat=True)) == ["活动"]
    assert job.result["tags_created"] == 0


def test_a_crashed_job_run_again_doubles_nothing(
    cast, api, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(import_jobs, "BATCH", 2)
    rows = [["手机", "姓名", "标签"]] + [[f"1380000{i:04d}", f"客{i}", "VIP"] for i in range(7)]
    original = contact_import.ContactImporter.apply
    calls = []

    def crash_on_third_batch(self, batch, counts, report):
        calls.append(len(batch))
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return original(self, batch, counts, report)

    monkeypatch.setattr(contact_import.ContactImporter, "apply", crash_on_third_batch)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(api("admin"), "contacts", csv_bytes(rows))
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == Job.Status.FAILED and "worker killed" in job.error
    assert Contact.objects.count() == 4 and job.done == 4
    # the worker comes back: the job is put back in the queue and runs to the end
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
    job_run(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert Contact.objects.count() == 7 == Identity.objects.count()
    assert ContactTag.objects.count() == 7 and Tag.objects.count() == 1
    assert (job.result["created"], job.result["unchanged"]) == (3, 4)
    assert TimelineEntry.objects.filter(kind="created").count() == 7


def test_an_export_imports_back_unchanged(
    cast, schema, make_contact, api, system_actor, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ws = cast.workspace
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="会员等级")
    vip = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="VIP")
    wang = make_contact("王小明", phone="13812345678", email="wang@example.com", owner=cast.agent)
    actions.contact_update(
        workspace=ws,
        actor=system_actor,
        contact=wang,
        profile={"gender": "female", "birthday": "1990-01-02", "city": "上海"},
        attributes={"shoe_size": 37},
    )
    actions.contacts_tag(workspace=ws, actor=system_actor, contact_ids=[wang.pk], add=[vip.pk])
    make_contact("李雷", phone="13900001111", source="douyin", user_id="u-9")

    def export(with_pii: bool, fmt: str) -> bytes:
        with capture(execute=True):
            job = contacts_export_start(
                workspace=ws,
                actor=cast.owner.actor,
                flt=ContactFilter(),
                fmt=fmt,
                with_pii=with_pii,
            )
        job.refresh_from_db()
        return export_path(job).read_bytes()

    client = api("admin")
    for fmt in ("csv", "xlsx"):
        clear = export(True, fmt)
        before = db_snapshot()
        job = run_import(client, capture, "contacts", clear, f"export.{fmt}")
        assert snapshot_diff(before, db_snapshot()) == ["core.AuditLog", "core.Job"], fmt
        assert (job.result["unchanged"], job.result["failed"]) == (2, 0), job.result
    # a masked export cannot be matched back: every row says so, nothing is created
    job = run_import(client, capture, "contacts", export(False, "csv"), "masked.csv")
    assert job.result["failed"] == 2 and job.result["created"] == 0
    assert "masked" in job.result["errors"][0]["message"]


# --- the API -------------------------------------------------------------------------------


def test_api_follows_an_import(cast, api, django_capture_on_commit_callbacks):
    client = api("operator")
    with django_capture_on_commit_callbacks(execute=False):
        response = post_import(client, "contacts", csv_bytes(ROWS[:3]))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == "contacts" and body["report_url"] is None
    job_run(body["id"])
    got = client.get(f"/api/v1/imports/{body['id']}").json()
    assert got["status"] == "done" and got["percent"] == 100 and got["created"] == 2
    assert got["errors"] == [] and got["report_url"] is None
    assert client.get(f"/api/v1/imports/{body['id']}/report").status_code == 404
    listed = client.get("/api/v1/imports").json()
    assert [i["id"] for i in listed["items"]] == [body["id"]] and listed["next"] is None


def test_api_mapping_overrides_and_errors_name_the_field(cast, api):
    client = api("admin")
    rows = [["联系方式", "备注", "名字"], ["13812345678", "x", "王"]]
    content = csv_bytes(rows)
    before = db_snapshot()

    def bad(status=422, **form):
        response = post_import(client, form.pop("kind", "contacts"), content, **form)
        assert response.status_code == status, response.content
        return error_of(response)

    assert bad(kind="people")["details"]["field"] == "kind"
    assert bad(mapping="{not json")["details"]["field"] == "mapping"
    assert bad(mapping="[1]")["details"]["field"] == "mapping"
    assert bad(mapping={"没有这列": "phone"})["details"]["field"] == "mapping.没有这列"
    assert bad(mapping={"备注": "shoe"})["details"]["field"] == "mapping.备注"
    missing = bad(mapping={"联系方式": None})
    assert missing["details"]["field"] == "mapping" and "phone" in missing["message"]
    orders = bad(kind="orders")
    assert orders["details"]["field"] == "mapping" and "Order ID" in orders["message"]
    assert bad(lang="fr")["details"]["field"] == "lang"
    assert snapshot_diff(before, db_snapshot()) == []
    assert uploads_left() == []
    with override_settings(SIYU_IMPORT_MAX_BYTES=10):
        too_big = bad(status=413)
    assert too_big["code"] == "file_too_large"
    assert too_big["details"] == {"field": "file", "max_bytes": 10}
    empty = post_import(client, "contacts", b"")
    assert error_of(empty)["details"]["field"] == "file"
    assert uploads_left() == []
    # a mapping that starts: 备注 as the name column, 名字 left out
    response = post_import(client, "contacts", content, mapping={"备注": "name", "名字": ""})
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.params["mapping"] == ["phone", "name", ""]


@pytest.mark.parametrize("role", ["analyst", "agent", None])
def test_roles_that_may_not_import_change_nothing(cast, api, agent_api, role):
    client = agent_api if role == "agent" else api(role)
    before = db_snapshot()
    response = post_import(client, "contacts", csv_bytes(ROWS[:2]))
    if role is None:
        assert response.status_code == 401
    else:
        assert response.status_code == 403
        assert error_of(response)["details"] == {"permission": "contacts.import"}
    assert snapshot_diff(before, db_snapshot()) == []
    assert uploads_left() == []


def test_imports_are_scoped_by_workspace_and_starter(cast, api, django_capture_on_commit_callbacks):
    operator = api("operator")
    job = run_import(operator, django_capture_on_commit_callbacks, "contacts", csv_bytes(ROWS))
    assert operator.get(f"/api/v1/imports/{job.pk}").status_code == 200
    # another operator key does not see it, an admin key does, another workspace gets 404
    assert api("operator").get(f"/api/v1/imports/{job.pk}").status_code == 404
    assert api("operator").get("/api/v1/imports").json()["items"] == []
    assert api("admin").get(f"/api/v1/imports/{job.pk}").status_code == 200
    outsider = api("outsider")
    assert outsider.get(f"/api/v1/imports/{job.pk}").status_code == 404
    assert outsider.get(f"/api/v1/imports/{job.pk}/report").status_code == 404
    assert api("analyst").get(f"/api/v1/imports/{job.pk}").status_code == 403


def test_rows_naming_the_same_person_in_one_file(
    cast, api, make_contact, django_capture_on_commit_callbacks
):
    li = make_contact("李雷", phone="13900001111")
    rows = [
        ["手机", "邮箱", "姓名", "标签"],
        ["13812345678", "", "王", "A"],
        ["13812345678", "wang@example.com", "王小明", "B"],  # the contact row 2 creates
        ["", "wang@example.com", "", "A"],  # found by the email row 3 adds: unchanged
        ["13900001111", "wang@example.com", "李", ""],  # two contacts: fails
        ["13700002222", "", "韩梅梅", ""],
        ["13900001111", "", "李雷", "C"],
    ]
    job = run_import(api("admin"), django_capture_on_commit_callbacks, "contacts", csv_bytes(rows))
    result = job.result
    assert (result["created"], result["updated"], result["unchanged"]) == (2, 2, 1), result
    assert [e["row"] for e in result["errors"]] == [5]
    message = result["errors"][0]["message"]
    assert f"contact #{li.pk} and to the contact created from row 2" in message
    wang = Contact.objects.get(name="王小明")
    assert set(wang.identities.values_list("kind", flat=True)) == {"phone", "email"}
    assert sorted(wang.contact_tags.values_list("tag__name", flat=True)) == ["A", "B"]
    assert list(li.contact_tags.values_list("tag__name", flat=True)) == ["C"]
    assert Contact.objects.count() == 3


def test_bulk_creation_writes_what_contact_create_writes(cast, system_actor):
    """The import's fast path and the action it stands in for leave the same rows."""
    from siyu.contacts.actions.bulk import ContactDraft, contacts_create_many
    from siyu.contacts.actions.contact import IdentityInput

    ws = cast.workspace
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="组")
    tag = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="VIP")
    actor = cast.operator.actor

    def rows_of(contact):
        return {
            "contact": Contact.objects.filter(pk=contact.pk).values(
                "name", "gender", "city", "source", "owner_id", "attributes"
            )[0],
            "identities": list(contact.identities.values_list("kind", "masked")),
            "tags": list(contact.contact_tags.values_list("tag_id", flat=True)),
            "timeline": list(
                TimelineEntry.objects.filter(contact=contact)
                .order_by("id")
                .values_list("kind", "data", "actor_label")
            ),
            "audit": list(
                AuditLog.objects.filter(object_type="contact", object_id=str(contact.pk))
                .order_by("id")
                .values_list("action", "after", "actor_label")
            ),
        }

    profile = {"name": "王", "gender": "female", "city": "上海", "source": "import"}
    one = actions.contact_create(
        workspace=ws,
        actor=actor,
        profile=profile,
        identities=[IdentityInput("phone", "13812345678")],
        tag_ids=[tag.pk],
        owner_id=cast.agent.staff.pk,
    )
    [many] = contacts_create_many(
        workspace=ws,
        actor=actor,
        drafts=[
            ContactDraft(
                profile=profile,
                identities=[IdentityInput("phone", "+8613900001111")],
                tag_ids=[tag.pk],
                owner_id=cast.agent.staff.pk,
            )
        ],
    )
    a, b = rows_of(one), rows_of(many)
    assert a["identities"] == [("phone", "138****5678")]
    assert b["identities"] == [("phone", "139****1111")]
    for key in ("contact", "tags", "timeline", "audit"):
        assert a[key] == b[key], key


def test_a_queued_import_whose_starter_may_no_longer_import_writes_nothing(cast, api):
    """The role is checked again when the job runs, against what the starter is now (the
    role recorded with the job could never have changed)."""
    from siyu.accounts import actions as account_actions
    from siyu.accounts.models import ApiKey, Membership

    operator = Membership.objects.get(workspace=cast.workspace, staff=cast.operator.staff)
    response = post_import(api("operator"), "contacts", csv_bytes(ROWS[:3]))
    by_key = Job.objects.get(pk=response.json()["id"])
    key = ApiKey.objects.get(prefix=by_key.actor_label.removeprefix("api-key:"))
    account_actions.apikey_revoke(workspace=cast.workspace, actor=cast.owner.actor, key=key)
    job_run(by_key.pk)
    by_key.refresh_from_db()
    assert by_key.status == Job.Status.FAILED and by_key.error == "发起导入的人当前的角色已无权导入"
    # a staff member demoted to analyst after starting an import
    from siyu.contacts.imports.uploads import upload_store

    upload, table = upload_store(
        workspace=cast.workspace,
        actor=cast.operator.actor,
        kind="contacts",
        name="a.csv",
        chunks=[csv_bytes(ROWS[:3])],
    )
    job = import_jobs.import_start(
        workspace=cast.workspace,
        actor=cast.operator.actor,
        upload=upload,
        names=table.names,
        mapping=auto_map(CONTACTS, table.names, []),
    )
    account_actions.staff_set_role(
        workspace=cast.workspace, actor=cast.owner.actor, membership=operator, role="analyst"
    )
    job_run(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and not Contact.objects.exists()
    # back to operator: a re-run of the job goes through
    account_actions.staff_set_role(
        workspace=cast.workspace, actor=cast.owner.actor, membership=operator, role="operator"
    )
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
    job_run(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and Contact.objects.count() == 2


def test_a_job_whose_file_is_gone_fails_saying_so(cast, api):
    response = post_import(api("admin"), "contacts", csv_bytes(ROWS[:2]))
    job = Job.objects.get(pk=response.json()["id"])
    Path(settings.SIYU_HOME, "imports", job.params["file"]).unlink()
    job_run(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "上传的文件已不存在，请重新上传" and not Contact.objects.exists()


def test_openapi_lists_the_import_endpoints(api):
    paths = api("admin").get("/api/openapi.json").json()["paths"]
    assert {
        "/api/v1/imports",
        "/api/v1/imports/{job_id}",
        "/api/v1/imports/{job_id}/report",
    } <= set(paths)
