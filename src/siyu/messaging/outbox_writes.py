"""Writing a group of outbox messages back in one statement (sender.py, recovery.py)."""

from siyu.core import sqlbulk
from siyu.messaging.models import OutboxMessage

# the fields each phase writes, with their types for sqlbulk (one UPDATE … FROM for a group:
# Django's bulk_update writes a CASE per row and field, most of the sender's time)
DECIDED = (
    ("status", "text"),
    ("reason", "text"),
    ("detail", "text"),
    ("address_masked", "text"),
    ("vendor_ref", "text"),
    ("content", "json"),
    ("sent_at", "ts"),
    ("attempts", "int"),
    ("finished_at", "ts"),
)
ANSWERED = (
    ("status", "text"),
    ("reason", "text"),
    ("detail", "text"),
    ("vendor_id", "text"),
    ("due_at", "ts"),
    ("sent_at", "ts"),
    ("finished_at", "ts"),
)


def write_messages(messages: list[OutboxMessage], fields) -> None:
    if not messages:
        return
    sqlbulk.update_from_values(
        OutboxMessage._meta.db_table,
        [("id", "int"), *fields],
        [(m.pk, *(getattr(m, name) for name, _ in fields)) for m in messages],
        ", ".join(f"{name} = v.{name}" for name, _ in fields),
    )
