"""The GitHub App end to end: signed webhooks from GitHub's own examples over HTTP, a real Redis, real RQ
workers, and the fake GitHub checking every call against GitHub's published descriptions."""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from bot.settings import CHECK_NAME
from tests.fakegithub.harness import AppUnderTest, checked_app, wait_for
from tests.fakegithub.spec import webhook_example
from tests.fakegithub.state import CheckRun, PullRequest, Repository, Review
from tests.review_measures import LARGEST, TYPICAL, CorpusMigration, corpus_migration, plan_repeats

INSTALLATION = 7001
LOCK = 'provider = "postgresql"\n'
INITIAL = """-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Order" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER NOT NULL,
    CONSTRAINT "Order_pkey" PRIMARY KEY ("id")
);
"""
BLOCKING = """-- CreateIndex
CREATE INDEX "Order_userId_idx" ON "Order"("userId");

-- AlterTable
ALTER TABLE "User" ALTER COLUMN "email" SET NOT NULL;
"""
SAFE = """-- CreateTable
CREATE TABLE "Audit" (
    "id" SERIAL NOT NULL,
    "note" TEXT NOT NULL,
    CONSTRAINT "Audit_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Audit_note_idx" ON "Audit"("note");
"""
PACKAGE_JSON = '{"devDependencies": {"prisma": "6.19.0"}}\n'
MIGRATIONS = "prisma/migrations"


@pytest.fixture(scope="module")
def zdm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    with checked_app(tmp_path_factory.mktemp("app"), redis_server, workers=2) as under_test:
        yield under_test


def new_repo(
    zdm: AppUnderTest, name: str, owner: str = "acme", installation: int = INSTALLATION
) -> tuple[Repository, str]:
    repo = zdm.github.add_repo(owner, name, installation)
    base = zdm.github.commit(
        repo,
        {
            "package.json": PACKAGE_JSON,
            "README.md": "# app\n",
            f"{MIGRATIONS}/migration_lock.toml": LOCK,
            f"{MIGRATIONS}/20240101000000_init/migration.sql": INITIAL,
        },
    )
    return repo, base


def pull_request_payload(repo: Repository, pull: PullRequest, action: str = "opened") -> dict[str, Any]:
    payload = webhook_example("pull_request", action)
    payload["number"] = pull.number
    payload["pull_request"]["number"] = pull.number
    payload["pull_request"]["head"]["sha"] = pull.head_sha
    payload["pull_request"]["base"]["sha"] = pull.base_sha
    payload["repository"]["name"] = repo.name
    payload["repository"]["owner"]["login"] = repo.owner
    payload["installation"] = {"id": repo.installation_id, "node_id": "MDIz"}
    return payload


def open_pull(zdm: AppUnderTest, repo: Repository, base: str, files: dict[str, str]) -> PullRequest:
    head = zdm.github.commit(repo, files, parent=base)
    return zdm.github.open_pull(repo, "octo-dev", base, head)


def completed_run(zdm: AppUnderTest, repo: Repository, sha: str, timeout: float = 30) -> CheckRun:
    runs = wait_for(
        lambda: [r for r in zdm.github.check_runs_for(repo, sha) if r.status == "completed"],
        timeout=timeout,
        what=f"a completed check run on {sha[:7]}",
    )
    assert len(runs) == 1, runs
    run: CheckRun = runs[0]
    return run


def queue_is_idle(zdm: AppUnderTest) -> bool:
    connection = Redis.from_url(zdm.redis_url)
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from bot.queue import waiting

    queue = Queue("zdm", connection=connection)
    return (
        queue.count == 0
        # A job a worker has taken is here until it is registered as started.
        and not queue.intermediate_queue.get_job_ids()
        and StartedJobRegistry(queue=queue).count == 0
        and waiting(connection) == 0
    )


