"""Background work on the pool, run as jobs with progress."""

from siyu.contacts import export as _export  # noqa: F401 - registers contacts.export
from siyu.contacts.actions.tags import contacts_tag
from siyu.contacts.imports import jobs as _imports  # noqa: F401 - registers *.import
from siyu.contacts.queries import ContactFilter, visible_contacts
from siyu.core.jobs import job_actor, job_handler
from siyu.core.models import Job

BATCH = 5000


@job_handler("contacts.bulk_tag")
def bulk_tag_job(job: Job, progress) -> dict:
    """Tag every contact matching a saved list filter, in id-ordered batches of 5,000.
    Re-running after a crash is harmless: tagging is idempotent."""
    actor = job_actor(job)
    flt = ContactFilter.unsealed(job.params["filter"])
    qs = flt.apply(job.workspace, visible_contacts(job.workspace, actor))
    total = qs.count()
    progress(0, total)
    done = added = removed = 0
    last_id = 0
    while True:
        ids = list(qs.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        counts = contacts_tag(
            workspace=job.workspace,
            actor=actor,
            contact_ids=ids,
            add=job.params.get("add", []),
            remove=job.params.get("remove", []),
        )
        added, removed = added + counts["added"], removed + counts["removed"]
        done += len(ids)
        last_id = ids[-1]
        progress(done)
    return {"matched": total, "added": added, "removed": removed}
