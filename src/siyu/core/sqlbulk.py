"""Set-based writes the ORM has no fast form for, on SQLite and PostgreSQL alike:
`update_from_values` (many rows updated from a list of values in one statement) and
`upsert_values` (INSERT … ON CONFLICT … DO UPDATE with an expression such as
`count = count + excluded.count`).

Django's `bulk_update` writes one `CASE WHEN id = … THEN …` branch per row, which the
database evaluates row by row: quadratic in the batch size. A join against a `VALUES` list
is linear. Values are passed as parameters, never formatted into the SQL; only table and
column names (from model metadata, never from input) are."""

import contextlib
import contextvars
import datetime
import functools
import json
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection

# Rows per statement: SQLite allows 32,766 parameters in one statement.
CHUNK = 2000
# What a VALUES column is cast to, per abstract type. SQLite stores dates and date-times as
# text (Django's format), so casting them to text keeps its comparisons correct.
_CASTS = {
    "postgresql": {
        "int": "bigint",
        "float": "double precision",
        "text": "text",
        "ts": "timestamptz",
        "date": "date",
        "json": "jsonb",
        "bool": "boolean",
        "inet": "inet",
    },
    "sqlite": {
        "int": "integer",
        "float": "real",
        "text": "text",
        "ts": "text",
        "date": "text",
        "json": "text",
        "bool": "integer",
        "inet": "text",
    },
}
_PLAIN = (int, float, str, type(None), bool)


