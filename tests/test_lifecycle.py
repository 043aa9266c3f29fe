"""An installation deleted or suspended, or repositories removed from it: GitHub's own payloads, real Redis, real
RQ workers. Work for them stops, and afterwards no key of theirs is left in Redis, whatever its family."""

from __future__ import annotations

import contextlib
import json
import re
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from rq.job import Job

from bot.events import Work
from bot.queue import work_of
from tests.fakegithub.harness import AppUnderTest, checked_app, wait_for
from tests.fakegithub.spec import webhook_example
from tests.fakegithub.state import Fault, PullRequest, Repository
from tests.test_app import (
    BLOCKING,
    MIGRATIONS,
    completed_run,
    new_repo,
    open_pull,
    pull_request_payload,
    queue_is_idle,
)

# Every key family zdm writes (bot/lifecycle.py says whose each is): a key outside these fails the test, so a new
# family cannot be added without deciding what happens to it when an installation goes.
FAMILIES = (
    "zdm:tree:",
    "zdm:roots:",
    "zdm:split-reads:",
    "zdm:lock:",
    "zdm:newest:",
    "zdm:replay:",
    "zdm:fair:",
    "zdm:githubkit:githubkit:auth:app:",
    "zdm:status:recent",
    "zdm:delivery:",
    "zdm:metrics",
    "zdm:app-slug:",
    "zdm:sweep:",
    "zdm:setup:state:",
)


@pytest.fixture(scope="module")
def zdm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    with checked_app(tmp_path_factory.mktemp("lifecycle"), redis_server, workers=2) as app:
        yield app


def reviewed(zdm: AppUnderTest, repo: Repository, base: str, name: str) -> PullRequest:
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_{name}/migration.sql": BLOCKING})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    return pull


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple | set):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{_text(k)}={_text(v)}" for k, v in value.items())
    return str(value)


def _works(text: str) -> list[Work]:
    """Work items kept as JSON (an installation's waiting deliveries)."""
    found = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and {"owner", "repo", "installation_id"} <= set(data):
            found.append(Work.from_dict(data))
    return found


def leftovers(connection: Redis, installation: int, account: str, repositories: set[str] | None) -> list[str]:
    """Every key of the installation (repositories None) or of those repositories ("owner/name"), by its name or
    by what it holds: repository names in any value, and the delivery inside each RQ job and waiting entry."""

    def holds(owner: str, repo: str, installation_id: int | None = None) -> bool:
        if repositories is None:
            return owner.lower() == account.lower() or installation_id == installation
        return f"{owner}/{repo}".lower() in repositories

    needles = [account.lower()] if repositories is None else sorted(repositories)
    left = []
    for raw in connection.scan_iter("*", count=1000):
        key = raw.decode()
        kind = _text(connection.type(key))
        if kind == "string":
            value: Any = connection.get(key)
        elif kind == "hash":
            value = connection.hgetall(key)
        elif kind == "list":
            value = connection.lrange(key, 0, -1)
        elif kind == "set":
            value = connection.smembers(key)
        elif kind == "zset":
            value = connection.zrange(key, 0, -1)
        elif kind == "stream":
            value = connection.xrange(key)
        else:
            value = b""
        text = key + "\n" + _text(value)
        if key.startswith("rq:job:"):
            # RQ keeps a job's function and arguments pickled and compressed.
            data = connection.hget(key, "data")
            raw_data = data if isinstance(data, bytes) else b""
            with contextlib.suppress(zlib.error):
                raw_data = zlib.decompress(raw_data)
            text += "\n" + raw_data.decode("latin-1")
            job = Job.fetch(key.removeprefix("rq:job:"), connection=connection)
            work = work_of(job)
            if work is not None and holds(work.owner, work.repo, work.installation_id):
                left.append(f"{key}: job of {work.owner}/{work.repo}")
                continue
        if any(needle in text.lower() for needle in needles):
            left.append(f"{key}: names {needles}")
        elif repositories is None and re.search(rf"(^|:){installation}(:|$)", key):
            left.append(f"{key}: named by installation {installation}")
        elif any(holds(w.owner, w.repo, w.installation_id) for w in _works(text)):
            left.append(f"{key}: waiting delivery")
    return left


def jobs_of(connection: Redis, account: str, repositories: set[str] | None) -> set[str]:
    ids = set()
    for raw in connection.scan_iter("rq:job:*", count=1000):
        work = work_of(Job.fetch(raw.decode().removeprefix("rq:job:"), connection=connection))
        if work is not None and (
            work.owner.lower() == account.lower()
            if repositories is None
            else f"{work.owner}/{work.repo}".lower() in repositories
        ):
            ids.add(work.delivery)
    return ids


def keys_naming(connection: Redis, deliveries: set[str]) -> list[str]:
    """Keys named after those jobs: RQ's results and executions of a job outlive nothing but the job itself."""
    return [
        key
        for raw in connection.scan_iter("rq:*", count=1000)
        if any(delivery in (key := raw.decode()) for delivery in deliveries)
    ]


def unknown_families(connection: Redis) -> list[str]:
    return [
        key
        for raw in connection.scan_iter("zdm:*", count=1000)
        if not (key := raw.decode()).startswith(FAMILIES)
    ]


