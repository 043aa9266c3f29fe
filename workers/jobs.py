"""The RQ entry point: one job per webhook delivery.

A rate limit that lifts soon is waited out inside the job (githubkit); a longer one reschedules the job for when
it lifts. Any other failure makes RQ run the job again after `ZDM_RETRY_INTERVALS`; when the last attempt
fails, the check run says zdm could not finish and why (a required check never silently goes missing) and the
job stays in RQ's failed registry.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from githubkit.exception import RateLimitExceeded
from redis import Redis
from rq import Queue, get_current_job

from bot import lifecycle, metrics, status
from bot.events import FORGET, Work
from bot.github import GitHubAdapter
from bot.logs import configure, log, redact, register_secret
from bot.queue import DELIVERY_KEY, job_id_for, job_retries, pass_turn, pull_request_lock, superseded
from bot.settings import Settings
from workers.commands import run_command
from workers.merge_group import check_merge_group, report_failure
from workers.review import review

MAX_RESCHEDULES = 5


def _connection() -> Redis:
    job = get_current_job()
    if job is not None:
        return job.connection
    return Redis.from_url(os.environ["REDIS_URL"])


def run(data: dict[str, Any]) -> str:
    settings = Settings()
    configure(settings.log_json)
    register_secret(settings.webhook_secret())
    connection = _connection()
    work = Work.from_dict(data)
    job = get_current_job()
    if work.kind == FORGET:
        lifecycle.forget(connection, settings, work, job.id if job is not None else None)
        metrics.count(connection, "zdm_jobs", kind=work.kind, outcome="ok")
        return "ok"
    if job is not None:
        # The worker passed the installation's turn on when it took this job; if it died before, this does.
        pass_turn(connection, Queue(settings.queue_name, connection=connection), settings, job)
    started = time.perf_counter()
    outcome = "error"
    verdict: str | None = None
    try:
        if superseded(connection, work):
            # A later delivery for this pull request is queued or done: it reviews the newest head.
            log.info("review.superseded", delivery=work.delivery, pull=work.pull_number, head=work.head_sha)
            outcome = "superseded"
            return outcome
        lock = work.lock_key()
        with pull_request_lock(
            connection, lock, work.delivery, settings.job_timeout_seconds, settings.job_timeout_seconds
        ):
            if work.kind == "review":
                report = review(work, settings, connection)
                verdict = report.conclusion if report is not None else None
            elif work.kind == "merge-group":
                verdict = check_merge_group(work, settings, connection)
            else:
                run_command(work, settings, connection)
        outcome = "ok"
    except RateLimitExceeded as error:
        if work.reschedules >= MAX_RESCHEDULES:
            _give_up(work, settings, connection, error)
            raise
        delay = error.retry_after + timedelta(seconds=1)
        later = replace(work, reschedules=work.reschedules + 1)
        # Straight into RQ's queue, not behind the installation's line: it had its turn already.
        Queue(settings.queue_name, connection=connection).enqueue_in(
            delay,
            "workers.jobs.run",
            later.as_dict(),
            job_id=job_id_for(f"{work.delivery}-later{later.reschedules}"),
            retry=job_retries(settings),
        )
        log.warning("job.rescheduled", delivery=work.delivery, seconds=delay.total_seconds())
        outcome = "rescheduled"
    except Exception as error:
        job = get_current_job()
        if job is None or not job.retries_left:
            _give_up(work, settings, connection, error)
        raise
    finally:
        seconds = time.perf_counter() - started
        metrics.count(connection, "zdm_jobs", kind=work.kind, outcome=outcome)
        metrics.count(connection, "zdm_job_seconds", seconds, kind=work.kind)
        status.record(
            connection,
            status.FinishedJob(
                f"{work.owner}/{work.repo}",
                work.pull_number,
                work.kind,
                outcome,
                verdict,
                seconds,
                time.time(),
            ),
        )
    return outcome


def _give_up(work: Work, settings: Settings, connection: Redis, error: BaseException) -> None:
    """The last attempt failed: say so on the pull request's check run, fail closed."""
    reason = redact(f"{type(error).__name__}: {error}")[:2000]
    log.error("job.failed", delivery=work.delivery, pull=work.pull_number, error=reason)
    # A redelivery of this delivery (from GitHub's UI or the sweep) must be accepted, not dropped as seen.
    connection.delete(DELIVERY_KEY.format(work.delivery))
    if work.kind == "merge-group":
        try:
            report_failure(work, settings, connection, reason)
        except Exception as report_error:
            log.error("job.failure_not_reported", delivery=work.delivery, error=redact(str(report_error)))
        return
    if work.pull_number is None:
        return
    try:
        with GitHubAdapter(settings, connection, work.installation_id) as adapter:
            head = work.head_sha or adapter.pull_request_commits(work.owner, work.repo, work.pull_number)[0]
            adapter.publish_check_run(
                work.owner,
                work.repo,
                None,
                head,
                work.pull_number,
                "failure",
                "zdm could not finish",
                f"zdm could not review this pull request: `{reason}`.\n\nRe-run the check (or comment "
                "`/zdm recheck`) once GitHub answers again. The check fails closed: a migration zdm has not "
                "read is not assumed safe.",
                [],
            )
    except Exception as report_error:
        log.error("job.failure_not_reported", delivery=work.delivery, error=redact(str(report_error)))
