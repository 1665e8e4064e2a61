"""Reads: the ingestion lag shown by `siyu check` and the console."""

import datetime

from django.utils import timezone

from siyu.tracking.models import Event, QueuedEvent, ResolvedEvent
from siyu.tracking.queries import ingestion_lag, write_keys


def test_no_events_no_lag(cast):
    lag = ingestion_lag()
    assert (lag.pending, lag.oldest_received_at, lag.age_seconds) == (0, None, 0.0)
    assert str(lag) == "no pending events"


def test_lag_counts_pending_events_and_ages_the_oldest(cast, collector, outsider_collector):
    collector.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"}
                for i in range(3)
            ]
        },
    )
    outsider_collector.post("/v1/track", {"userId": "u", "event": "E"})
    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
    Event.objects.filter(workspace=cast.outsider_workspace).update(received_at=an_hour_ago)
    m2 = Event.objects.get(message_id="m2")
    QueuedEvent.objects.filter(event=m2).delete()
    ResolvedEvent.objects.create(
        event=m2, workspace=m2.workspace, timestamp=m2.timestamp, processed_at=timezone.now()
    )

    ours = ingestion_lag(cast.workspace)
    assert ours.pending == 2 and ours.age_seconds < 60

    everyone = ingestion_lag()
    assert everyone.pending == 3
    assert everyone.oldest_received_at == an_hour_ago
    assert 3590 < everyone.age_seconds < 3700
    assert str(everyone).startswith("3 pending event(s), oldest 36")


def test_write_keys_are_listed_per_workspace(cast, write_key, outsider_collector):
    assert list(write_keys(cast.workspace)) == [write_key[0]]