def test_blocking_migration_fails_the_check_with_comments_on_its_lines_and_a_checklist(
    zdm: AppUnderTest,
) -> None:
    repo, base = new_repo(zdm, "blocking")
    path = f"{MIGRATIONS}/20240201000000_index/migration.sql"
    pull = open_pull(zdm, repo, base, {path: BLOCKING})

    answer = zdm.deliver("pull_request", pull_request_payload(repo, pull))
    assert answer.status_code == 202
    assert answer.json()["outcome"] == "queued"

    run = completed_run(zdm, repo, pull.head_sha)
    assert run.name == CHECK_NAME
    assert run.conclusion == "failure"
    assert run.external_id == f"pr:{pull.number}"
    assert [a["start_line"] for a in run.annotations if a["annotation_level"] == "failure"] == [2, 5]
    assert all(a["path"] == path for a in run.annotations)
    assert any(action["identifier"] == "approve" for action in run.actions)

    comments = zdm.github.review_comments(repo, pull.number)
    by_line = {c.line: c for c in comments}
    assert set(by_line) == {2, 5}
    index_comment = by_line[2].body
    assert "create-index-non-concurrent" in index_comment or "CONCURRENTLY" in index_comment
    assert "SHARE" in index_comment
    # Before Prisma 7.4 the concurrent build needs a migration of its own: the comment shows this statement's
    # step of the plan, not an in-file suggestion, and leaves the whole plan to the summary.
    assert "```suggestion" not in index_comment
    assert 'CREATE INDEX CONCURRENTLY "Order_userId_idx"' in index_comment
    assert "the whole plan is in the summary" in index_comment
    not_null = by_line[5].body
    assert "ACCESS EXCLUSIVE" in not_null
    assert "Order_userId_idx" not in not_null  # another statement's part of the plan

    summaries = zdm.github.comments_on(repo, pull.number)
    assert len(summaries) == 1
    summary = summaries[0].body
    assert "<!-- zdm:summary -->" in summary
    # The verdict and what to do come first, in at most three lines, then the table.
    verdict = summary.split("\n\n", 1)[0].splitlines()[1:]
    assert verdict[0] == "### zdm: 2 statements block writes on `Order`, `User`, and reads on 1 of them."
    assert "zdm fix prisma/migrations/20240201000000_index" in verdict[1]
    assert "/zdm approve <reason>" in verdict[1]
    assert summary.count("<details><summary>Safe plan for") == 1
    assert "- [ ] Estimate the migration time on production-sized data" in summary
    assert "- [ ] Check active connections" in summary
    assert "- [ ] Rollback: to undo the deploy, run the rollback SQL below" in summary
    assert 'DROP INDEX CONCURRENTLY "Order_userId_idx";  -- line 2 (outside a transaction)' in summary
    assert "- [ ] Monitor locks and progress" in summary
    assert "- [ ] Tell the team" in summary
    assert "| `20240201000000_index` | 2 |" in summary


def test_in_file_fix_is_offered_as_a_suggestion_on_the_statement_lines(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "suggestion")
    zdm.github.commit(repo, {}, parent=base)
    base74 = zdm.github.commit(
        repo, {"package.json": '{"devDependencies": {"prisma": "7.4.0"}}\n'}, parent=base
    )
    path = f"{MIGRATIONS}/20240201000000_index/migration.sql"
    sql = 'CREATE INDEX "Order_userId_idx" ON "Order"("userId");\n'
    pull = open_pull(zdm, repo, base74, {path: sql})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = completed_run(zdm, repo, pull.head_sha)
    assert run.conclusion == "failure"
    (comment,) = zdm.github.review_comments(repo, pull.number)
    assert comment.line == 1
    suggestion = re.search(r"```suggestion\n(.*?)```", comment.body, re.DOTALL)
    assert suggestion is not None, comment.body
    assert 'CREATE INDEX CONCURRENTLY "Order_userId_idx" ON "Order"' in suggestion.group(1)


def test_safe_migration_passes(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "safe")
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_audit/migration.sql": SAFE})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = completed_run(zdm, repo, pull.head_sha)
    assert run.conclusion == "success"
    assert zdm.github.review_comments(repo, pull.number) == []
    (summary,) = zdm.github.comments_on(repo, pull.number)
    assert "nothing blocks" in summary.body


