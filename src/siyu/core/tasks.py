"""Task entry points: take ids, call into actions, safe to run twice."""

from django_tasks import task


@task()
def run_job(job_id: int) -> None:
    from siyu.contacts import tasks as _contacts_handlers  # noqa: F401 - registers handlers
    from siyu.core.jobs import job_run

    job_run(job_id)
