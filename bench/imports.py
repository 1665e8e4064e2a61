"""Imports benchmark: rows per second of a contacts import and an orders import, the first
time (everything created) and a second time (the same file: everything unchanged).

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench \\
        .venv/bin/python bench/imports.py [--rows 20000] [--seed 2026]

Generates a contacts CSV (UTF-8 with BOM; 1% of the rows have a bad phone, to exercise the
error report) and an orders CSV (two product lines per order, half the customers already in
the pool) with a fixed seed, then runs each import the way the console does: upload, start,
job. Jobs run inline (the immediate task backend), timed from start to finished job. Each
run uses a new workspace, deleted afterwards (`--keep` keeps it). Without SIYU_DATABASE_URL
it runs on SQLite in SIYU_HOME (default var/bench-imports). The last line printed is one
JSON object."""

import argparse
import csv
import io
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "苏州"]
TAGS = ["VIP", "新客", "咖啡", "茶饮", "门店", "小程序", "双十一", "会员日", "复购", "沉睡"]


def contacts_csv(rows: int, rng: random.Random) -> tuple[bytes, list[str]]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机号", "邮箱", "性别", "生日", "城市", "标签", "会员等级"])
    phones = rng.sample(range(10**8), rows)
    used = []
    for i in range(rows):
        phone = f"13{phones[i] % 10:01d}{phones[i]:08d}"
        if rng.random() < 0.01:
            phone = phone[:6]  # a bad phone: reported, not imported
        used.append(phone)
        writer.writerow(
            [
                rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
                phone,
                f"user{i}@example.com" if rng.random() < 0.5 else "",
                rng.choice(["男", "女", ""]),
                f"{rng.randint(1960, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                if rng.random() < 0.7
                else "",
                rng.choice(CITIES),
                "、".join(rng.sample(TAGS, rng.randint(0, 2))),
                rng.choice(["银卡", "金卡", "黑卡"]),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8"), used


def orders_csv(rows: int, phones: list[str], rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["订单号", "手机号", "实付金额", "下单时间", "渠道", "商品名称", "数量", "单价"]
    writer.writerow(header)
    good = [p for p in phones if len(p) == 11]
    for n in range(rows // 2):
        # half the customers are in the pool already, half are new
        phone = rng.choice(good) if n % 2 else f"15{n:09d}"
        price_a, price_b = rng.randint(10, 300), rng.randint(10, 300)
        day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(8, 22)}:05"
        writer.writerow([f"B-{n}", phone, price_a + 2 * price_b, day, "天猫", "拿铁", 1, price_a])
        writer.writerow([f"B-{n}", "", "", "", "", "杯子", 2, price_b])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark workspace")
    args = parser.parse_args()

    os.environ.setdefault("SIYU_HOME", str(REPO / "var" / "bench-imports"))
    os.environ["SIYU_TASK_BACKEND"] = "django_tasks.backends.immediate.ImmediateBackend"
    Path(os.environ["SIYU_HOME"]).mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "bench"))
    from contacts import ensure_database  # the contacts benchmark's helper

    ensure_database(os.environ.get("SIYU_DATABASE_URL", ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    run(args)


def run(args) -> None:
    import logging

    from django.core.management import call_command
    from django.db import connection

    from siyu.accounts import actions as account_actions
    from siyu.contacts import actions
    from siyu.contacts.imports.jobs import attributes_of, import_start
    from siyu.contacts.imports.mapping import auto_map
    from siyu.contacts.imports.uploads import upload_store
    from siyu.core.audit import Actor
    from siyu.core.models import Job

    logging.getLogger("django_tasks").setLevel(logging.WARNING)
    vendor = connection.vendor
    rng = random.Random(args.seed)
    print(f"siyu imports benchmark: {vendor}, {args.rows:,} rows, seed {args.seed}")
    call_command("migrate", verbosity=0, interactive=False)
    system = Actor.system("bench")
    slug = f"bench-imports-{int(time.time())}"
    workspace = account_actions.workspace_create(name="导入基准", slug=slug, actor=system)
    actions.attribute_define(
        workspace=workspace,
        actor=system,
        key="level",
        label="会员等级",
        type="choice",
        choices=["银卡", "金卡", "黑卡"],
    )
    contacts_file, phones = contacts_csv(args.rows, rng)
    orders_file = orders_csv(args.rows, phones, rng)

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    def run_import(kind: str, content: bytes) -> dict:
        upload, table = upload_store(
            workspace=workspace,
            actor=system,
            kind=kind,
            name=f"{kind}.csv",
            chunks=[content],
        )
        mapping = auto_map(kind, table.names, attributes_of(workspace))
        queries[0] = 0
        started = time.perf_counter()
        with connection.execute_wrapper(count):
            job = import_start(
                workspace=workspace, actor=system, upload=upload, names=table.names, mapping=mapping
            )
        seconds = time.perf_counter() - started
        job = Job.objects.get(pk=job.pk)
        assert job.status == Job.Status.DONE, job.error
        r = job.result
        figures = {
            "rows": r["rows"],
            "seconds": round(seconds, 2),
            "rows_per_s": round(r["rows"] / seconds),
            "queries_per_row": round(queries[0] / r["rows"], 2),
            "created": r["created"],
            "updated": r["updated"],
            "unchanged": r["unchanged"],
            "failed": r["failed"],
        }
        rate = figures["rows_per_s"]
        print(
            f"  {kind:8} {r['rows']:>7,} rows in {seconds:6.1f}s  {rate:>6,} rows/s"
            f"  {figures['queries_per_row']:5.2f} queries/row  created {r['created']:,}"
            f"  unchanged {r['unchanged']:,}  failed {r['failed']:,}",
            flush=True,
        )
        return figures

    results = {}
    try:
        print("contacts, first import:")
        results["contacts_first"] = run_import("contacts", contacts_file)
        print("contacts, the same file again:")
        results["contacts_again"] = run_import("contacts", contacts_file)
        print("orders, first import:")
        results["orders_first"] = run_import("orders", orders_file)
        print("orders, the same file again:")
        results["orders_again"] = run_import("orders", orders_file)
    finally:
        if not args.keep:
            workspace.delete()
    print(json.dumps({"vendor": vendor, "rows": args.rows, "seed": args.seed, **results}))


if __name__ == "__main__":
    main()