def test_pull_request_without_migrations_gets_a_green_check_and_no_comment(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "docs-only")
    pull = open_pull(zdm, repo, base, {"README.md": "# app\n\nMore words.\n"})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = completed_run(zdm, repo, pull.head_sha)
    assert run.conclusion == "success"
    assert run.output["title"] == "No migration changes"
    assert zdm.github.comments_on(repo, pull.number) == []
    assert zdm.github.review_comments(repo, pull.number) == []


def test_redelivery_is_dropped_and_nothing_is_posted_twice(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "redelivery")
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    payload = pull_request_payload(repo, pull)
    first = zdm.deliver("pull_request", payload, delivery="11111111-aaaa-4bbb-8ccc-000000000001")
    again = zdm.deliver("pull_request", payload, delivery="11111111-aaaa-4bbb-8ccc-000000000001")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    completed_run(zdm, repo, pull.head_sha)
    # A second delivery of the same event (a new id: GitHub sends `reopened`, or someone re-runs it) re-reviews
    # the same head: still one check run, the same two comments, one summary.
    zdm.deliver("pull_request", pull_request_payload(repo, pull, "reopened"))
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    wait_for(
        lambda: len([c for c in zdm.github.calls if c.method == "PATCH" and "check-runs" in c.path]) >= 1,
        what="the re-review",
    )
    assert len(zdm.github.check_runs_for(repo, pull.head_sha)) == 1
    assert len(zdm.github.review_comments(repo, pull.number)) == 2
    assert len(zdm.github.comments_on(repo, pull.number)) == 1


def test_a_new_push_reviews_the_new_head_without_repeating_comments(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "repush")
    first_path = f"{MIGRATIONS}/20240201000000_index/migration.sql"
    pull = open_pull(zdm, repo, base, {first_path: BLOCKING})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    assert len(zdm.github.review_comments(repo, pull.number)) == 2

    second = 'ALTER TABLE "Order" ADD CONSTRAINT "Order_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");\n'
    pull.head_sha = zdm.github.commit(
        repo, {f"{MIGRATIONS}/20240202000000_fk/migration.sql": second}, parent=pull.head_sha
    )
    zdm.deliver("pull_request", pull_request_payload(repo, pull, "synchronize"))
    run = completed_run(zdm, repo, pull.head_sha)
    assert run.conclusion == "failure"
    comments = zdm.github.review_comments(repo, pull.number)
    assert len(comments) == 3, [(c.path, c.line) for c in comments]
    assert comments[-1].path.endswith("20240202000000_fk/migration.sql")
    (summary,) = zdm.github.comments_on(repo, pull.number)
    assert "20240202000000_fk" in summary.body
    assert summary.edited


def test_forged_signature_is_refused_and_nothing_is_queued(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "forged")
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    payload = pull_request_payload(repo, pull)
    connection = Redis.from_url(zdm.redis_url)
    keys_before = set(connection.keys("zdm:delivery:*"))
    forged = zdm.deliver("pull_request", payload, signature="sha256=" + "0" * 64)
    missing = zdm.deliver("pull_request", payload, signature="")
    assert forged.status_code == 401
    assert missing.status_code == 401
    assert set(connection.keys("zdm:delivery:*")) == keys_before
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    assert zdm.github.check_runs_for(repo, pull.head_sha) == []


def test_oversized_and_malformed_deliveries_are_refused(zdm: AppUnderTest) -> None:
    # Declared too large: refused from the headers, before any of the body is read.
    host, port = zdm.receiver_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/github/webhooks HTTP/1.1\r\nHost: zdm\r\nX-GitHub-Event: ping\r\n"
            b"X-GitHub-Delivery: big\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {26 * 1024 * 1024}\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 413")
    body = b"{not json"
    from tests.fakegithub.harness import sign

    malformed = httpx.post(
        f"{zdm.receiver_url}/api/github/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "y",
            "X-Hub-Signature-256": sign(zdm.secret, body),
        },
        timeout=10,
    )
    assert malformed.status_code == 400