def deliver_while_stopped(zdm: AppUnderTest, deliveries: list[tuple[str, dict[str, Any]]]) -> None:
    """Deliveries that wait in the queue (no worker runs), then workers started again."""
    zdm.stop_workers()
    for event, payload in deliveries:
        assert zdm.deliver(event, payload).status_code == 202
    zdm.start_worker()
    zdm.start_worker()
    wait_for(lambda: queue_is_idle(zdm), timeout=60, what="the queue to drain")


@pytest.mark.parametrize("action", ["deleted", "suspend"])
def test_an_installation_deleted_or_suspended_leaves_nothing_of_it(zdm: AppUnderTest, action: str) -> None:
    event = webhook_example("installation", action)
    installation = int(event["installation"]["id"])
    account = str(event["installation"]["account"]["login"])
    connection = Redis.from_url(zdm.redis_url)
    kept_repo, kept_base = new_repo(zdm, f"kept-{action}")
    reviewed(zdm, kept_repo, kept_base, "kept")
    repos = [new_repo(zdm, name, account, installation) for name in ("Hello-World", "Spoon-Knife")]
    for repo, base in repos:
        reviewed(zdm, repo, base, "reviewed")
    waiting = [open_pull(zdm, repo, base, {"README.md": "waiting\n"}) for repo, base in repos]
    assert leftovers(connection, installation, account, None)
    jobs = jobs_of(connection, account, None)
    assert keys_naming(connection, jobs)

    deliver_while_stopped(
        zdm,
        [
            *(
                ("pull_request", pull_request_payload(repo, pull))
                for (repo, _), pull in zip(repos, waiting, strict=True)
            ),
            ("installation", event),
            ("pull_request", pull_request_payload(kept_repo, open_pull(zdm, kept_repo, kept_base, {}))),
        ],
    )

    for (repo, _), pull in zip(repos, waiting, strict=True):
        assert zdm.github.check_runs_for(repo, pull.head_sha) == []
    assert leftovers(connection, installation, account, None) == []
    assert keys_naming(connection, jobs) == []
    assert unknown_families(connection) == []
    # Another installation's keys and jobs are untouched, and it is still reviewed.
    assert leftovers(connection, kept_repo.installation_id, "acme", {f"acme/kept-{action}"})
    assert len(kept_repo.check_runs) == 2


def test_a_running_review_of_a_deleted_installation_posts_nothing(zdm: AppUnderTest) -> None:
    event = webhook_example("installation", "deleted")
    installation = int(event["installation"]["id"])
    account = str(event["installation"]["account"]["login"])
    repo, base = new_repo(zdm, "Hello-World", account, installation)
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    # GitHub is slow to answer the review's read: the job is still running when the installation goes.
    zdm.github.faults.append(Fault("POST", "/graphql", 0, delay=3.0))
    started = time.monotonic()
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    wait_for(lambda: not any(f.times for f in zdm.github.faults), what="the review to reach GitHub")
    assert zdm.deliver("installation", event).status_code == 202
    wait_for(lambda: queue_is_idle(zdm), timeout=60, what="the queue to drain")
    time.sleep(max(0.0, started + 4.0 - time.monotonic()))  # past the slow answer
    zdm.github.faults.clear()
    assert zdm.github.check_runs_for(repo, pull.head_sha) == []
    assert repo.reviews == [] and repo.issue_comments == []
    assert leftovers(Redis.from_url(zdm.redis_url), installation, account, None) == []


def test_repositories_removed_from_an_installation_are_forgotten_and_the_others_kept(
    zdm: AppUnderTest,
) -> None:
    event = webhook_example("installation_repositories", "removed")
    installation = int(event["installation"]["id"])
    account = str(event["installation"]["account"]["login"])
    removed = {str(r["full_name"]).lower() for r in event["repositories_removed"]}
    connection = Redis.from_url(zdm.redis_url)
    gone, gone_base = new_repo(zdm, "Hello-World", account, installation)
    stays, stays_base = new_repo(zdm, "Spoon-Knife", account, installation)
    assert {f"{account}/Hello-World".lower()} == removed
    reviewed(zdm, gone, gone_base, "reviewed")
    reviewed(zdm, stays, stays_base, "reviewed")
    jobs = jobs_of(connection, account, removed)
    gone_waiting = open_pull(zdm, gone, gone_base, {"README.md": "waiting\n"})
    stays_waiting = open_pull(zdm, stays, stays_base, {"README.md": "waiting\n"})

    deliver_while_stopped(
        zdm,
        [
            ("pull_request", pull_request_payload(gone, gone_waiting)),
            ("pull_request", pull_request_payload(stays, stays_waiting)),
            ("installation_repositories", event),
        ],
    )

    assert zdm.github.check_runs_for(gone, gone_waiting.head_sha) == []
    completed_run(zdm, stays, stays_waiting.head_sha)
    assert leftovers(connection, installation, account, removed) == []
    assert keys_naming(connection, jobs) == []
    assert unknown_families(connection) == []
    # The installation stays, with its other repository's caches and its token.
    assert leftovers(connection, installation, account, {f"{account}/spoon-knife"})
    assert list(connection.scan_iter(f"zdm:githubkit:*:installation:{installation}:*"))
