"""Faults: GitHub failing, slow or rate limiting; workers killed mid-review; Redis down at the receiver; a
burst of deliveries; secrets kept out of logs. Real Redis, real workers, the fake GitHub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from bot import metrics
from bot.queue import job_id_for
from bot.settings import Settings
from tests.fakegithub.harness import ROOT, AppUnderTest, checked_app, free_port, serve_in_thread, wait_for
from tests.fakegithub.state import AfterCall, Fault, PullRequest, Repository
from tests.test_app import (
    BLOCKING,
    MIGRATIONS,
    completed_run,
    new_repo,
    open_pull,
    pull_request_payload,
    queue_is_idle,
)


@pytest.fixture(scope="module")
def zdm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    overrides = {"ZDM_MAX_INLINE_WAIT_SECONDS": "1", "ZDM_GITHUB_TIMEOUT_SECONDS": "2"}
    with checked_app(
        tmp_path_factory.mktemp("faults"), redis_server, workers=2, env_overrides=overrides
    ) as app:
        yield app


def blocking_pull(zdm: AppUnderTest, name: str) -> tuple[Repository, PullRequest]:
    repo, base = new_repo(zdm, name)
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    return repo, pull


def assert_reviewed_once(zdm: AppUnderTest, name: str) -> None:
    repo = zdm.github.repos[f"acme/{name}"]
    (pull,) = repo.pulls.values()
    runs = zdm.github.check_runs_for(repo, pull.head_sha)
    assert len(runs) == 1, runs
    assert runs[0].conclusion == "failure"
    assert [a["start_line"] for a in runs[0].annotations if a["annotation_level"] == "failure"] == [2, 5]
    assert sorted(c.line or 0 for c in zdm.github.review_comments(repo, pull.number)) == [2, 5]
    assert len(zdm.github.comments_on(repo, pull.number)) == 1


def test_server_errors_timeouts_and_short_rate_limits_are_retried_in_the_job(zdm: AppUnderTest) -> None:
    repo, pull = blocking_pull(zdm, "flaky")
    zdm.github.faults += [
        Fault("POST", "/graphql", 502, times=1),
        Fault("POST", "/graphql", 0, times=1, delay=3.0),  # longer than the 2 s client timeout
        Fault("POST", "/repos/acme/flaky/check-runs", 429, headers={"Retry-After": "1"}),
        Fault(
            "POST",
            "/repos/acme/flaky/pulls/1/reviews",
            403,
            headers={"Retry-After": "1"},
            body={"message": "You have exceeded a secondary rate limit."},
        ),
    ]
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    assert_reviewed_once(zdm, "flaky")
    statuses = [(c.method, c.status) for c in zdm.github.calls if "flaky" in c.path or c.path == "/graphql"]
    assert ("POST", 502) in statuses and ("POST", 429) in statuses and ("POST", 403) in statuses


def test_a_long_rate_limit_reschedules_the_job_until_it_lifts(zdm: AppUnderTest) -> None:
    repo, pull = blocking_pull(zdm, "rate-limited")
    reset = str(int(time.time()) + 3)
    zdm.github.faults.append(
        Fault(
            "POST",
            "/graphql",
            403,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
            body={"message": "API rate limit exceeded"},
        )
    )
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    assert_reviewed_once(zdm, "rate-limited")
    assert (
        float(
            Redis.from_url(zdm.redis_url).hget(metrics.SHARED, "zdm_jobs|kind=review,outcome=rescheduled")
            or 0
        )
        >= 1
    )


def test_a_job_that_keeps_failing_says_so_on_the_check_run_and_stays_in_the_failed_registry(
    zdm: AppUnderTest,
) -> None:
    repo, pull = blocking_pull(zdm, "broken")
    zdm.github.faults.append(Fault("POST", "/graphql", 500, times=1000))
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = wait_for(
        lambda: [r for r in zdm.github.check_runs_for(repo, pull.head_sha) if r.status == "completed"],
        timeout=60,
        what="the failure check run",
    )[0]
    zdm.github.faults.clear()
    assert run.conclusion == "failure"
    assert run.output["title"] == "zdm could not finish"
    assert "RequestFailed" in run.output["summary"]
    queue = Queue("zdm", connection=Redis.from_url(zdm.redis_url))
    wait_for(lambda: FailedJobRegistry(queue=queue).count >= 1, what="the failed job")
    attempts = [c for c in zdm.github.calls if c.path == "/graphql" and c.status == 500]
    assert len(attempts) == 3 * 4  # githubkit's attempts (1 + 3 retries) x RQ's attempts (1 + 2 retries)


def _deliver_and_wait_for_the_retry(zdm: AppUnderTest, repo: Any, pull: Any) -> None:
    """Deliver the pull request, see the job killed, and wait until its retry has reviewed it."""
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    wait_for(lambda: not any(a.times for a in zdm.github.after_calls), what="the kill")
    wait_for(
        lambda: queue_is_idle(zdm) and zdm.github.check_runs_for(repo, pull.head_sha),
        timeout=60,
        what="the retry",
    )
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")


@pytest.mark.parametrize(
    ("name", "method", "path"),
    [
        ("killed-after-review", "POST", "/pulls/1/reviews"),
        ("killed-after-summary", "POST", "/issues/1/comments"),
        ("killed-after-check-run", "POST", "/check-runs"),
    ],
)
def test_a_worker_killed_mid_review_is_retried_without_duplicates(
    zdm: AppUnderTest, name: str, method: str, path: str
) -> None:
    repo, pull = blocking_pull(zdm, name)
    # GitHub has done the write; the job process dies before it hears back.
    zdm.github.after_calls.append(AfterCall(method, f"/repos/acme/{name}{path}", zdm.job_killer()))
    _deliver_and_wait_for_the_retry(zdm, repo, pull)
    time.sleep(0.5)
    assert_reviewed_once(zdm, name)


def test_a_worker_killed_after_posting_over_100_comments_posts_none_again(zdm: AppUnderTest) -> None:
    # 120 inline comments in one review: the retry reads them all back, past GraphQL's 100 a page.
    repo, base = new_repo(zdm, "killed-many")
    files = {
        f"{MIGRATIONS}/2024020{n}000000_many/migration.sql": "".join(
            f'CREATE INDEX "Order_{n}_{i}_idx" ON "Order"("userId", "id");\n' for i in range(30)
        )
        for n in range(1, 5)
    }
    pull = open_pull(zdm, repo, base, files)
    zdm.github.after_calls.append(
        AfterCall("POST", "/repos/acme/killed-many/pulls/1/reviews", zdm.job_killer())
    )
    _deliver_and_wait_for_the_retry(zdm, repo, pull)
    assert len(repo.reviews) == 1
    assert len(zdm.github.review_comments(repo, pull.number)) == 120
    assert len(zdm.github.comments_on(repo, pull.number)) == 1


def test_receiver_without_redis_answers_503_and_the_sweep_redelivers(
    zdm: AppUnderTest, tmp_path: Path
) -> None:
    from bot.web import create_app
    from workers.redelivery import sweep

    repo, pull = blocking_pull(zdm, "redis-down")
    settings = Settings.model_validate(
        {k: v for k, v in zdm.env.items() if k.startswith(("GITHUB_", "ZDM_"))}
    )
    broken = Redis.from_url(f"unix://{tmp_path}/no-such.sock", socket_connect_timeout=0.2)
    with serve_in_thread(create_app(settings, broken)) as down_url:
        answer = zdm.deliver("pull_request", pull_request_payload(repo, pull), receiver_url=down_url)
        assert answer.status_code == 503
        assert httpx.get(f"{down_url}/readyz").status_code == 503
    assert zdm.github.check_runs_for(repo, pull.head_sha) == []
    # Redis is back (the healthy receiver): the sweep finds the failed delivery and asks GitHub to send it again.
    connection = Redis.from_url(zdm.redis_url)
    connection.delete("zdm:sweep:lock")
    assert sweep(settings, connection, 60) >= 1
    completed_run(zdm, repo, pull.head_sha)
    # A second sweep finds nothing left to redeliver.
    connection.delete("zdm:sweep:lock")
    assert sweep(settings, connection, 60) == 0


def test_a_burst_is_processed_exactly_once_per_delivery(zdm: AppUnderTest) -> None:
    connection = Redis.from_url(zdm.redis_url)
    pulls = []
    for number in range(30):
        repo, pull = blocking_pull(zdm, f"burst-{number}")
        pulls.append((repo, pull, pull_request_payload(repo, pull)))
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(30)]
    answers = [
        zdm.deliver("pull_request", payload, delivery=ids[n]) for n, (_, _, payload) in enumerate(pulls)
    ]
    answers += [zdm.deliver("pull_request", pulls[n][2], delivery=ids[n]) for n in range(0, 30, 3)]
    assert [a.status_code for a in answers].count(202) == 30
    assert [a.status_code for a in answers].count(200) == 10
    for repo, pull, _ in pulls:
        completed_run(zdm, repo, pull.head_sha, timeout=60)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    for repo, _, _ in pulls:
        assert_reviewed_once(zdm, repo.name)
    queue = Queue("zdm", connection=connection)
    finished = set(FinishedJobRegistry(queue=queue).get_job_ids())
    assert {job_id_for(d) for d in ids} <= finished
    assert not {job_id_for(d) for d in ids} & set(FailedJobRegistry(queue=queue).get_job_ids())


def test_serve_refuses_to_start_without_a_webhook_secret() -> None:
    # An App named by the environment without its secret is a mistake; no App at all is the setup page's case.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ZDM_", "REDIS_URL"))}
    env["GITHUB_APP_ID"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--workers", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "GITHUB_WEBHOOK_SECRET is not set" in result.stderr


def test_zdm_serve_with_embedded_redis_reviews_and_logs_no_secret(zdm: AppUnderTest, tmp_path: Path) -> None:
    """`zdm serve` as users run it: no REDIS_URL, so it starts its own redis-server and a worker."""
    repo, pull = blocking_pull(zdm, "serve")
    port = free_port()
    env = {k: v for k, v in zdm.env.items() if k != "REDIS_URL"}
    env |= {"ZDM_DATA_DIR": str(tmp_path / "data"), "ZDM_LOG_JSON": "1"}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(url), timeout=60, what="zdm serve")
            assert (
                zdm.deliver("pull_request", pull_request_payload(repo, pull), receiver_url=url).status_code
                == 202
            )
            completed_run(zdm, repo, pull.head_sha)
            assert (tmp_path / "data" / "zdm-redis.db").exists() or any((tmp_path / "data").iterdir())
        finally:
            server.terminate()
            server.wait(timeout=60)
    logs = log_path.read_text(errors="replace") + zdm.logs()
    assert "webhook.queued" in logs and "review.done" in logs
    secrets = [zdm.secret, *zdm.github.tokens]
    key_lines = [line for line in env["GITHUB_PRIVATE_KEY"].splitlines() if line and "-----" not in line]
    for secret in [*secrets, *key_lines]:
        assert secret not in logs


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