def _adapt(value: Any) -> Any:
    """A parameter as the database driver takes it: date-times and dates as Django stores
    them (SQLite: text in UTC); dicts and lists as JSON text."""
    if type(value) in _PLAIN:
        return value
    ops = connection.ops
    if isinstance(value, datetime.datetime):
        return ops.adapt_datetimefield_value(value)
    if isinstance(value, datetime.date):
        return ops.adapt_datefield_value(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def greatest(*args: str) -> str:
    """SQL for the largest of its arguments (PostgreSQL GREATEST, SQLite's scalar max)."""
    name = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    return f"{name}({', '.join(args)})"


def least(*args: str) -> str:
    name = "LEAST" if connection.vendor == "postgresql" else "MIN"
    return f"{name}({', '.join(args)})"


class BigIntArray(list):
    """A list of ints (None for NULL) that a `pg_cursor` sends as a binary bigint[] built in
    one call of C code (_int8_array). psycopg's own list dumper handles every element in
    Python: 0.6 µs each, and a resolver batch sends a few arrays of 100,000 ids."""


_ARRAY_HEAD = struct.Struct(">iiIii")  # dimensions, has NULLs, element type, length, lower bound
_INT8_OID, _INT8_ARRAY_OID = 20, 1016
_NULL = struct.pack(">i", -1)
_INT8 = struct.Struct(">iq")


def _int8_array(values: list) -> bytes:
    """PostgreSQL's binary form of a one-dimensional bigint[] (array_recv)."""
    count = len(values)
    if not count:
        return struct.pack(">iiI", 0, 0, _INT8_OID)
    if None in values:
        head = _ARRAY_HEAD.pack(1, 1, _INT8_OID, count, 1)
        return head + b"".join(_NULL if v is None else _INT8.pack(8, v) for v in values)
    flat = [8] * (2 * count)  # each element: its length (8), then its value
    flat[1::2] = values
    return _ARRAY_HEAD.pack(1, 0, _INT8_OID, count, 1) + struct.pack(">" + "iq" * count, *flat)


@functools.cache
def _big_int_array_dumper():
    """The psycopg dumper of BigIntArray (psycopg is imported only on PostgreSQL)."""
    import psycopg
    from psycopg.adapt import Dumper

    class BigIntArrayDumper(Dumper):
        format = psycopg.pq.Format.BINARY
        oid = _INT8_ARRAY_OID

        def dump(self, obj):
            return _int8_array(obj)

    return BigIntArrayDumper


def _cursor_on(pg_connection):
    """A psycopg cursor that sends BigIntArray with _int8_array."""
    import psycopg

    cursor = psycopg.Cursor(pg_connection)
    cursor.adapters.register_dumper(BigIntArray, _big_int_array_dumper())
    return cursor


@contextlib.contextmanager
def pg_cursor():
    """PostgreSQL only: a cursor of the underlying psycopg connection (the same transaction
    as Django's) that binds parameters on the server, unlike Django's ClientCursor: `%b`
    binary arrays need it, and no statement text is parsed and quoted client-side."""
    connection.ensure_connection()
    with _cursor_on(connection.connection) as cursor:
        yield cursor


@contextlib.contextmanager
def pipelined():
    """PostgreSQL: statements are sent without waiting for each one's result (psycopg's
    pipeline mode), so that Python builds the next statement while the server runs the last
    one; reading a result waits for everything sent so far (see `send`). An error surfaces at
    the next read or when the block ends, so wrap only work that fails as a whole. Elsewhere,
    nothing changes."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.connection.pipeline():
        yield


def send(sql: str, params: Any) -> Callable[[], list[tuple]]:
    """PostgreSQL: run `sql` (on a `pg_cursor`, results in binary) and return a function that
    returns its rows. Inside `pipelined()` the statement is only sent: the server runs it
    while Python goes on, and asking for the rows waits for this statement and those sent
    before it, not for those sent after (`_fetch_own`): so a statement sent after it runs
    while Python reads its rows."""
    connection.ensure_connection()
    cursor = _cursor_on(connection.connection)
    cursor.execute(sql, params, binary=True)
    pipeline = _pipeline_of(cursor)
    if pipeline is not None:
        # the server sends this result as soon as it has it, not when its output fills up
        # or the pipeline is synced (that is, after the statements sent later)
        _flush(cursor.connection, request=True)

    def rows() -> list[tuple]:
        with cursor:
            if pipeline is not None:
                _fetch_own(cursor, pipeline)
            return cursor.fetchall()

    return rows


def _pipeline_of(cursor):
    """The pipeline the cursor's statements go through, if they do."""
    return getattr(cursor.connection, "_pipeline", None)


def _flush(conn, request: bool = False) -> None:
    """Send what psycopg holds for the server, asking it first (`request`) to send back the
    results it has so far."""
    from psycopg.generators import send as flush

    with conn.lock:
        if request:
            conn.pgconn.send_flush_request()
        conn.wait(flush(conn.pgconn))


def _fetch_own(cursor, pipeline) -> None:
    """In pipeline mode, take the results of the pipeline up to this cursor's own. psycopg's
    fetch takes every result sent so far, so reading the rows of one statement waited for
    every statement sent after it too. This follows the loop of psycopg's
    `Pipeline._fetch_gen` (3.2, 3.3); should its internals change, the cursor's own fetch,
    which waits for everything, is what happens."""
    if cursor.pgresult is not None:
        return
    try:
        from psycopg.generators import fetch_many

        queue, process = pipeline.result_queue, pipeline._process_results
    except (ImportError, AttributeError):  # pragma: no cover - another psycopg
        return
    conn = cursor.connection

    def fetch():
        while queue and cursor.pgresult is None:
            results = yield from fetch_many(conn.pgconn)
            if not results:
                break
            process(queue.popleft(), results)

    _flush(conn)
    with conn.lock:
        conn.wait(fetch())


_HELD: contextvars.ContextVar[list | None] = contextvars.ContextVar("sqlbulk_held", default=None)


@contextlib.contextmanager
def held():
    """PostgreSQL: the statements this module's writers run inside the block (insert_rows
    with ids, insert_plain, update_from_values, upsert_values, execute_with_rows) are built
    there and sent when it ends, in order; nothing is sent if it raises. Under `pipelined()`
    a large statement cannot be sent while the server is still running an earlier one (the
    socket's buffers are full), so Python waited there instead of building the next one;
    held, it builds them all first. Nothing in the block may need a result. Elsewhere,
    nothing changes."""
    if connection.vendor != "postgresql":
        yield
        return
    statements: list[tuple[str, Any]] = []
    token = _HELD.set(statements)
    try:
        yield
    finally:
        _HELD.reset(token)
    with pg_cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


class _HeldCursor:
    """What `_cursor()` gives inside `held()`: it records the statements."""

    rowcount = -1  # not known yet

    def __init__(self, statements: list):
        self.statements = statements

    def execute(self, sql: str, params: Any = None) -> None:
        self.statements.append((sql, params))

    def fetchall(self):
        raise RuntimeError("no results inside sqlbulk.held()")


@contextlib.contextmanager
def _cursor():
    """pg_cursor on PostgreSQL (inside `held()`, a recorder), Django's cursor on SQLite."""
    statements = _HELD.get()
    if statements is not None:
        yield _HeldCursor(statements)
        return
    manager = pg_cursor() if connection.vendor == "postgresql" else connection.cursor()
    with manager as cursor:
        yield cursor


def _source(columns: Sequence[tuple[str, str]], chunk: Sequence[Sequence[Any]]):
    """A derived table of `chunk` with named, typed columns: (SQL, parameters).

    PostgreSQL: one array parameter per column, `unnest`ed (a statement of a few
    placeholders, whatever the row count: psycopg's client-side binding parses the whole
    statement text on every call). SQLite: a `VALUES` list, renamed by a SELECT."""
    casts = _CASTS[connection.vendor]
    if connection.vendor == "postgresql":
        return _unnest(columns, chunk)
    # VALUES names its columns column1, column2, …; the SELECT renames them.
    named = ", ".join(f"column{n} AS {name}" for n, (name, _) in enumerate(columns, 1))
    one = "(" + ", ".join(f"CAST(%s AS {casts[t]})" for _, t in columns) + ")"
    values = ", ".join([one] * len(chunk))
    params = [_adapt(value) for row in chunk for value in row]
    return f"(SELECT {named} FROM (VALUES {values}) AS raw)", params


def named_source(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], prefix: str
) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: `_source` with named placeholders (`%(<prefix>0)b`, …), for a statement
    whose other parameters are named too. All rows in one derived table."""
    sql, params = _unnest(columns, rows, prefix)
    return sql, {f"{prefix}{n}": values for n, values in enumerate(params)}


def _unnest(columns: Sequence[tuple[str, str]], chunk: Sequence[Sequence[Any]], prefix=None):
    """PostgreSQL: the derived table that unnests one array parameter per column, positional
    (`%b`) or named after `prefix`: (SQL, the arrays)."""
    casts = _CASTS["postgresql"]
    # %b: arrays sent in binary (several times faster to encode than as text)
    marks = ["%b" if prefix is None else f"%({prefix}{n})b" for n in range(len(columns))]
    arrays = ", ".join(
        f"{mark}::{'text' if t == 'json' else casts[t]}[]"
        for mark, (_, t) in zip(marks, columns, strict=True)
    )
    raw = ", ".join(f"c{n}" for n in range(len(columns)))
    named = ", ".join(
        f"c{n}::jsonb AS {name}" if t == "json" else f"c{n} AS {name}"
        for n, (name, t) in enumerate(columns)
    )

    def column(n: int, kind: str) -> list:
        # psycopg takes date-times, dates and text as they are; JSON as text
        values = [row[n] for row in chunk]
        if kind == "json":
            return [_adapt(v) for v in values]
        return BigIntArray(values) if kind == "int" else values

    params = [column(n, t) for n, (_, t) in enumerate(columns)]
    return f"(SELECT {named} FROM unnest({arrays}) AS raw({raw}))", params


def execute_with_rows(
    sql: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    *,
    before: Sequence[Any] = (),
    after: Sequence[Any] = (),
    chunk: int = CHUNK,
) -> None:
    """Run `sql`, in which `{rows}` stands for a derived table of `rows` (named, typed
    columns as in update_from_values), once per chunk of rows (`chunk` a statement on
    PostgreSQL, 2,000 on SQLite). `before` and `after` fill the `%s` placeholders written
    before and after `{rows}`."""
    if not rows:
        return
    size = max(1, chunk) if connection.vendor == "postgresql" else CHUNK
    head, tail = [_adapt(v) for v in before], [_adapt(v) for v in after]
    with _cursor() as cursor:
        for part in chunks(rows, size):
            source, params = _source(columns, part)
            cursor.execute(sql.replace("{rows}", source), [*head, *params, *tail])


def update_from_values(
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    assignments: str,
    *,
    key: str = "id",
    where: str = "",
    extra_params: Sequence[Any] = (),
    pg_chunk: int = CHUNK,
) -> int:
    """`UPDATE <table> SET <assignments> FROM <rows> AS v WHERE <table>.<key> =
    v.<first column> [AND <where>]`; `columns` are (name, abstract type) with the join key
    first. `assignments` and `where` may use `v.<name>`; `assignments` may also hold `%s`
    placeholders, filled from `extra_params` (`where` may not). Rows go `pg_chunk` to a
    statement on PostgreSQL (as arrays: any number), 2,000 on SQLite. Returns the number of
    rows updated."""
    if not rows:
        return 0
    condition = f"{table}.{key} = v.{columns[0][0]}" + (f" AND ({where})" if where else "")
    size = max(1, pg_chunk) if connection.vendor == "postgresql" else CHUNK
    total = 0
    with _cursor() as cursor:
        for chunk in chunks(rows, size):
            source, params = _source(columns, chunk)
            sql = f"UPDATE {table} SET {assignments} FROM {source} AS v WHERE {condition}"
            cursor.execute(sql, [*map(_adapt, extra_params), *params])
            total += cursor.rowcount
    return total


def upsert_values(
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
    assignments: str,
    *,
    where: str = "",
) -> None:
    """`INSERT INTO <table> (<columns>) SELECT … FROM <rows> ON CONFLICT (<conflict>) DO
    UPDATE SET <assignments> [WHERE <where>]`; `columns` are (name, abstract type);
    `assignments` and `where` may use `excluded.<column>`."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    tail = f" WHERE {where}" if where else ""
    with _cursor() as cursor:
        for chunk in chunks(rows):
            source, params = _source(columns, chunk)
            # "WHERE true": SQLite needs it to tell the upsert clause from a join
            sql = (
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {source} AS v WHERE true"
                f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {assignments}{tail}"
            )
            cursor.execute(sql, params)


