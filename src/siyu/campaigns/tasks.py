"""Task entry points of the campaigns app: safe to run twice (locks and conditional updates
inside)."""

from django_tasks import task


@task()
def step_journeys() -> dict:
    """Enter contacts from segment changes and dates, then move every due walk."""
    from siyu.campaigns.journey_actions import journeys_tick

    return journeys_tick()
