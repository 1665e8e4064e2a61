"""Importing orders: rows sharing an order ID make one order with its items, amounts in yuan
become exact fen, times are read in the workspace's time zone, customers are found by phone
or user ID (and added when new), a second import changes nothing, and orders whose ID exists
with other contents fail like the API's 409."""

import datetime
import zoneinfo

from siyu.contacts.models import Contact
from siyu.tracking.models import ContactStats, Order, OrderItem
from siyu.tracking.orders import OrderInput, order_create
from tests.contacts.importing import (  # noqa: F401 - fresh_imports is an autouse fixture
    csv_bytes,
    fresh_imports,
    report_rows,
    run_import,
    xlsx_bytes,
)
from tests.helpers import db_snapshot, snapshot_diff

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
HEADER = [
    "订单号",
    "手机号",
    "客户姓名",
    "实付金额",
    "下单时间",
    "渠道",
    "商品名称",
    "SKU",
    "数量",
    "单价",
]
ROWS = [
    HEADER,
    ["TB-1", "13812345678", "王小明", "￥1,299.00", "2026-01-31 14:05", "天猫", "咖啡机", "M1",
     "1", "1199"],
    ["TB-1", "", "", "", "", "", "咖啡豆", "B2", "2", "50"],
    ["TB-2", "13812345678", "王小明", "19.9", "2026/2/1", "天猫", "拿铁", "L", "", "19.9"],
    ["TB-3", "13900001111", "", "20", "2026-02-02T10:00:00+00:00", "", "", "", "", ""],
    ["TB-4", "138", "", "20", "", "", "", "", "", ""],
    ["TB-5", "13700002222", "", "20.001", "", "", "", "", "", ""],
    ["TB-6", "13700002222", "", "30", "昨天", "", "", "", "", ""],
    ["TB-7", "13700002222", "", "30", "", "", "杯子", "", "2", ""],
    ["TB-8", "13700002222", "", "30", "", "", "", "", "", ""],
    ["TB-8", "13700002222", "", "31", "", "", "", "", "", ""],
]  # fmt: skip


def test_orders_with_items_customers_and_bad_rows(
    cast, api, make_contact, django_capture_on_commit_callbacks
):
    li = make_contact("李雷", phone="13900001111")
    client = api("operator")
    job = run_import(client, django_capture_on_commit_callbacks, "orders", csv_bytes(ROWS, "gbk"))
    result = job.result
    assert (result["rows"], result["created"], result["failed"]) == (10, 3, 6), result
    assert result["contacts_created"] == 1
    wang = Contact.objects.get(name="王小明")
    assert wang.source == "import"
    tb1 = Order.objects.get(external_id="TB-1")
    assert tb1.contact == wang and tb1.total_fen == 129900 and tb1.channel == "天猫"
    assert tb1.placed_at == datetime.datetime(2026, 1, 31, 14, 5, tzinfo=SHANGHAI)
    assert tb1.source == "import"
    items = list(
        OrderItem.objects.filter(order=tb1)
        .order_by("id")
        .values_list("name", "sku", "quantity", "price_fen")
    )
    assert items == [("咖啡机", "M1", 1, 119900), ("咖啡豆", "B2", 2, 5000)]
    tb2 = Order.objects.get(external_id="TB-2")
    assert tb2.contact == wang and tb2.placed_at == datetime.datetime(2026, 2, 1, tzinfo=SHANGHAI)
    tb3 = Order.objects.get(external_id="TB-3")
    assert tb3.contact == li and tb3.placed_at == datetime.datetime(
        2026, 2, 2, 10, tzinfo=datetime.UTC
    )
    assert ContactStats.objects.get(contact=wang).order_count == 2
    errors = {e["row"]: e for e in result["errors"]}
    assert sorted(errors) == [6, 7, 8, 9, 10, 11]
    assert errors[6]["column"] == "手机号"
    assert errors[7]["column"] == "实付金额" and "2 decimal" in errors[7]["message"]
    assert errors[8]["column"] == "下单时间"
    assert errors[9]["column"] == "单价" and errors[9]["message"].startswith("row 9: ")
    assert errors[9]["reason"].startswith("第 9 行：")
    assert errors[10]["column"] == "实付金额" and "rows 10 and 11" in errors[10]["message"]
    assert errors[11] == errors[10] | {"row": 11}
    assert not Order.objects.filter(external_id__in=["TB-4", "TB-5", "TB-6", "TB-7", "TB-8"])
    assert Contact.objects.count() == 2  # the failed orders' customer (137…) was not added
    rows = report_rows(client, job)
    assert rows[0][-2:] == ["行号", "错误原因"] and [r[-2] for r in rows[1:]] == [
        str(n) for n in range(6, 12)
    ]

    before = db_snapshot()
    again = run_import(
        client, django_capture_on_commit_callbacks, "orders", xlsx_bytes(ROWS), "o.xlsx"
    )
    assert snapshot_diff(before, db_snapshot()) == ["core.AuditLog", "core.Job"]
    assert (again.result["created"], again.result["unchanged"], again.result["failed"]) == (0, 3, 6)
    assert Order.objects.count() == 3 and OrderItem.objects.count() == 3


