"""What zdm keeps in Redis for an installation and its repositories, and forgetting it: when the installation is
deleted or suspended, or repositories are removed from it, its work stops and nothing of it stays readable.

Every key family zdm writes, and whose it is:

- named by repository (`zdm:<family>:<owner>/<name>` then `:`, `#` or the end): the trees of migration roots at a
  commit and the roots found (`zdm:tree:`, `zdm:roots:`, the replay's inputs, bot/github.py and
  workers/review.py), repositories read in batches (`zdm:split-reads:`), the job lock per pull request or merge
  group (`zdm:lock:`), the latest delivery for a pull request (`zdm:newest:`, bot/queue.py) and the schemas
  reviews replayed (`zdm:replay:`, workers/replay_cache.py);
- named by installation: its line into the queue (`zdm:fair:<id>:`) and its access tokens (githubkit's cache,
  `zdm:githubkit:…:installation:<id>:…`);
- naming a repository inside: RQ's jobs (each carries its delivery's owner and repository) in the queue and every
  registry, and the status page's last jobs (`zdm:status:recent`);
- of no installation: delivery ids and the sweep's attempts (a GitHub GUID and a count; kept, so a redelivery of
  a delivery already handled is still refused), the App's slug, its JWT, the shared metrics (counts by kind and
  status), the setup page's states. Approvals are not in Redis: they live in zdm's comments on GitHub.

No GitHub call here: a deleted or suspended installation can no longer be asked anything.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.results import Result

from bot import status
from bot.events import FORGET, Work
from bot.logs import log
from bot.queue import NEXT_KEY, WAITING_KEY, pass_turn, queue_for, work_of
from bot.settings import Settings

REPOSITORY_FAMILIES = (
    "zdm:tree:",
    "zdm:roots:",
    "zdm:split-reads:",
    "zdm:lock:",
    "zdm:newest:",
    "zdm:replay:",
)
# githubkit's cache key for an installation's access token, under the prefix bot/github.py gives it.
TOKEN_KEYS = "zdm:githubkit:githubkit:auth:app:*:installation:{}:*"
# How long a stopped job's worker has to take its job process down and record it.
STOP_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Scope:
    """What goes: a whole installation (its account's repositories), or some of its repositories."""

    installation: int
    account: str
    repositories: frozenset[str]  # lower-case "owner/name"; empty: all of the account's

    @classmethod
    def of(cls, work: Work) -> Scope:
        return cls(work.installation_id, work.owner, frozenset(r.lower() for r in work.repositories))

    @property
    def whole(self) -> bool:
        return not self.repositories

    def holds(self, owner: str, repo: str) -> bool:
        # GitHub's logins and repository names are case-insensitive.
        if self.whole:
            return owner.lower() == self.account.lower()
        return f"{owner}/{repo}".lower() in self.repositories

    def holds_work(self, work: Work) -> bool:
        if work.kind == FORGET:
            return False
        return (self.whole and work.installation_id == self.installation) or self.holds(work.owner, work.repo)


@dataclass
class Forgotten:
    dropped: int = 0  # jobs that had not started
    stopped: int = 0  # jobs stopped while running
    records: int = 0  # finished and failed jobs' records
    keys: int = 0


def drop_waiting(connection: Redis, queue: Queue, settings: Settings, work: Work) -> int:
    """At once, by the receiver: the deliveries of what goes that wait for their turn are dropped, so no worker
    starts one before the `forget` job (first in the queue) has run."""
    return _drop_line(connection, queue, settings, Scope.of(work))


def forget(connection: Redis, settings: Settings, work: Work, current_job: str | None) -> Forgotten:
    """The `forget` job: stop the work, delete every job record and key of what goes."""
    scope = Scope.of(work)
    queue = queue_for(connection, settings)
    done = Forgotten()
    # Again: a delivery may have arrived between the receiver's drop and this job.
    done.dropped = _drop_line(connection, queue, settings, scope) + _drop_queued(queue, scope)
    done.stopped = _stop_running(connection, queue, scope, current_job)
    # After the stops: a stopped job is recorded as failed, and one that finished meanwhile as finished.
    done.records = _delete_records(queue, scope, current_job)
    done.keys = _delete_keys(connection, scope)
    _forget_recent(connection, scope)
    log.info(
        "installation.forgotten",
        installation=scope.installation,
        cause=f"{work.event}.{work.action}",
        repositories=len(scope.repositories) or "all",
        **vars(done),
    )
    return done


def _drop_line(connection: Redis, queue: Queue, settings: Settings, scope: Scope) -> int:
    """The installation's deliveries waiting for their turn, and its job in RQ's queue when it is theirs."""
    next_key, waiting_key = NEXT_KEY.format(scope.installation), WAITING_KEY.format(scope.installation)

    seen: dict[str, Any] = {}

    def drop(pipe: Pipeline) -> None:
        seen["holder"] = pipe.get(next_key)
        entries = [Work.from_dict(json.loads(raw)) for raw in pipe.lrange(waiting_key, 0, -1)]
        kept = [w for w in entries if not scope.holds_work(w)]
        seen["dropped"] = len(entries) - len(kept)
        pipe.multi()
        pipe.delete(waiting_key)
        if kept:
            pipe.rpush(waiting_key, *(json.dumps(w.as_dict()) for w in kept))
        if scope.whole:
            pipe.delete(next_key)

    connection.transaction(drop, next_key, waiting_key)
    holder, dropped = seen["holder"], int(seen["dropped"])
    if isinstance(holder, bytes):
        with contextlib.suppress(NoSuchJobError):
            job = Job.fetch(holder.decode(), connection=connection)
            work = work_of(job)
            if work is not None and scope.holds_work(work) and _unqueue(queue, job):
                dropped += 1
                if not scope.whole:
                    pass_turn(connection, queue, settings, job)  # the installation's other repositories go on
    return dropped


def _unqueue(queue: Queue, job: Job) -> bool:
    """Take the job out of RQ's queue before any worker does. False when a worker took it first: it is running
    then, and stopped like the others."""
    if not queue.connection.lrem(queue.key, 0, job.id):
        return False
    _delete(job)
    return True


def _delete(job: Job) -> None:
    Result.delete_all(job)
    job.delete(remove_from_queue=True)


def _jobs(connection: Redis, ids: Iterable[str]) -> list[Job]:
    return [job for job in Job.fetch_many(list(ids), connection=connection) if job is not None]


def _of_scope(jobs: list[Job], scope: Scope, current_job: str | None) -> list[Job]:
    return [
        job
        for job in jobs
        if job.id != current_job and (work := work_of(job)) is not None and scope.holds_work(work)
    ]


def _drop_queued(queue: Queue, scope: Scope) -> int:
    """Jobs that have not started: in RQ's queue (retries put back), and waiting there for a time (a retry's
    interval, a rate limit's reset)."""
    dropped = sum(
        _unqueue(queue, job) for job in _of_scope(_jobs(queue.connection, queue.get_job_ids()), scope, None)
    )
    later = [*queue.scheduled_job_registry.get_job_ids(), *queue.deferred_job_registry.get_job_ids()]
    for job in _of_scope(_jobs(queue.connection, later), scope, None):
        _delete(job)
        dropped += 1
    return dropped


def _delete_records(queue: Queue, scope: Scope, current_job: str | None) -> int:
    """What RQ keeps of jobs that ran: finished, failed (stopped ones among them) and canceled."""
    ids = [
        *queue.finished_job_registry.get_job_ids(),
        *queue.failed_job_registry.get_job_ids(),
        *queue.canceled_job_registry.get_job_ids(),
    ]
    jobs = _of_scope(_jobs(queue.connection, ids), scope, current_job)
    for job in jobs:
        _delete(job)
    return len(jobs)


def _stop_running(connection: Redis, queue: Queue, scope: Scope, current_job: str | None) -> int:
    """Running jobs are stopped: RQ kills their job process, so nothing is posted afterwards. Waits until their
    workers have recorded them (as stopped, in the failed registry), for up to STOP_WAIT_SECONDS."""
    stopped: set[str] = set()
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline:
        # A job a worker has just taken is in the intermediate queue until it starts: it is stopped once it has.
        taken = [*queue.started_job_registry.get_job_ids(), *queue.intermediate_queue.get_job_ids()]
        running = _of_scope(_jobs(connection, taken), scope, current_job)
        if not running:
            break
        for job in running:
            # Asked again each round: a worker still setting the job up ignores the command, or refuses it.
            with contextlib.suppress(InvalidJobOperation, NoSuchJobError):
                send_stop_job_command(connection, job.id)
                stopped.add(job.id)
        time.sleep(0.2)
    return len(stopped)


def _repository_of(key: str) -> tuple[str, str] | None:
    for family in REPOSITORY_FAMILIES:
        if key.startswith(family):
            # After the name: `:`, a pull request's `#number` or a merge group's `@head`.
            name = re.split(r"[:#@]", key[len(family) :], maxsplit=1)[0]
            owner, _, repo = name.partition("/")
            return owner, repo
    return None


def _delete_keys(connection: Redis, scope: Scope) -> int:
    doomed = [
        raw
        for raw in connection.scan_iter("zdm:*", count=1000)
        if (found := _repository_of(raw.decode(errors="replace"))) is not None and scope.holds(*found)
    ]
    if scope.whole:
        doomed += list(connection.scan_iter(TOKEN_KEYS.format(scope.installation), count=1000))
        doomed += [NEXT_KEY.format(scope.installation), WAITING_KEY.format(scope.installation)]
    deleted = 0
    for start in range(0, len(doomed), 500):
        deleted += int(connection.unlink(*doomed[start : start + 500]))
    return deleted


def _recent_holds(scope: Scope, raw: bytes | str) -> bool:
    owner, _, repo = str(json.loads(raw)["repository"]).partition("/")
    return scope.holds(owner, repo)


def _forget_recent(connection: Redis, scope: Scope) -> None:
    """The status page's last jobs, without the installation's."""

    def keep(pipe: Pipeline) -> None:
        entries = pipe.lrange(status.RECENT_KEY, 0, -1)
        kept = [raw for raw in entries if not _recent_holds(scope, raw)]
        pipe.multi()
        if len(kept) < len(entries):
            pipe.delete(status.RECENT_KEY)
            if kept:
                pipe.rpush(status.RECENT_KEY, *kept)

    connection.transaction(keep, status.RECENT_KEY)