def test_other_events_are_acknowledged_and_ignored(zdm: AppUnderTest) -> None:
    for event, action in (("ping", None), ("pull_request", "closed"), ("issue_comment", "edited")):
        answer = zdm.deliver(event, webhook_example(event, action))
        assert answer.status_code == 202, (event, answer.text)
        assert answer.json()["outcome"] == "ignored"


def test_health_readiness_and_metrics(zdm: AppUnderTest) -> None:
    assert httpx.get(f"{zdm.receiver_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{zdm.receiver_url}/readyz").status_code == 200
    repo, base = new_repo(zdm, "metrics")
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_audit/migration.sql": SAFE})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)

    def metrics_with_jobs() -> str | None:
        text = httpx.get(f"{zdm.receiver_url}/metrics").text
        return text if "zdm_jobs" in text else None

    text = wait_for(metrics_with_jobs, what="job metrics")
    assert 'zdm_webhook_deliveries_total{event="pull_request",outcome="queued"}' in text
    assert "zdm_github_api_calls" in text
    assert "zdm_github_rate_limit_remaining" in text


def test_a_review_of_new_migration_files_takes_at_most_four_api_calls(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "budget")
    # Warm the installation token and the App's slug, both cached in Redis for every later review.
    warm = open_pull(zdm, repo, base, {"README.md": "# warm\n"})
    zdm.deliver("pull_request", pull_request_payload(repo, warm))
    completed_run(zdm, repo, warm.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    before = len(zdm.github.calls)
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    calls = [f"{c.method} {c.path}" for c in zdm.github.calls[before:]]
    print("calls per review:", calls)
    assert len(calls) <= 4, calls


def test_fixture_payloads_are_githubs_own(zdm: AppUnderTest) -> None:
    # The payloads above start from @octokit/webhooks-examples; the keys zdm reads are present in them.
    payload = webhook_example("pull_request", "opened")
    assert {"number", "pull_request", "repository"} <= set(payload)
    assert Path(__file__).parent.joinpath("fakegithub/spec/VERSIONS.json").is_file()


def test_more_than_fifty_annotations_are_all_sent_fifty_at_a_time(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "many")
    statements = "".join(f'CREATE INDEX "Order_{n}_idx" ON "Order"("userId", "id");\n' for n in range(60))
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_many/migration.sql": statements})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = completed_run(zdm, repo, pull.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    failures = [a for a in run.annotations if a["annotation_level"] == "failure"]
    assert sorted(a["start_line"] for a in failures) == list(range(1, 61))
    patches = [c for c in zdm.github.calls if c.method == "PATCH" and "/check-runs/" in c.path]
    assert len(patches) >= 1


def graphql_calls(zdm: AppUnderTest) -> int:
    return len([c for c in zdm.github.calls if c.path == "/graphql"])


def graphql_read_since(zdm: AppUnderTest, before: int) -> bool:
    return graphql_calls(zdm) > before


def test_re_run_buttons_and_fork_pull_requests_are_reviewed(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "rerun")
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    payload = pull_request_payload(repo, pull)
    # From a fork: the head branch lives in someone else's repository; zdm reads the head commit by SHA through
    # the base repository, as GitHub serves it, and never runs the fork's code.
    payload["pull_request"]["head"]["repo"] = {
        **payload["pull_request"]["head"]["repo"],
        "full_name": "stranger/fork",
    }
    zdm.deliver("pull_request", payload)
    run = completed_run(zdm, repo, pull.head_sha)

    rerun = webhook_example("check_run", "rerequested")
    rerun["check_run"].update(
        id=run.id, external_id=run.external_id, head_sha=pull.head_sha, pull_requests=[]
    )
    suite = webhook_example("check_suite", "rerequested")
    suite["check_suite"].update(head_sha=pull.head_sha)
    suite["check_suite"]["pull_requests"] = [{"number": pull.number, "head": {"sha": pull.head_sha}}]
    for event, body in (("check_run", rerun), ("check_suite", suite)):
        body["repository"]["name"] = repo.name
        body["repository"]["owner"]["login"] = repo.owner
        body["installation"] = {"id": INSTALLATION, "node_id": "MDIz"}
        before = graphql_calls(zdm)
        assert zdm.deliver(event, body).json()["outcome"] == "queued"
        wait_for(functools.partial(graphql_read_since, zdm, before), what=event)
        wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    assert len(zdm.github.check_runs_for(repo, pull.head_sha)) == 1
    assert len(zdm.github.review_comments(repo, pull.number)) == 2
    assert len(zdm.github.comments_on(repo, pull.number)) == 1


def corpus_pull(zdm: AppUnderTest, name: str, migration: CorpusMigration) -> tuple[Repository, PullRequest]:
    """A repository holding a corpus migration's root up to it, and a pull request adding it."""
    repo = zdm.github.add_repo("acme", name, INSTALLATION)
    files = {"package.json": PACKAGE_JSON, f"{MIGRATIONS}/migration_lock.toml": LOCK}
    files |= {f"{MIGRATIONS}/{folder}/migration.sql": text for folder, text in migration.earlier.items()}
    base = zdm.github.commit(repo, files)
    return repo, open_pull(zdm, repo, base, {migration.path: migration.text})


def posted_bodies(zdm: AppUnderTest, repo: Repository, pull: PullRequest) -> list[str]:
    """Everything zdm wrote on the pull request: review comments, conversation comments, check run output."""
    runs = zdm.github.check_runs_for(repo, pull.head_sha)
    return [
        *(c.body for c in zdm.github.review_comments(repo, pull.number)),
        *(c.body for c in zdm.github.comments_on(repo, pull.number)),
        *(str(r.output.get(key) or "") for r in runs for key in ("summary", "text")),
    ]


@pytest.mark.parametrize("relative", [TYPICAL, LARGEST], ids=["typical", "largest"])
def test_corpus_migrations_are_reviewed_within_githubs_limits_saying_each_plan_once(
    zdm: AppUnderTest, relative: str
) -> None:
    migration = corpus_migration(relative)
    repo, pull = corpus_pull(zdm, f"corpus-{migration.folder[:20]}", migration)
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = completed_run(zdm, repo, pull.head_sha, timeout=120)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    assert run.conclusion == "failure"
    assert zdm.github.violations == []
    comments = zdm.github.review_comments(repo, pull.number)
    (summary,) = zdm.github.comments_on(repo, pull.number)
    assert plan_repeats(migration.plan(), posted_bodies(zdm, repo, pull)) == 0
    assert summary.body.splitlines()[1].startswith("### zdm: ")
    assert "### Before deploying" in summary.body and "- [ ] " in summary.body
    if relative == TYPICAL:
        assert 15 <= len(comments) <= 25 and all(c.line is not None for c in comments)
        assert sum(len(c.body) for c in comments) <= 15_000
        assert all(len(c.body) <= 3_000 or "```suggestion" in c.body for c in comments)
    else:
        # Too many statements for a comment each: one comment on the file, the rest in the summary.
        (file_comment,) = comments
        assert file_comment.line is None and "statements in this migration need action" in file_comment.body


def test_a_migration_over_512000_bytes_is_read_in_full(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "seed")
    rows = "".join(
        f'INSERT INTO "Seed" ("id", "note") VALUES ({n}, \'row {n} of the seed\');\n' for n in range(12_000)
    )
    sql = 'CREATE TABLE "Seed" ("id" INTEGER NOT NULL, "note" TEXT);\n' + rows + BLOCKING
    assert len(sql.encode()) > 512_000
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_seed/migration.sql": sql})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = completed_run(zdm, repo, pull.head_sha, timeout=120)
    last_line = sql.count("\n")
    # The blocking statements after GraphQL's 512,000-byte cut are seen, on their lines.
    failures = [a["start_line"] for a in run.annotations if a["annotation_level"] == "failure"]
    assert last_line in failures and last_line - 3 in failures
    assert any("/git/blobs/" in c.path for c in zdm.github.calls)


def test_migrations_too_much_for_one_query_are_read_in_batches(zdm: AppUnderTest) -> None:
    migration = corpus_migration(TYPICAL)
    assert sum(len(t) for t in migration.earlier.values()) > 800_000
    repo, pull = corpus_pull(zdm, "split-reads", migration)
    zdm.github.graphql_response_limit = 1_000_000
    try:
        before = len(zdm.github.calls)
        zdm.deliver("pull_request", pull_request_payload(repo, pull))
        run = completed_run(zdm, repo, pull.head_sha, timeout=120)
        first = zdm.github.calls[before:]
        # GitHub gave up on the whole-tree query once (not asked again), then trees, then texts in batches.
        assert [c.status for c in first if c.path == "/graphql"].count(502) == 1
        assert run.conclusion == "failure"
        assert len(zdm.github.review_comments(repo, pull.number)) >= 15
        # The next review of the repository reads in batches from the start.
        pull.head_sha = zdm.github.commit(repo, {"README.md": "# more\n"}, parent=pull.head_sha)
        before = len(zdm.github.calls)
        zdm.deliver("pull_request", pull_request_payload(repo, pull, "synchronize"))
        completed_run(zdm, repo, pull.head_sha, timeout=120)
        assert all(c.status != 502 for c in zdm.github.calls[before:])
    finally:
        zdm.github.graphql_response_limit = 8_000_000


def test_a_long_conversation_keeps_one_summary(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "chatty")
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    for n in range(150):
        zdm.github.user_comment(repo, pull.number, "octo-dev", f"thinking out loud, {n}")
    pull.head_sha = zdm.github.commit(repo, {"README.md": "# chatty\n"}, parent=pull.head_sha)
    zdm.deliver("pull_request", pull_request_payload(repo, pull, "synchronize"))
    completed_run(zdm, repo, pull.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    mine = [c for c in zdm.github.comments_on(repo, pull.number) if c.user.login == zdm.github.bot.login]
    assert len(mine) == 1 and mine[0].edited is False
    assert len(zdm.github.review_comments(repo, pull.number)) == 2


def test_pull_requests_of_many_files_and_reviews_are_read_whole(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "crowded")
    # 130 files before the migration in GitHub's order, and 105 reviews by people before zdm's: both past the
    # first page of 100.
    files = {f"docs/page-{n:03d}.md": f"page {n}\n" for n in range(130)}
    pull = open_pull(zdm, repo, base, {**files, f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    reviewer = zdm.github.user("reviewer")
    for _ in range(105):
        review_id = zdm.github.next_id()
        repo.reviews.append(
            Review(review_id, f"PRR_{review_id}", pull.number, reviewer, "lgtm", "COMMENT", pull.head_sha, [])
        )
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    assert completed_run(zdm, repo, pull.head_sha).conclusion == "failure"
    assert len(zdm.github.review_comments(repo, pull.number)) == 2
    pull.head_sha = zdm.github.commit(repo, {"README.md": "# crowded\n"}, parent=pull.head_sha)
    zdm.deliver("pull_request", pull_request_payload(repo, pull, "synchronize"))
    completed_run(zdm, repo, pull.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    assert len(zdm.github.review_comments(repo, pull.number)) == 2


def test_brief_locks_get_inline_comments_only_when_the_repository_asks(zdm: AppUnderTest) -> None:
    brief = 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n\nALTER TABLE "Order" ALTER COLUMN "userId" DROP NOT NULL;\n'
    for name, config in (("brief-quiet", None), ("brief-asked", "review:\n  comment_on_brief: true\n")):
        repo, base = new_repo(zdm, name)
        if config is not None:
            base = zdm.github.commit(repo, {".github/zdm.yml": config}, parent=base)
        pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_brief/migration.sql": brief})
        zdm.deliver("pull_request", pull_request_payload(repo, pull))
        assert completed_run(zdm, repo, pull.head_sha).conclusion == "success"
        wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
        lines = sorted(c.line or 0 for c in zdm.github.review_comments(repo, pull.number))
        assert lines == ([] if config is None else [1, 3])
        (summary,) = zdm.github.comments_on(repo, pull.number)
        assert '| 1 | `ALTER TABLE "User" ADD COLUMN' in summary.body
