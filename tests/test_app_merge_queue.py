"""GitHub's merge queue end to end: `merge_group` deliveries (GitHub's own example payload, signed) through the
receiver, a real Redis and real workers, against the fake GitHub holding the group's commits as GitHub's merge
queue builds them. zdm's check run must be completed on each group's head commit, or the queue waits for it
until it times out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.settings import CHECK_NAME
from tests.fakegithub.harness import AppUnderTest, checked_app, wait_for
from tests.fakegithub.state import Call, Fault, MergeGroup, Repository
from tests.test_app import (
    BLOCKING,
    INSTALLATION,
    MIGRATIONS,
    SAFE,
    completed_run,
    new_repo,
    open_pull,
    pull_request_payload,
    queue_is_idle,
)
from tests.test_commands import WRITER, say, wait_reply
from tests.test_merge_queue import merge_group_payload

INDEX = f"{MIGRATIONS}/20240201000000_index/migration.sql"
AUDIT = f"{MIGRATIONS}/20240202000000_audit/migration.sql"


@pytest.fixture(scope="module")
def zdm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    with checked_app(tmp_path_factory.mktemp("merge-queue"), redis_server, workers=2) as under_test:
        yield under_test


def group_payload(repo: Repository, group: MergeGroup, action: str = "checks_requested") -> dict[str, Any]:
    payload = merge_group_payload(action)
    payload["merge_group"].update(
        head_sha=group.head_sha, base_sha=group.base_sha, head_ref=group.head_ref, base_ref=group.base_ref
    )
    payload["merge_group"]["head_commit"]["id"] = group.head_sha
    payload["repository"]["name"] = repo.name
    payload["repository"]["owner"]["login"] = repo.owner
    payload["installation"] = {"id": INSTALLATION, "node_id": "MDIz"}
    return payload


def queue(zdm: AppUnderTest, repo: Repository, group: MergeGroup) -> list[Call]:
    """Deliver `checks_requested`; the calls zdm made to GitHub until its check run was completed."""
    before = len(zdm.github.calls)
    answer = zdm.deliver("merge_group", group_payload(repo, group))
    assert answer.status_code == 202 and answer.json()["outcome"] == "queued", answer.text
    completed_run(zdm, repo, group.head_sha)
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    return zdm.github.calls[before:]


def endpoints(calls: list[Call]) -> list[str]:
    """The calls made for the repository, by method and endpoint (the App's own token and slug aside: they
    are fetched once and cached)."""
    return [
        f"{c.method} {'graphql' if c.path == '/graphql' else c.path.split('/')[4]}"
        for c in calls
        if not c.path.startswith("/app")
    ]


def wrote_to_pull_requests(calls: list[Call]) -> list[str]:
    return [
        f"{c.method} {c.path}"
        for c in calls
        if c.method != "GET" and ("/pulls/" in c.path or "/issues/" in c.path)
    ]


def test_a_group_adding_a_blocking_migration_fails_naming_the_pull_request_it_comes_from(
    zdm: AppUnderTest,
) -> None:
    repo, base = new_repo(zdm, "mq-blocking")
    docs = open_pull(zdm, repo, base, {"README.md": "# app\n\nQueued.\n"})
    index = open_pull(zdm, repo, base, {INDEX: BLOCKING})
    audit = open_pull(zdm, repo, base, {AUDIT: SAFE})
    group = zdm.github.merge_group(repo, base, [docs, index, audit], "merge")

    calls = queue(zdm, repo, group)

    run = completed_run(zdm, repo, group.head_sha)
    assert run.name == CHECK_NAME and run.conclusion == "failure"
    assert run.external_id == f"merge-group:{base}"
    # The same findings as on the pull request: its two statements, on their lines; no Approve button (approvals
    # are given on the pull request).
    assert sorted(a["start_line"] for a in run.annotations if a["annotation_level"] == "failure") == [2, 5]
    assert {a["path"] for a in run.annotations} == {INDEX}
    assert run.actions == []
    summary = run.output["summary"]
    assert summary.startswith("**2 statements block writes on `Order`, `User`, and reads on 1 of them.**")
    assert "on the pull request they come from" in summary
    assert f"holds #{docs.number}, #{index.number}, #{audit.number}, queued on `main`" in summary
    assert f"- from #{index.number}: `{INDEX}`" in summary
    assert "2 safe statement(s) with nothing to report are not listed." in summary  # the whole group
    # A merge group has no conversation: nothing is written on any pull request.
    assert wrote_to_pull_requests(calls) == []
    for pull in (docs, index, audit):
        assert zdm.github.comments_on(repo, pull.number) == []
        assert zdm.github.review_comments(repo, pull.number) == []
    # The comparison, one GraphQL read (the roots at both commits, the pull requests), the check run.
    assert endpoints(calls) == ["GET compare", "POST graphql", "POST check-runs"]


def test_a_group_of_safe_migrations_passes(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "mq-safe")
    audit = open_pull(zdm, repo, base, {AUDIT: SAFE})
    docs = open_pull(zdm, repo, base, {"docs/queue.md": "# queue\n"})
    group = zdm.github.merge_group(repo, base, [audit, docs], "squash")
    calls = queue(zdm, repo, group)
    run = completed_run(zdm, repo, group.head_sha)
    assert run.conclusion == "success"
    assert run.output["title"] == "2 statement(s) in 1 migration(s): nothing blocks"
    assert f"holds #{audit.number}, #{docs.number}" in run.output["summary"]
    assert wrote_to_pull_requests(calls) == []


def test_a_group_without_migration_changes_passes_at_once(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "mq-docs")
    first = open_pull(zdm, repo, base, {"README.md": "# app\n\nFirst.\n"})
    second = open_pull(zdm, repo, base, {"docs/more.md": "more\n"})
    group = zdm.github.merge_group(repo, base, [first, second], "rebase")
    calls = queue(zdm, repo, group)
    run = completed_run(zdm, repo, group.head_sha)
    assert run.conclusion == "success" and run.output["title"] == "No migration changes"
    # The comparison says it: nothing more read, one check run written.
    assert endpoints(calls) == ["GET compare", "POST check-runs"]
    assert calls[-1].path == "/repos/acme/mq-docs/check-runs"
    assert f"/repos/acme/mq-docs/compare/{base}...{group.head_sha}" in [c.path for c in calls]


def test_a_migration_approved_on_its_pull_request_passes_in_the_group(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "mq-approved")
    repo.permissions[WRITER] = "write"
    index = open_pull(zdm, repo, base, {INDEX: BLOCKING})
    zdm.deliver("pull_request", pull_request_payload(repo, index))
    assert completed_run(zdm, repo, index.head_sha).conclusion == "failure"
    say(zdm, repo, index, WRITER, "/zdm approve Order has 200 rows; deploying at night")
    wait_reply(zdm, repo, index)
    wait_for(
        lambda: completed_run(zdm, repo, index.head_sha).conclusion == "success", what="the approved check"
    )
    docs = open_pull(zdm, repo, base, {"README.md": "# app\n\nApproved.\n"})

    group = zdm.github.merge_group(repo, base, [docs, index], "merge")
    queue(zdm, repo, group)
    run = completed_run(zdm, repo, group.head_sha)
    assert run.conclusion == "success", run.output["summary"]
    assert "Approved by @release-captain" in run.output["summary"]
    assert "Order has 200 rows; deploying at night" in run.output["summary"]

    # The approval covers its own pull request's statements: the same statements added by another pull
    # request in the same group are not approved.
    copy = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240203000000_again/migration.sql": BLOCKING})
    group = zdm.github.merge_group(repo, base, [index, copy], "squash")
    queue(zdm, repo, group)
    run = completed_run(zdm, repo, group.head_sha)
    assert run.conclusion == "failure"
    again = f"{MIGRATIONS}/20240203000000_again/migration.sql"
    summary = run.output["summary"]
    assert summary.startswith(
        "**1 statement blocks writes on `Order` (new or changed since the last approval)"
    )
    assert f"- from #{copy.number}: `{again}`" in summary
    assert f"- from #{index.number}" not in summary
    assert "Approved by @release-captain" in summary
    # Judged as a whole: the second SET NOT NULL finds the column NOT NULL already, replayed after the first.
    (second,) = [a for a in run.annotations if a["path"] == again and a["start_line"] == 5]
    assert second["annotation_level"] == "warning" and "already NOT NULL" in second["message"]


def test_a_finding_no_pull_request_of_the_group_is_found_changing_is_reported_and_not_approvable(
    zdm: AppUnderTest,
) -> None:
    # The "rebase" method replays a pull request's commits with their own messages: only the last pull request
    # is named (by the group's branch); zdm asks GitHub which pull requests hold the other commits.
    repo, base = new_repo(zdm, "mq-rebase")
    index = open_pull(zdm, repo, base, {INDEX: BLOCKING})
    docs = open_pull(zdm, repo, base, {"README.md": "# app\n\nRebased.\n"})
    group = zdm.github.merge_group(repo, base, [index, docs], "rebase")
    calls = queue(zdm, repo, group)
    run = completed_run(zdm, repo, group.head_sha)
    assert run.conclusion == "failure"
    assert f"an approval cannot cover it): `{INDEX}`" in run.output["summary"]
    lookups = [c for c in calls if c.path.endswith("/pulls") and "/commits/" in c.path]
    assert 1 <= len(lookups) <= 10


def test_a_destroyed_group_makes_no_github_call(zdm: AppUnderTest) -> None:
    repo, base = new_repo(zdm, "mq-destroyed")
    index = open_pull(zdm, repo, base, {INDEX: BLOCKING})
    group = zdm.github.merge_group(repo, base, [index], "merge")
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    before = len(zdm.github.calls)
    answer = zdm.deliver("merge_group", group_payload(repo, group, "destroyed"))
    assert answer.status_code == 202 and answer.json()["outcome"] == "ignored"
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    assert zdm.github.calls[before:] == []
    assert zdm.github.check_runs_for(repo, group.head_sha) == []


def test_a_group_changing_more_files_than_a_comparison_lists_still_finds_its_migrations(
    zdm: AppUnderTest,
) -> None:
    repo, base = new_repo(zdm, "mq-wide")
    # GitHub's comparison lists 300 files at most; these 320 come before the migration in its order.
    docs = open_pull(zdm, repo, base, {f"docs/page-{n:03d}.md": f"{n}\n" for n in range(320)})
    index = open_pull(zdm, repo, base, {INDEX: BLOCKING})
    group = zdm.github.merge_group(repo, base, [docs, index], "merge")
    queue(zdm, repo, group)
    run = completed_run(zdm, repo, group.head_sha)
    assert run.conclusion == "failure"
    assert {a["path"] for a in run.annotations} == {INDEX}
    assert "lists at most 300 changed files" in run.output["summary"]


def test_when_github_keeps_failing_the_group_check_fails_closed_instead_of_timing_out(
    zdm: AppUnderTest,
) -> None:
    repo, base = new_repo(zdm, "mq-down")
    index = open_pull(zdm, repo, base, {INDEX: BLOCKING})
    group = zdm.github.merge_group(repo, base, [index], "merge")
    zdm.github.faults.append(Fault("GET", "/repos/acme/mq-down/compare/", 500, times=1_000))
    try:
        zdm.deliver("merge_group", group_payload(repo, group))
        run = completed_run(zdm, repo, group.head_sha, timeout=60)
    finally:
        zdm.github.faults.clear()
    assert run.conclusion == "failure" and run.output["title"] == "zdm could not finish"
    assert "500" in run.output["summary"]
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
