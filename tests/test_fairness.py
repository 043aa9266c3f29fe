"""Fair across installations, and superseded heads: real Redis, real RQ workers, the fake GitHub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from bot import metrics
from tests.fakegithub.harness import AppUnderTest, checked_app, wait_for
from tests.fakegithub.state import PullRequest, Repository
from tests.test_app import (
    BLOCKING,
    MIGRATIONS,
    SAFE,
    completed_run,
    new_repo,
    open_pull,
    pull_request_payload,
    queue_is_idle,
)

OTHER_INSTALLATION = 7002


@pytest.fixture(scope="module")
def zdm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    with checked_app(tmp_path_factory.mktemp("fair"), redis_server, workers=2) as app:
        yield app


def check_runs_posted(zdm: AppUnderTest, *repos: Repository) -> list[str]:
    """The repositories of the check runs created so far, in the order GitHub received them."""
    paths = {f"/repos/{r.owner}/{r.name}/check-runs": f"{r.owner}/{r.name}" for r in repos}
    return [paths[c.path] for c in list(zdm.github.calls) if c.method == "POST" and c.path in paths]


def test_a_burst_from_one_installation_does_not_hold_up_another(zdm: AppUnderTest) -> None:
    busy, busy_base = new_repo(zdm, "rebased-all")
    pulls = [
        open_pull(zdm, busy, busy_base, {f"{MIGRATIONS}/20240201000000_{n}/migration.sql": BLOCKING})
        for n in range(30)
    ]
    quiet, quiet_base = new_repo(zdm, "one-change", owner="globex", installation=OTHER_INSTALLATION)
    # A first review fetches the installation's token: the one measured then takes as long as the others.
    warm = open_pull(zdm, quiet, quiet_base, {"README.md": "warm\n"})
    zdm.deliver("pull_request", pull_request_payload(quiet, warm))
    completed_run(zdm, quiet, warm.head_sha)
    lone = open_pull(zdm, quiet, quiet_base, {f"{MIGRATIONS}/20240201000000_one/migration.sql": BLOCKING})
    for pull in pulls:
        assert zdm.deliver("pull_request", pull_request_payload(busy, pull, "synchronize")).status_code == 202
    before = len(check_runs_posted(zdm, busy))
    assert zdm.deliver("pull_request", pull_request_payload(quiet, lone, "synchronize")).status_code == 202

    completed_run(zdm, quiet, lone.head_sha, timeout=60)
    for pull in pulls:
        completed_run(zdm, busy, pull.head_sha, timeout=120)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")

    order = check_runs_posted(zdm, busy, quiet)[1:]  # after the warm-up
    lone_at = order.index("globex/one-change")
    # Ahead of it: what was done when it arrived, then at most the two reviews running, the busy installation's
    # one job waiting in the queue, and one more the other worker may finish while its own review runs. In arrival
    # order it would have been all thirty.
    assert lone_at - before <= 4, (before, order)
    assert len(order) - lone_at - 1 >= 10, order  # the busy installation still had a backlog
    assert len(order) == 31


def push(zdm: AppUnderTest, repo: Repository, pull: PullRequest, files: dict[str, str]) -> str:
    """A new commit on the pull request's branch: its head moves."""
    pull.head_sha = zdm.github.commit(repo, files, parent=pull.head_sha)
    return pull.head_sha


def github_calls_reviewing(zdm: AppUnderTest, deliver: list[tuple[Repository, PullRequest, str]]) -> int:
    """Deliveries sent while no worker runs, then workers started: the GitHub calls it took to handle them."""
    zdm.stop_workers()
    for repo, pull, head in deliver:
        payload = pull_request_payload(repo, pull, "synchronize")
        payload["pull_request"]["head"]["sha"] = head
        assert zdm.deliver("pull_request", payload).status_code == 202
    before = len(zdm.github.calls)
    zdm.start_worker()
    zdm.start_worker()
    wait_for(lambda: queue_is_idle(zdm), timeout=60, what="the queue to drain")
    return len(zdm.github.calls) - before


def reviewed_pull(zdm: AppUnderTest, name: str) -> tuple[Repository, PullRequest]:
    repo, base = new_repo(zdm, name)
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    return repo, pull


def superseded_jobs(zdm: AppUnderTest) -> float:
    shared = Redis.from_url(zdm.redis_url).hget(metrics.SHARED, "zdm_jobs|kind=review,outcome=superseded")
    return float(shared or 0)


def test_only_the_newest_head_waiting_is_reviewed_the_others_without_a_github_call(zdm: AppUnderTest) -> None:
    final = {f"{MIGRATIONS}/20240301000000_audit/migration.sql": SAFE}
    # The same pull request pushed to once: what reviewing its new head costs.
    once_repo, once = reviewed_pull(zdm, "pushed-once")
    once_head = push(zdm, once_repo, once, final)
    alone = github_calls_reviewing(zdm, [(once_repo, once, once_head)])

    # Pushed to three times while the workers were busy elsewhere: three deliveries wait.
    repo, pull = reviewed_pull(zdm, "pushed-thrice")
    heads = [
        push(zdm, repo, pull, {f"{MIGRATIONS}/20240301000000_audit/migration.sql": "SELECT 1;\n"}),
        push(zdm, repo, pull, {"README.md": "# app, again\n"}),
        push(zdm, repo, pull, final),
    ]
    skipped = superseded_jobs(zdm)
    calls = github_calls_reviewing(zdm, [(repo, pull, head) for head in heads])

    assert superseded_jobs(zdm) - skipped == 2
    assert calls == alone
    for head in heads[:2]:
        assert zdm.github.check_runs_for(repo, head) == []
    assert (
        completed_run(zdm, repo, heads[2]).conclusion == completed_run(zdm, once_repo, once_head).conclusion
    )


def test_deliveries_out_of_order_still_review_the_newest_head(zdm: AppUnderTest) -> None:
    # GitHub does not promise order: the older push's delivery arrives last, so the newer one's is passed over;
    # the older one finds its head outdated and, being the last delivery, reviews the head the pull request has.
    repo, pull = reviewed_pull(zdm, "out-of-order")
    older = push(zdm, repo, pull, {"README.md": "# app, again\n"})
    newer = push(zdm, repo, pull, {f"{MIGRATIONS}/20240301000000_audit/migration.sql": SAFE})
    github_calls_reviewing(zdm, [(repo, pull, newer), (repo, pull, older)])
    assert zdm.github.check_runs_for(repo, older) == []
    completed_run(zdm, repo, newer)