def test_an_existing_order_id_with_other_contents_fails_like_a_409(
    cast, api, make_contact, django_capture_on_commit_callbacks
):
    wang = make_contact("王", phone="13812345678")
    order_create(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        contact=wang,
        data=OrderInput(external_id="A-1", currency="CNY", total_fen=1000),
    )
    rows = [
        ["order id", "phone", "total", "status", "date"],
        ["A-1", "13812345678", "10", "completed", ""],  # the same order: unchanged
        ["A-2", "13812345678", "12", "已退款", ""],
        ["A-1", "13812345678", "11", "", ""],  # not adjacent: the same ID, other contents
        ["A-3", "13812345678", "5", "交易成功", 46053],  # an Excel day number
    ]
    job = run_import(
        api("admin"), django_capture_on_commit_callbacks, "orders", xlsx_bytes(rows), "o.xlsx"
    )
    assert (job.result["created"], job.result["unchanged"], job.result["failed"]) == (1, 1, 2)
    errors = {e["row"]: e for e in job.result["errors"]}
    assert errors[3]["column"] == "status" and "only completed" in errors[3]["message"]
    assert "also at row 2" in errors[4]["message"] and errors[4]["column"] == "order id"
    assert Order.objects.get(external_id="A-1").total_fen == 1000
    a3 = Order.objects.get(external_id="A-3")
    assert a3.placed_at.astimezone(SHANGHAI).date() == datetime.date(2026, 1, 31)


def test_a_repeated_order_id_leaves_no_customer_behind(
    cast, api, django_capture_on_commit_callbacks
):
    rows = [
        ["订单号", "手机号", "实付金额"],
        ["C-1", "13812345678", "10"],
        ["C-2", "13812345678", "12"],  # the same new customer: one contact
        ["C-1", "13900001111", "10"],  # the ID again, another new customer: fails
    ]
    job = run_import(api("admin"), django_capture_on_commit_callbacks, "orders", csv_bytes(rows))
    assert (job.result["created"], job.result["failed"], job.result["contacts_created"]) == (
        2,
        1,
        1,
    )
    assert "also at row 2" in job.result["errors"][0]["message"]
    assert list(Contact.objects.values_list("identities__masked", flat=True)) == ["138****5678"]


def test_order_ids_a_spreadsheet_shortened_fail_instead_of_merging_orders(
    cast, api, django_capture_on_commit_callbacks
):
    """An 18-digit order number kept as a number becomes 1.23457E+17 in Excel's CSV and a
    float with 15 digits in the xlsx: two orders would share one ID (the second "unchanged"
    or a conflict). Such IDs fail with the reason; a phone read as a float is its digits."""
    capture = django_capture_on_commit_callbacks
    client = api("admin")
    rows = [
        ["订单号", "手机号", "实付金额"],
        ["1.23457E+17", "13812345678", "10"],
        ["1.23457E+17", "13812345678", "10"],
        ["1.234567890123456E+15", "13812345678.0", "12"],  # every digit shown: whole
    ]
    job = run_import(client, capture, "orders", csv_bytes(rows))
    assert (job.result["created"], job.result["failed"]) == (1, 2), job.result
    assert job.result["errors"][0]["column"] == "订单号"
    assert "scientific notation" in job.result["errors"][0]["message"]
    assert list(Order.objects.values_list("external_id", flat=True)) == ["1234567890123456"]
    xlsx = xlsx_bytes(
        [
            ["订单号", "手机号", "实付金额"],
            ["123456789012345678", 13812345678.0, 10],  # a text cell keeps its digits
            [223456789012345678, 13812345678.0, 11],  # a number cell does not
        ]
    )
    job = run_import(client, capture, "orders", xlsx, "o.xlsx")
    assert (job.result["created"], job.result["failed"]) == (1, 1), job.result
    assert Order.objects.filter(external_id="123456789012345678").exists()
    assert Order.objects.count() == 2 and Contact.objects.count() == 1
