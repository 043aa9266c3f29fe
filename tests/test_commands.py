"""`/zdm approve`, `/zdm recheck`, `/zdm help` and the Approve button, end to end (real Redis, real workers,
the fake GitHub), and the command parser and approval records on their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from bot.commands import Command, approval_marker, parse_commands, read_approvals, signing_key
from bot.report.pull_request import Approval
from tests.fakegithub.harness import AppUnderTest, checked_app, wait_for
from tests.fakegithub.spec import webhook_example
from tests.fakegithub.state import IssueComment, PullRequest, Repository
from tests.test_app import (
    BLOCKING,
    INSTALLATION,
    MIGRATIONS,
    completed_run,
    new_repo,
    open_pull,
    pull_request_payload,
    queue_is_idle,
)

WRITER = "release-captain"
READER = "intern"
AUTHOR = "octo-dev"


@pytest.fixture(scope="module")
def zdm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    with checked_app(tmp_path_factory.mktemp("commands"), redis_server, workers=2) as under_test:
        yield under_test


def failing_pull(zdm: AppUnderTest, name: str, config: str | None = None) -> tuple[Repository, PullRequest]:
    repo, base = new_repo(zdm, name)
    if config is not None:
        base = zdm.github.commit(repo, {".github/zdm.yml": config}, parent=base)
    repo.permissions.update({WRITER: "write", READER: "read", AUTHOR: "write", "boss": "admin"})
    pull = open_pull(zdm, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    assert completed_run(zdm, repo, pull.head_sha).conclusion == "failure"
    return repo, pull


def comment_payload(
    repo: Repository, pull: PullRequest, comment: IssueComment, action: str = "created"
) -> dict[str, Any]:
    payload = webhook_example("issue_comment", action)
    payload["issue"]["number"] = pull.number
    payload["issue"]["pull_request"] = {
        "url": f"https://api.github.com/repos/{repo.owner}/{repo.name}/pulls/{pull.number}"
    }
    payload["comment"].update(id=comment.id, body=comment.body)
    payload["comment"]["user"] = {
        **payload["comment"]["user"],
        "login": comment.user.login,
        "type": comment.user.type,
    }
    payload["repository"]["name"] = repo.name
    payload["repository"]["owner"]["login"] = repo.owner
    payload["installation"] = {"id": INSTALLATION, "node_id": "MDIz"}
    return payload


def say(
    zdm: AppUnderTest, repo: Repository, pull: PullRequest, login: str, body: str, type_: str = "User"
) -> IssueComment:
    comment = zdm.github.user_comment(repo, pull.number, login, body, type_)
    answer = zdm.deliver("issue_comment", comment_payload(repo, pull, comment))
    assert answer.status_code == 202
    return comment


def replies(zdm: AppUnderTest, repo: Repository, pull: PullRequest) -> list[str]:
    return [
        c.body
        for c in zdm.github.comments_on(repo, pull.number)
        if c.user.login == zdm.github.bot.login and "<!-- zdm:summary -->" not in c.body
    ]


def wait_reply(zdm: AppUnderTest, repo: Repository, pull: PullRequest, count: int = 1) -> str:
    found = wait_for(lambda: len(replies(zdm, repo, pull)) >= count, what="zdm's reply")
    assert found
    return replies(zdm, repo, pull)[count - 1]


def conclusion(zdm: AppUnderTest, repo: Repository, pull: PullRequest) -> str | None:
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
    return run.conclusion


def push(zdm: AppUnderTest, repo: Repository, pull: PullRequest, files: dict[str, str]) -> None:
    pull.head_sha = zdm.github.commit(repo, files, parent=pull.head_sha)
    zdm.deliver("pull_request", pull_request_payload(repo, pull, "synchronize"))
    completed_run(zdm, repo, pull.head_sha)


def test_approval_by_a_writer_turns_the_check_green_and_is_recorded(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "approve-writer")
    comment = say(zdm, repo, pull, WRITER, "/zdm approve Order has 200 rows; deploying at night")
    reply = wait_reply(zdm, repo, pull)
    say(zdm, repo, pull, READER, "/zdm recheck")
    wait_reply(zdm, repo, pull, 2)
    # The approval's review and the recheck found zdm's earlier comments: none posted twice.
    assert len(zdm.github.review_comments(repo, pull.number)) == 2
    assert "Approved by @release-captain: Order has 200 rows; deploying at night" in reply
    assert "<!-- zdm:approval " in reply
    assert conclusion(zdm, repo, pull) == "success"
    (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
    assert "Approved by @release-captain" in run.output["summary"]
    assert ("zdm-test[bot]", "eyes") in comment.reactions


@pytest.mark.parametrize(
    ("login", "reason"),
    [(READER, "yours is `read`"), (AUTHOR, "author of a pull request cannot approve")],
    ids=["read-only", "author"],
)
def test_approval_is_refused_with_the_reason(zdm: AppUnderTest, login: str, reason: str) -> None:
    repo, pull = failing_pull(zdm, f"refuse-{login}")
    say(zdm, repo, pull, login, "/zdm approve trust me")
    assert reason in wait_reply(zdm, repo, pull)
    assert conclusion(zdm, repo, pull) == "failure"


def test_authors_may_approve_when_the_configuration_says_so(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "author-allowed", "approvals:\n  allow_author: true\n")
    say(zdm, repo, pull, AUTHOR, "/zdm approve small table")
    assert "Approved by @octo-dev" in wait_reply(zdm, repo, pull)
    assert conclusion(zdm, repo, pull) == "success"


def test_configured_approvers_narrow_who_may_approve(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "approvers", "approvals:\n  users: [boss]\n  teams: [acme/dba]\n")
    zdm.github.teams[("acme", "dba")] = {"dba-on-call"}
    repo.permissions["dba-on-call"] = "maintain"
    say(zdm, repo, pull, WRITER, "/zdm approve please")
    assert "limits approvals to @boss, @acme/dba" in wait_reply(zdm, repo, pull)
    assert conclusion(zdm, repo, pull) == "failure"
    say(zdm, repo, pull, "dba-on-call", "/zdm approve checked the table size")
    assert "Approved by @dba-on-call" in wait_reply(zdm, repo, pull, 2)
    assert conclusion(zdm, repo, pull) == "success"


def test_bots_edits_and_quotes_never_act(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "no-act")
    bot_comment = zdm.github.user_comment(repo, pull.number, "renovate[bot]", "/zdm approve", "Bot")
    assert (
        zdm.deliver("issue_comment", comment_payload(repo, pull, bot_comment)).json()["outcome"] == "ignored"
    )
    edited = zdm.github.user_comment(repo, pull.number, WRITER, "/zdm approve edited in")
    assert (
        zdm.deliver("issue_comment", comment_payload(repo, pull, edited, "edited")).json()["outcome"]
        == "ignored"
    )
    say(
        zdm,
        repo,
        pull,
        WRITER,
        "Should we just run /zdm approve here?\n> /zdm approve\n```\n/zdm approve\n```",
    )
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    assert replies(zdm, repo, pull) == []
    assert conclusion(zdm, repo, pull) == "failure"


def test_an_unrelated_push_keeps_the_approval_and_a_changed_statement_voids_it(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "approval-scope")
    say(zdm, repo, pull, WRITER, "/zdm approve tiny table")
    wait_reply(zdm, repo, pull)
    assert conclusion(zdm, repo, pull) == "success"

    push(zdm, repo, pull, {"README.md": "# app\n\nunrelated\n"})
    assert conclusion(zdm, repo, pull) == "success"
    # Neither the approval's review nor the re-review repeated an inline comment.
    assert len(zdm.github.review_comments(repo, pull.number)) == 2

    changed = BLOCKING.replace('ON "Order"("userId")', 'ON "Order"("userId", "id")')
    push(zdm, repo, pull, {f"{MIGRATIONS}/20240201000000_index/migration.sql": changed})
    assert conclusion(zdm, repo, pull) == "failure"
    # Only the changed statement is commented on again.
    assert len(zdm.github.review_comments(repo, pull.number)) == 3
    (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
    assert "20240201000000_index/migration.sql` line 2" in run.output["summary"]
    assert "New or changed since the last approval" in run.output["summary"]


def test_approval_survives_a_redis_flush(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "flush")
    say(zdm, repo, pull, WRITER, "/zdm approve reviewed with the DBA")
    wait_reply(zdm, repo, pull)
    assert conclusion(zdm, repo, pull) == "success"
    Redis.from_url(zdm.redis_url).flushall()
    push(zdm, repo, pull, {"README.md": "# app\n\nafter the flush\n"})
    assert conclusion(zdm, repo, pull) == "success"


def test_a_forged_approval_marker_is_ignored(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "forged-marker")
    report_digests = {"0" * 16}
    fake = approval_marker(
        Approval("boss", "forged", frozenset(report_digests)),
        signing_key("guess"),
        "acme/forged-marker",
        pull.number,
    )
    # In a user's comment, and signed with the wrong key: neither counts.
    zdm.github.user_comment(repo, pull.number, READER, fake + "\nlooks approved to me")
    push(zdm, repo, pull, {"README.md": "# app\n\nforged\n"})
    assert conclusion(zdm, repo, pull) == "failure"


def test_the_approve_button_follows_the_same_rules(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "button")

    def click(login: str) -> None:
        payload = webhook_example("check_run", "requested_action")
        (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
        payload["check_run"].update(
            id=run.id, external_id=run.external_id, head_sha=pull.head_sha, name=run.name
        )
        payload["requested_action"] = {"identifier": "approve"}
        payload["sender"] = {**payload["sender"], "login": login, "type": "User"}
        payload["repository"]["name"] = repo.name
        payload["repository"]["owner"]["login"] = repo.owner
        payload["installation"] = {"id": INSTALLATION, "node_id": "MDIz"}
        assert zdm.deliver("check_run", payload).status_code == 202

    click(READER)
    assert "yours is `read`" in wait_reply(zdm, repo, pull)
    assert conclusion(zdm, repo, pull) == "failure"
    click(WRITER)
    assert "Approved by @release-captain: via the Approve button" in wait_reply(zdm, repo, pull, 2)
    assert conclusion(zdm, repo, pull) == "success"


def test_recheck_and_help(zdm: AppUnderTest) -> None:
    repo, pull = failing_pull(zdm, "recheck")
    say(zdm, repo, pull, READER, "/zdm recheck")
    assert "rechecked" in wait_reply(zdm, repo, pull)
    say(zdm, repo, pull, READER, "/zdm frobnicate")
    reply = wait_reply(zdm, repo, pull, 2)
    assert "`/zdm frobnicate` is not a zdm command" in reply
    assert "/zdm approve <reason>" in reply
    assert len(zdm.github.check_runs_for(repo, pull.head_sha)) == 1


def test_commands_are_lines_of_their_own() -> None:
    assert parse_commands("/zdm approve small table") == [Command("approve", "small table")]
    assert parse_commands("lgtm\n  /zdm recheck  \n") == [Command("recheck")]
    assert parse_commands("/zdm") == [Command("unknown", "/zdm")]
    assert parse_commands("/zdm recheck now") == [Command("unknown", "/zdm recheck now")]
    assert parse_commands("please /zdm approve") == []
    assert parse_commands("> /zdm approve") == []
    assert parse_commands("```\n/zdm approve\n```") == []
    assert parse_commands("/zdmapprove") == []


def test_approval_records_verify_only_with_the_key_and_for_their_pull_request() -> None:
    key = signing_key("secret")
    approval = Approval("boss", "tiny", frozenset({"a" * 16}), "2026-11-25T00:00:00Z")
    marker = approval_marker(approval, key, "acme/app", 3)
    assert read_approvals([marker], key, "acme/app", 3) == [approval]
    assert read_approvals([marker], signing_key("other"), "acme/app", 3) == []
    assert read_approvals([marker], key, "acme/app", 4) == []
    tampered = marker.replace(marker.split()[1][:8], "eyJhcHBy")
    assert read_approvals([tampered], key, "acme/app", 3) == []
