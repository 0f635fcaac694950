"""Job records: submit (enqueue after commit), execute (CAS claim, terminal state with the work),
report (long-poll wake-up and signed callbacks) and the outbox relay. See DESIGN.md "Jobs"."""

from app.jobs.documents import accepted_document, job_document
from app.jobs.queries import list_jobs, metrics_snapshot, visible_job, wait_for_job
from app.jobs.runner import JobRun, RetryLater, execute
from app.jobs.submit import submit

__all__ = [
    "JobRun",
    "RetryLater",
    "accepted_document",
    "execute",
    "job_document",
    "list_jobs",
    "metrics_snapshot",
    "submit",
    "visible_job",
    "wait_for_job",
]
