"""The RQ entry point: one job per webhook delivery."""

from __future__ import annotations

import os
import time
from typing import Any

from redis import Redis
from rq import get_current_job

from bot import metrics
from bot.events import Work
from bot.logs import configure, register_secret
from bot.queue import pull_request_lock
from bot.settings import Settings
from workers.commands import run_command
from workers.review import review


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
    started = time.perf_counter()
    outcome = "error"
    try:
        assert work.pull_number is not None
        lock = f"zdm:lock:{work.owner}/{work.repo}#{work.pull_number}"
        job = get_current_job()
        holder = job.id if job is not None else work.delivery
        with pull_request_lock(
            connection, lock, holder, settings.job_timeout_seconds, settings.job_timeout_seconds
        ):
            if work.kind == "review":
                review(work, settings, connection)
            else:
                run_command(work, settings, connection)
        outcome = "ok"
        return outcome
    finally:
        metrics.count(connection, "zdm_jobs", kind=work.kind, outcome=outcome)
        metrics.count(connection, "zdm_job_seconds", time.perf_counter() - started, kind=work.kind)