def reserve_ids(model, n: int) -> list[int]:
    """`n` primary keys for new rows of `model` (an auto-increment id), in order: from its
    sequence on PostgreSQL; on SQLite the ones after the largest ever used, which stay
    ours until the transaction ends (it holds the database's write lock: call it inside
    one)."""
    if n <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, n],
            )
            return sorted(pk for (pk,) in cursor.fetchall())
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
        (last,) = cursor.fetchone()
        # AUTOINCREMENT never reuses an id, even a deleted row's: start after both
        cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = %s", [table])
        last = max(last, cursor.fetchone()[0])
        return list(range(last + 1, last + 1 + n))


def _insertable(model, with_ids: bool = False) -> tuple[list, list[tuple[str, str]], str]:
    """A model's fields for an INSERT (all but the primary key unless `with_ids`), its
    columns with their abstract types, and the statement, in which `{rows}` stands for the
    derived table."""
    fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
    columns = [(f.column, _kind(f)) for f in fields]
    names = ", ".join(name for name, _ in columns)
    table = model._meta.db_table
    return fields, columns, f"INSERT INTO {table} ({names}) SELECT {names} FROM {{rows}} AS v"


def insert_rows(
    model, objs: list, *, ignore_conflicts: bool = False, then: str = "", with_ids: bool = False
) -> None:
    """Insert unsaved model instances and set their primary keys, like `bulk_create`; on
    PostgreSQL with one `INSERT … SELECT … FROM unnest(…) RETURNING id` per chunk. With
    `with_ids`, the instances carry their keys already (`reserve_ids`): nothing is read
    back, so inside `pipelined()` Python goes on at once. With `ignore_conflicts`, rows
    that break a unique constraint are skipped (`ON CONFLICT DO NOTHING`) and no primary
    keys are set. `then` (PostgreSQL only) is a statement run, in the same statement, over
    the rows actually inserted, which it reads as `inserted` (every column and the id); no
    primary keys are set then either."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        if then:
            raise ValueError("insert_rows(then=…) is PostgreSQL only")
        model.objects.bulk_create(objs, batch_size=500, ignore_conflicts=ignore_conflicts)
        return
    fields, columns, statement = _insertable(model, with_ids)
    kinds = [(f, k) for f, (_, k) in zip(fields, columns, strict=True)]
    with _cursor() as cursor:
        for chunk in chunks(objs):
            rows = [[_db_value(f, k, o) for f, k in kinds] for o in chunk]
            source, params = _source(columns, rows)
            sql = statement.replace("{rows}", source)
            if ignore_conflicts:
                sql += " ON CONFLICT DO NOTHING"
            if then:
                cursor.execute(f"WITH inserted AS ({sql} RETURNING *) {then}", params)
                continue
            if ignore_conflicts or with_ids:
                cursor.execute(sql, params)
                continue
            cursor.execute(sql + " RETURNING id", params)
            for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False


def insert_plain(model, rows: list[dict[str, Any]]) -> None:
    """Insert rows given as {attname: value}, the model's defaults filling the other columns,
    without building model instances (for tens of thousands of timeline or audit rows their
    construction cost more than the insert). No primary keys come back."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows], batch_size=500)
        return
    fields, columns, statement = _insertable(model)
    unknown = set().union(*rows) - {f.attname for f in fields}
    if unknown:
        raise TypeError(f"{model.__name__} has no column {sorted(unknown)[0]}")
    prepared = [
        (f.attname, f, k, f.get_default()) for f, (_, k) in zip(fields, columns, strict=True)
    ]
    with _cursor() as cursor:
        for chunk in chunks(rows):
            values = [
                [_prepared(f, k, row.get(name, default)) for name, f, k, default in prepared]
                for row in chunk
            ]
            source, params = _source(columns, values)
            cursor.execute(statement.replace("{rows}", source), params)


