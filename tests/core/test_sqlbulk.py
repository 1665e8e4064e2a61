"""Set-based writes (core/sqlbulk.py): ids reserved ahead of an insert, and statements held
back until a block ends."""

import pytest
from django.db import connection, transaction

from siyu.contacts.models import Contact, TimelineEntry
from siyu.core import sqlbulk


def entry(cast, contact: Contact, kind: str) -> dict:
    return {"workspace_id": cast.workspace.pk, "contact_id": contact.pk, "kind": kind}


def test_reserved_ids_are_new_and_take_the_rows_given(cast):
    first = Contact.objects.create(workspace=cast.workspace, name="先来")
    with transaction.atomic():
        ids = sqlbulk.reserve_ids(Contact, 3)
        assert ids == sorted(ids) and len(set(ids)) == 3 and min(ids) > first.pk
        rows = [
            Contact(workspace=cast.workspace, name=f"预留{n}", pk=pk) for n, pk in enumerate(ids)
        ]
        sqlbulk.insert_rows(Contact, rows, with_ids=True)
    assert dict(Contact.objects.filter(pk__in=ids).values_list("pk", "name")) == {
        pk: f"预留{n}" for n, pk in enumerate(ids)
    }
    # the next contact created the ordinary way takes none of them
    assert Contact.objects.create(workspace=cast.workspace, name="后来").pk > max(ids)
    assert sqlbulk.reserve_ids(Contact, 0) == []


def test_held_statements_are_sent_in_order_when_the_block_ends(cast):
    contact = Contact.objects.create(workspace=cast.workspace, name="甲")
    with transaction.atomic(), sqlbulk.pipelined():
        with sqlbulk.held():
            sqlbulk.insert_plain(TimelineEntry, [entry(cast, contact, "first")])
            sqlbulk.insert_plain(TimelineEntry, [entry(cast, contact, "second")])
            if connection.vendor == "postgresql":  # not sent yet
                assert not TimelineEntry.objects.filter(contact=contact).exists()
    kinds = TimelineEntry.objects.filter(contact=contact).order_by("id").values_list("kind")
    assert [k for (k,) in kinds] == ["first", "second"]


def test_a_held_block_that_raises_sends_nothing(cast):
    contact = Contact.objects.create(workspace=cast.workspace, name="乙")
    with pytest.raises(RuntimeError, match="stop"), transaction.atomic():
        with sqlbulk.held():
            sqlbulk.insert_plain(TimelineEntry, [entry(cast, contact, "never")])
            raise RuntimeError("stop")
    assert not TimelineEntry.objects.filter(contact=contact).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="held only on PostgreSQL")
def test_nothing_held_can_ask_for_a_result(cast):
    with transaction.atomic(), sqlbulk.held(), pytest.raises(RuntimeError, match="no results"):
        sqlbulk.insert_rows(Contact, [Contact(workspace=cast.workspace, name="丙")])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL array")
@pytest.mark.parametrize("values", [[], [1, -2, 2**62], [None, 7, None], list(range(5000))])
def test_bigint_arrays_arrive_as_sent(cast, values):
    with sqlbulk.pg_cursor() as cursor:
        cursor.execute("SELECT %b::bigint[]", [sqlbulk.BigIntArray(values)])
        assert cursor.fetchone()[0] == values


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL statistics")
def test_a_small_sample_analyses_fewer_rows_and_leaves_the_setting_alone(cast):
    with transaction.atomic(), sqlbulk.pg_cursor() as cursor:
        cursor.execute("SHOW default_statistics_target")
        (before,) = cursor.fetchone()
        cursor.execute(
            "CREATE TEMP TABLE sampled ON COMMIT DROP AS SELECT generate_series(1, 9000) n"
        )
        sqlbulk.analyze(cursor, ["sampled"], sample=10)
        cursor.execute(
            "SELECT cardinality(histogram_bounds::text::int[]) FROM pg_stats "
            "WHERE tablename = 'sampled' AND attname = 'n'"
        )
        assert cursor.fetchone()[0] <= 11  # a target of 10: ten buckets
        cursor.execute("SHOW default_statistics_target")
        assert cursor.fetchone()[0] == before
        sqlbulk.analyze(cursor, ["sampled"])
        cursor.execute(
            "SELECT cardinality(histogram_bounds::text::int[]) FROM pg_stats "
            "WHERE tablename = 'sampled' AND attname = 'n'"
        )
        assert cursor.fetchone()[0] > 11


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL settings")
@pytest.mark.django_db(transaction=True)  # a transaction of its own, not the test's
def test_local_settings_last_as_long_as_the_transaction():
    def shown() -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('work_mem'), current_setting('jit')")
            return cursor.fetchone()

    before = shown()
    with transaction.atomic():
        sqlbulk.local_settings(64, jit=False)
        assert shown() == ("64MB", "off")
    assert shown() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pipeline mode")
@pytest.mark.django_db
def test_reading_a_sent_statement_leaves_the_later_ones_running():
    with transaction.atomic(), sqlbulk.pipelined():
        first = sqlbulk.send("SELECT 1", None)
        later = sqlbulk._cursor_on(connection.connection)
        later.execute("SELECT 2 FROM pg_sleep(0.2)")
        assert first() == [(1,)]
        assert later.pgresult is None  # its result was left to come
        assert later.fetchall() == [(2,)]
    # outside a pipeline, a statement's rows are read as they always are
    assert sqlbulk.send("SELECT 3", None)() == [(3,)]