_KINDS = {
    "JSONField": "json",
    "DateTimeField": "ts",
    "DateField": "date",
    "BooleanField": "bool",
    "GenericIPAddressField": "inet",
    "AutoField": "int",
    "BigAutoField": "int",
    "IntegerField": "int",
    "BigIntegerField": "int",
    "SmallIntegerField": "int",
    "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int",
    "PositiveBigIntegerField": "int",
    "ForeignKey": "int",
    "FloatField": "float",
}


def _kind(field) -> str:
    return _KINDS.get(field.get_internal_type(), "text")


def _db_value(field, kind: str, obj) -> Any:
    return _prepared(field, kind, getattr(obj, field.attname))


def _prepared(field, kind: str, value: Any) -> Any:
    if kind == "json":
        return None if value is None else json.dumps(value, cls=field.encoder)
    if kind in ("ts", "int", "date", "bool") or value is None or type(value) is str:
        return value  # psycopg adapts these itself
    return field.get_db_prep_save(value, connection)


def local_settings(work_mem_mb: int, jit: bool = True) -> None:
    """PostgreSQL: for the rest of this transaction, each sort or hash may use this much
    memory (work_mem) before it spills to disk, and with `jit=False` no statement is
    compiled to machine code (JIT). Elsewhere, nothing."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{int(work_mem_mb)}MB'")
            if not jit:
                cursor.execute("SET LOCAL jit = off")


STALE_ROWS = 1000
STALE_SHARE = 0.2


def analyze_stale(cursor, tables: Sequence[str], sample: int | None = None) -> list[str]:
    """PostgreSQL: ANALYZE those of `tables` whose statistics are far behind (more than
    STALE_ROWS rows and STALE_SHARE of the table changed since the last ANALYZE). Bulk
    writes grow tables faster than autovacuum looks at them (or autovacuum is off), and a
    planner that takes a million-row table for a dozen rows picks nested loops that run for
    seconds. One catalog query when nothing is stale. Returns the tables analysed.
    `sample`: the statistics target for this ANALYZE (it reads 300 rows per unit; the
    server's default is 100), where the row count matters more than the distributions.

    SQLite keeps no count of changes: its tables are analysed every time, on a sample
    (`analysis_limit`), which takes milliseconds; without any statistics it read a month of
    one event's rollup to answer for one contact."""
    if not tables:
        return []
    if connection.vendor == "sqlite":
        cursor.execute("PRAGMA analysis_limit = 1000")
        for table in tables:
            cursor.execute(f'ANALYZE "{table}"')
        return list(tables)
    if connection.vendor != "postgresql":
        return []
    cursor.execute(
        "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
        "WHERE relname = ANY(%s)",
        [list(tables)],
    )
    stale = [
        table
        for table, live, changed in cursor.fetchall()
        if changed > STALE_ROWS and changed > STALE_SHARE * max(live, 1)
    ]
    analyze(cursor, stale, sample)
    return stale


def analyze(cursor, tables: Sequence[str], sample: int | None = None) -> None:
    """PostgreSQL: ANALYZE these tables, with the statistics target `sample` if given (set
    for these statements only: call it inside a transaction)."""
    if tables and sample:
        cursor.execute(f"SET LOCAL default_statistics_target = {int(sample)}")
    for table in tables:
        cursor.execute(f"ANALYZE {table}")
    if tables and sample:
        cursor.execute("SET LOCAL default_statistics_target TO DEFAULT")


def workspace_lock(lock_class: int, workspace_id: int) -> None:
    """Hold a lock of `lock_class` on one workspace until the transaction ends (call it
    inside one): a second holder waits. PostgreSQL: a transaction-level advisory lock (a row
    lock on the workspace would hold up every insert that references it). SQLite: nothing
    to do, the transaction already holds the database's single write lock (BEGIN
    IMMEDIATE, settings.py)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [lock_class, int(workspace_id) & 0x7FFFFFFF]
            )
